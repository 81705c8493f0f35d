/*
 * avk_secret: see secret.h. The file is opened once and checked through the
 * descriptor (fstat), so the file checked is the file read.
 */
#include "common/util/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

int avk_secret_read_max(const char *path, const char *what, size_t min_len, size_t max_len,
                        struct avk_secret *out, char *errstr, size_t errstr_size)
{
        unsigned char *buf = NULL;
        size_t len = 0;
        int rc = -1;
        struct stat st;
        out->bytes = NULL;
        out->len = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                snprintf(errstr, errstr_size, "%s: %s: %s", what, path, strerror(errno));
                return -1;
        }
        if (fstat(fd, &st) != 0) {
                snprintf(errstr, errstr_size, "%s: %s: %s", what, path, strerror(errno));
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                snprintf(errstr, errstr_size, "%s: %s: not a regular file", what, path);
                goto out;
        }
        if (st.st_mode & (S_IRWXG | S_IRWXO)) {
                snprintf(errstr, errstr_size,
                         "%s: %s: group or others may access the key (mode %04o); it must be "
                         "readable by its owner only (chmod 600)",
                         what, path, (unsigned)(st.st_mode & 07777));
                goto out;
        }
        if (!(buf = malloc(max_len + 1))) {
                snprintf(errstr, errstr_size, "%s: out of memory", what);
                goto out;
        }
        for (;;) {
                ssize_t n = read(fd, buf + len, max_len + 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        snprintf(errstr, errstr_size, "%s: %s: %s", what, path, strerror(errno));
                        goto out;
                }
                len += (size_t)n;
                if (n == 0 || len > max_len)
                        break;
        }
        if (len > max_len) {
                snprintf(errstr, errstr_size, "%s: %s: larger than %zu bytes; expected a key", what,
                         path, max_len);
                goto out;
        }
        if (len > 0 && buf[len - 1] == '\n')
                len--;
        if (len > 0 && buf[len - 1] == '\r')
                len--;
        if (len < min_len) {
                snprintf(errstr, errstr_size, "%s: %s: the key is %zu bytes, at least %zu required",
                         what, path, len, min_len);
                goto out;
        }
        buf[len] = '\0'; /* a PEM key is handed on as text */
        out->bytes = buf;
        out->len = len;
        out->size = max_len + 1;
        buf = NULL;
        rc = 0;
out:
        if (buf) {
                OPENSSL_cleanse(buf, AVK_SECRET_MAX + 1);
                free(buf);
        }
        close(fd);
        return rc;
}

int avk_secret_read(const char *path, const char *what, size_t min_len, struct avk_secret *out,
                    char *errstr, size_t errstr_size)
{
        return avk_secret_read_max(path, what, min_len, AVK_SECRET_MAX, out, errstr, errstr_size);
}

void avk_secret_wipe(struct avk_secret *secret)
{
        if (!secret->bytes)
                return;
        OPENSSL_cleanse(secret->bytes, secret->size);
        free(secret->bytes);
        secret->bytes = NULL;
        secret->len = 0;
        secret->size = 0;
}

int avk_secret_hmac_hexv(const unsigned char *key, size_t key_len, const struct iovec *parts,
                         int cnt, char out[AVK_SECRET_HEX_SIZE])
{
        static const char hex[] = "0123456789abcdef";
        unsigned char mac[EVP_MAX_MD_SIZE];
        size_t mac_len = 0;
        int rc = -1;
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
            OSSL_PARAM_construct_end()};
        EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
        if (!ctx || !EVP_MAC_init(ctx, key, key_len, params))
                goto out;
        for (int i = 0; i < cnt; i++)
                if (!EVP_MAC_update(ctx, parts[i].iov_base, parts[i].iov_len))
                        goto out;
        if (!EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) || mac_len != 32)
                goto out;
        for (size_t i = 0; i < mac_len; i++) {
                out[2 * i] = hex[mac[i] >> 4];
                out[2 * i + 1] = hex[mac[i] & 0x0f];
        }
        out[2 * mac_len] = '\0';
        rc = 0;
out:
        OPENSSL_cleanse(mac, sizeof(mac));
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(hmac);
        return rc;
}

int avk_secret_hmac_hex(const unsigned char *key, size_t key_len, const void *data, size_t len,
                        char out[AVK_SECRET_HEX_SIZE])
{
        struct iovec part = {(void *)data, len};
        return avk_secret_hmac_hexv(key, key_len, &part, 1, out);
}
