/*
 * avk_auth: bearer tokens of avvik's HTTP servers, each bound to one subject:
 * the gateway's to a party (gateway.tokens.file), the dashboard's to a role
 * (dashboard.tokens.file).
 *
 * A tokens file holds one token a line, never the token itself but its
 * SHA-256, so the file (and a backup of it) does not grant access:
 *
 *   # <sha256-hex-of-token> <subject> [label]
 *   9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 1480 treserva-goteborg
 *
 * '#' starts a comment line; the label (the rest of the line) names the
 * client system in logs. The file is checked when loaded and every problem
 * is named by file:line. A presented token is hashed and compared with every
 * entry in constant time (CRYPTO_memcmp), so timing tells nothing about which
 * hashes exist. `avvik token PARTY [LABEL]` and `avvik token --role ROLE [LABEL]` make a
 * token and its line.
 */
#ifndef AVK_AUTH_H
#define AVK_AUTH_H

#include <stddef.h>

#define AVK_AUTH_TOKEN_BYTES 32 /**< random bytes in a new token */
#define AVK_AUTH_TOKEN_SIZE  44 /**< a new token: base64url of 32 bytes (43) and its NUL */
#define AVK_AUTH_HEX_SIZE    65 /**< a SHA-256 in hexadecimal and its NUL */
#define AVK_AUTH_LABEL_MAX   64 /**< characters in a label */

typedef struct avk_auth avk_auth_t;

/**
 * @brief Parses a line's subject (a party code, a role name).
 * @returns its number (>= 0), or -1 with the reason in errstr.
 */
typedef int (*avk_auth_subject_cb)(const char *text, char *errstr, size_t errstr_size);

/**
 * @brief Loads and checks a tokens file, each line's subject with subject.
 * @returns the tokens, for avk_auth_destroy(); or NULL with "path:line: reason"
 * in errstr (bad hash, subject refused, duplicate hash, too long a label), or
 * "path: reason" when it cannot be read or holds no token.
 */
avk_auth_t *avk_auth_load(const char *path, avk_auth_subject_cb subject, char *errstr,
                          size_t errstr_size);

void avk_auth_destroy(avk_auth_t *auth);

/** @brief How many tokens were loaded. */
size_t avk_auth_count(const avk_auth_t *auth);

/**
 * @brief Finds the subject of a presented bearer token.
 * @param label receives the token's label ("" when it has none), owned by
 * auth; may be NULL.
 * @returns the subject's number (avk_auth_subject_cb), or -1 for an unknown token.
 */
int avk_auth_lookup(const avk_auth_t *auth, const char *token, size_t token_len,
                    const char **label);

/**
 * @brief The token of an Authorization header's value "Bearer <token>" (the
 * scheme in any case, blanks around the token dropped).
 * @returns its start in authorization, its length in len (0 when empty);
 * NULL when the value is not of the Bearer scheme.
 */
const char *avk_auth_bearer(const char *authorization, size_t *len);

/** @brief The SHA-256 of a token in lower-case hexadecimal, as the tokens file holds it. */
void avk_auth_hash_hex(const char *token, size_t token_len, char hex[AVK_AUTH_HEX_SIZE]);

/**
 * @brief A new random token: AVK_AUTH_TOKEN_BYTES from OpenSSL's CSPRNG, in
 * base64url without padding (valid in an Authorization header as is).
 * @returns 0, or -1 when the random generator failed.
 */
int avk_auth_token_new(char token[AVK_AUTH_TOKEN_SIZE]);

#endif
