/*
 * avk_secret: keys read from files - the HMAC-SHA256 keys that sign webhook
 * and analysis-sink bodies and the key of the analysis stream's patient
 * pseudonym - and the keyed hash itself (lower-case hex HMAC-SHA256).
 *
 * A key is held in memory only as long as its owner lives and is wiped
 * before it is freed. No error ever quotes a key's bytes; errors name the
 * configuration key, the file and the reason.
 */
#ifndef AVK_SECRET_H
#define AVK_SECRET_H

#include <stddef.h>
#include <sys/uio.h>

/** 64 hex digits of an HMAC-SHA256 and the NUL. */
#define AVK_SECRET_HEX_SIZE 65

/** Largest key file read, in bytes. */
#define AVK_SECRET_MAX 1024

struct avk_secret {
        unsigned char *bytes; /**< owned; wiped and freed by avk_secret_wipe() */
        size_t len;
        size_t size; /**< of the allocation, all of it wiped */
};

/**
 * @brief Reads the key in path into out. One final line end ("\n" or
 * "\r\n", as an editor leaves it) is not part of the key. Every key file
 * must be its owner's alone (no permission bit for group or others): whoever
 * reads a signing key can forge deliveries, whoever reads the pseudonym key
 * can re-identify the analysis stream. Every secret file avvik reads comes
 * through here.
 * @param what the configuration key naming the file, for errors.
 * @param min_len fewest bytes accepted.
 * @returns 0, or -1 with "<what>: <path>: <reason>" in errstr (missing,
 * unreadable, not a regular file, open to group or others, too short or long).
 */
int avk_secret_read(const char *path, const char *what, size_t min_len, struct avk_secret *out,
                    char *errstr, size_t errstr_size);

/**
 * @brief As avk_secret_read(), for a key of up to max_len bytes (a TLS
 * private key in PEM); the bytes are followed by a NUL not counted in len.
 */
int avk_secret_read_max(const char *path, const char *what, size_t min_len, size_t max_len,
                        struct avk_secret *out, char *errstr, size_t errstr_size);

/** @brief Wipes and frees the key; out is left empty. An empty secret is a no-op. */
void avk_secret_wipe(struct avk_secret *secret);

/**
 * @brief The lower-case hex HMAC-SHA256 of data under key.
 * @returns 0, or -1 when OpenSSL fails.
 */
int avk_secret_hmac_hex(const unsigned char *key, size_t key_len, const void *data, size_t len,
                        char out[AVK_SECRET_HEX_SIZE]);

/**
 * @brief As avk_secret_hmac_hex(), of the cnt parts one after the other (as
 * if concatenated), without copying them together.
 */
int avk_secret_hmac_hexv(const unsigned char *key, size_t key_len, const struct iovec *parts,
                         int cnt, char out[AVK_SECRET_HEX_SIZE]);

#endif
