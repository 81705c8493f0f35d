/*
 * avk_access: who may read the dashboard (docs/dashboard.md, "Access").
 *
 * A person or system presents a bearer token from dashboard.tokens.file
 * (common/http/auth.h), bound to a role:
 *   analyst  everything: the page, the figures, the overdue list (deviation
 *            ids and description excerpts) and the yearly report
 *   figures  the figures alone (/api/sammanstallning.json): counts, no id
 *            and no text, for a statistics feed
 * A browser presents the token once and gets a session: a random id in an
 * HttpOnly, SameSite=Strict cookie (Secure over TLS), valid for
 * dashboard.session.ttl.s, of which only the SHA-256 is held. Sessions live
 * in the instance's memory: a restart, or another instance, asks again.
 */
#ifndef AVK_ACCESS_H
#define AVK_ACCESS_H

#include <stddef.h>
#include <stdint.h>

#include "common/http/auth.h"

enum avk_role {
        AVK_ROLE_ANALYST,
        AVK_ROLE_FIGURES,
};

#define AVK_ACCESS_SESSION_SIZE AVK_AUTH_TOKEN_SIZE /**< a session id and its NUL */

typedef struct avk_access avk_access_t;

/**
 * @brief A role's number from its name ("analyst", "figures"), as
 * avk_auth_subject_cb: -1 with the reason for any other name.
 */
int avk_access_role_parse(const char *name, char *errstr, size_t errstr_size);

/** @brief The name of a role. */
const char *avk_access_role_name(int role);

/**
 * @brief Loads the tokens file at path; keeps at most max_sessions sessions,
 * each ttl_ms from its start.
 * @returns the access rules, for avk_access_destroy(); NULL with "path:line:
 * reason" or "path: reason" in errstr.
 */
avk_access_t *avk_access_new(const char *path, size_t max_sessions, int64_t ttl_ms, char *errstr,
                             size_t errstr_size);

void avk_access_destroy(avk_access_t *access);

/** @brief How many tokens were loaded. */
size_t avk_access_token_count(const avk_access_t *access);

/** @brief The role of a bearer token, or -1 for an unknown one. */
int avk_access_token_role(const avk_access_t *access, const char *token, size_t len);

/**
 * @brief Starts a session of role at now_ms; the oldest one gives way when
 * max_sessions are open.
 * @returns 0 with the session's id in id, or -1 when the random generator failed.
 */
int avk_access_session_open(avk_access_t *access, int role, int64_t now_ms,
                            char id[AVK_ACCESS_SESSION_SIZE]);

/** @brief The role of the session id at now_ms, or -1 when unknown or expired. */
int avk_access_session_role(avk_access_t *access, const char *id, size_t len, int64_t now_ms);

/** @brief Ends the session id; an unknown one is a no-op. */
void avk_access_session_close(avk_access_t *access, const char *id, size_t len);

#endif
