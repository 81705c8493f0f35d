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

/** 64 hex digits of an HMAC-SHA256 and the NUL. */
#define AVK_SECRET_HEX_SIZE 65

/** Largest key file read, in bytes. */
#define AVK_SECRET_MAX 1024

struct avk_secret {
        unsigned char *bytes; /**< owned; wiped and freed by avk_secret_wipe() */
        size_t len;
};

enum {
        /** Refuse a file that its group or others may read or write (the
         * pseudonym key: whoever reads it can re-identify the stream). */
        AVK_SECRET_PRIVATE = 1 << 0,
};

/**
 * @brief Reads the key in path into out. One final line end ("\n" or
 * "\r\n", as an editor leaves it) is not part of the key.
 * @param what the configuration key naming the file, for errors.
 * @param min_len fewest bytes accepted.
 * @param flags AVK_SECRET_PRIVATE or 0.
 * @returns 0, or -1 with "<what>: <path>: <reason>" in errstr (missing,
 * unreadable, not a regular file, too short or long, or, with
 * AVK_SECRET_PRIVATE, readable by group or others).
 */
int avk_secret_read(const char *path, const char *what, size_t min_len, unsigned flags,
                    struct avk_secret *out, char *errstr, size_t errstr_size);

/** @brief Wipes and frees the key; out is left empty. An empty secret is a no-op. */
void avk_secret_wipe(struct avk_secret *secret);

/**
 * @brief The lower-case hex HMAC-SHA256 of data under key.
 * @returns 0, or -1 when OpenSSL fails.
 */
int avk_secret_hmac_hex(const unsigned char *key, size_t key_len, const void *data, size_t len,
                        char out[AVK_SECRET_HEX_SIZE]);

#endif
