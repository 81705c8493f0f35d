/*
 * avk_auth: see auth.h. The tokens are a flat array: a gateway has tens or
 * hundreds of them, and a lookup must compare with every entry anyway to
 * take the same time whichever one matches.
 */
#include "common/http/auth.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/util/hash.h"

#define HASH_SIZE 32

struct token {
        unsigned char hash[HASH_SIZE];
        int subject;
        int line;
        char label[AVK_AUTH_LABEL_MAX + 1];
};

struct avk_auth {
        avk_auth_subject_cb parse_subject;
        struct token *tokens;
        size_t cnt;
};

static void sha256(const void *data, size_t len, unsigned char out[HASH_SIZE])
{
        if (avk_hash_sha256_digest(data, len, out) != 0)
                memset(out, 0, HASH_SIZE); /* matches no token's hash */
}

static int hex_value(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        c = tolower(c);
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The line's parts, split at the first two runs of blanks; the label is the
 * rest, trimmed. */
static int split_line(char *s, char **hash, char **subject, char **label)
{
        char *rest = NULL;
        *hash = strtok_r(s, " \t", &rest);
        *subject = *hash ? strtok_r(NULL, " \t", &rest) : NULL;
        if (!*hash || !*subject)
                return -1;
        *label = rest + strspn(rest, " \t");
        char *end = *label + strlen(*label);
        while (end > *label && isspace((unsigned char)end[-1]))
                *--end = '\0';
        return 0;
}

/* Parses and checks one non-comment line into t; -1 with the reason. */
static int parse_line(avk_auth_t *auth, char *s, struct token *t, char *reason, size_t size)
{
        char *hash, *subject, *label;
        if (split_line(s, &hash, &subject, &label) != 0) {
                snprintf(reason, size, "expected \"<sha256-hex-of-token> <subject> [label]\"");
                return -1;
        }
        if (strlen(hash) != 2 * HASH_SIZE) {
                snprintf(reason, size,
                         "token hash: expected 64 hexadecimal digits (SHA-256), got %zu "
                         "characters",
                         strlen(hash));
                return -1;
        }
        for (size_t i = 0; i < HASH_SIZE; i++) {
                int hi = hex_value((unsigned char)hash[2 * i]);
                int lo = hex_value((unsigned char)hash[2 * i + 1]);
                if (hi < 0 || lo < 0) {
                        snprintf(reason, size, "token hash: not hexadecimal at character %zu",
                                 2 * i + (hi < 0 ? 1 : 2));
                        return -1;
                }
                t->hash[i] = (unsigned char)(hi << 4 | lo);
        }
        if ((t->subject = auth->parse_subject(subject, reason, size)) < 0)
                return -1;
        if (strlen(label) > AVK_AUTH_LABEL_MAX) {
                snprintf(reason, size, "label: longer than %d characters", AVK_AUTH_LABEL_MAX);
                return -1;
        }
        snprintf(t->label, sizeof(t->label), "%s", label);
        for (size_t i = 0; i < auth->cnt; i++) {
                if (memcmp(auth->tokens[i].hash, t->hash, HASH_SIZE) == 0) {
                        snprintf(reason, size, "duplicate token hash (first on line %d)",
                                 auth->tokens[i].line);
                        return -1;
                }
        }
        return 0;
}

avk_auth_t *avk_auth_load(const char *path, avk_auth_subject_cb subject, char *errstr,
                          size_t errstr_size)
{
        avk_auth_t *auth = calloc(1, sizeof(*auth));
        if (auth)
                auth->parse_subject = subject;
        FILE *f = fopen(path, "r");
        char *line = NULL;
        size_t cap = 0, room = 0;
        int lineno = 0, ok = 0;
        if (!auth || !f) {
                snprintf(errstr, errstr_size, "%s: %s", path,
                         auth ? strerror(errno) : "out of memory");
                goto out;
        }
        while (getline(&line, &cap, f) != -1) {
                lineno++;
                char *s = line + strspn(line, " \t\r\n");
                if (*s == '\0' || *s == '#')
                        continue;
                if (auth->cnt == room) {
                        room = room ? 2 * room : 16;
                        struct token *grown = realloc(auth->tokens, room * sizeof(*grown));
                        if (!grown) {
                                snprintf(errstr, errstr_size, "%s: out of memory", path);
                                goto out;
                        }
                        auth->tokens = grown;
                }
                struct token *t = &auth->tokens[auth->cnt];
                char reason[512];
                s[strcspn(s, "\r\n")] = '\0';
                if (parse_line(auth, s, t, reason, sizeof(reason)) != 0) {
                        snprintf(errstr, errstr_size, "%s:%d: %s", path, lineno, reason);
                        goto out;
                }
                t->line = lineno;
                auth->cnt++;
        }
        if (ferror(f)) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                goto out;
        }
        if (auth->cnt == 0) {
                snprintf(errstr, errstr_size,
                         "%s: holds no token (make one with 'avvik token PARTY')", path);
                goto out;
        }
        ok = 1;
out:
        free(line);
        if (f)
                fclose(f);
        if (!ok) {
                avk_auth_destroy(auth);
                return NULL;
        }
        return auth;
}

void avk_auth_destroy(avk_auth_t *auth)
{
        if (!auth)
                return;
        OPENSSL_cleanse(auth->tokens, auth->cnt * sizeof(*auth->tokens));
        free(auth->tokens);
        free(auth);
}

size_t avk_auth_count(const avk_auth_t *auth)
{
        return auth->cnt;
}

int avk_auth_lookup(const avk_auth_t *auth, const char *token, size_t token_len, const char **label)
{
        unsigned char hash[HASH_SIZE];
        sha256(token, token_len, hash);
        const struct token *found = NULL;
        /* Every entry is compared, the match or not: the time taken is the same. */
        for (size_t i = 0; i < auth->cnt; i++) {
                if (CRYPTO_memcmp(auth->tokens[i].hash, hash, HASH_SIZE) == 0)
                        found = &auth->tokens[i];
        }
        if (label)
                *label = found ? found->label : "";
        return found ? found->subject : -1;
}

const char *avk_auth_bearer(const char *authorization, size_t *len)
{
        if (strncasecmp(authorization, "Bearer ", 7) != 0)
                return NULL;
        const char *token = authorization + 7 + strspn(authorization + 7, " ");
        size_t n = strlen(token);
        while (n > 0 && token[n - 1] == ' ')
                n--;
        *len = n;
        return token;
}

void avk_auth_hash_hex(const char *token, size_t token_len, char hex[AVK_AUTH_HEX_SIZE])
{
        unsigned char hash[HASH_SIZE];
        sha256(token, token_len, hash);
        for (size_t i = 0; i < HASH_SIZE; i++)
                snprintf(hex + 2 * i, 3, "%02x", hash[i]);
}

int avk_auth_token_new(char token[AVK_AUTH_TOKEN_SIZE])
{
        unsigned char raw[AVK_AUTH_TOKEN_BYTES];
        unsigned char b64[4 * ((AVK_AUTH_TOKEN_BYTES + 2) / 3) + 1];
        if (RAND_bytes(raw, sizeof(raw)) != 1)
                return -1;
        EVP_EncodeBlock(b64, raw, sizeof(raw));
        OPENSSL_cleanse(raw, sizeof(raw));
        size_t n = 0;
        for (const unsigned char *p = b64; *p && *p != '=' && n < AVK_AUTH_TOKEN_SIZE - 1; p++)
                token[n++] = *p == '+' ? '-' : *p == '/' ? '_' : (char)*p;
        token[n] = '\0';
        OPENSSL_cleanse(b64, sizeof(b64));
        return 0;
}
