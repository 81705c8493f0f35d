/*
 * avk_access: see access.h. Sessions are a flat array under one lock: a
 * dashboard has tens of readers, and a lookup compares with every entry
 * (CRYPTO_memcmp) so its time does not depend on which one matches.
 */
#include "consumer/dashboard/access.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static const char *const role_names[] = {"analyst", "figures"};
#define ROLE_CNT (sizeof(role_names) / sizeof(role_names[0]))

struct session {
        char hash[AVK_AUTH_HEX_SIZE]; /* of the id; "" when the slot is free */
        int role;
        int64_t expires_ms;
};

struct avk_access {
        avk_auth_t *tokens;
        int64_t ttl_ms;
        pthread_mutex_t lock; /* sessions */
        struct session *sessions;
        size_t max_sessions;
};

int avk_access_role_parse(const char *name, char *errstr, size_t errstr_size)
{
        for (size_t i = 0; i < ROLE_CNT; i++) {
                if (strcmp(name, role_names[i]) == 0)
                        return (int)i;
        }
        snprintf(errstr, errstr_size, "role: expected analyst or figures");
        return -1;
}

const char *avk_access_role_name(int role)
{
        return role >= 0 && (size_t)role < ROLE_CNT ? role_names[role] : "none";
}

avk_access_t *avk_access_new(const char *path, size_t max_sessions, int64_t ttl_ms, char *errstr,
                             size_t errstr_size)
{
        avk_access_t *access = calloc(1, sizeof(*access));
        if (!access || !(access->sessions = calloc(max_sessions, sizeof(*access->sessions)))) {
                free(access);
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        access->max_sessions = max_sessions;
        access->ttl_ms = ttl_ms;
        pthread_mutex_init(&access->lock, NULL);
        if (!(access->tokens = avk_auth_load(path, avk_access_role_parse, errstr, errstr_size))) {
                avk_access_destroy(access);
                return NULL;
        }
        return access;
}

void avk_access_destroy(avk_access_t *access)
{
        if (!access)
                return;
        avk_auth_destroy(access->tokens);
        OPENSSL_cleanse(access->sessions, access->max_sessions * sizeof(*access->sessions));
        free(access->sessions);
        pthread_mutex_destroy(&access->lock);
        free(access);
}

size_t avk_access_token_count(const avk_access_t *access)
{
        return avk_auth_count(access->tokens);
}

int avk_access_token_role(const avk_access_t *access, const char *token, size_t len)
{
        return avk_auth_lookup(access->tokens, token, len, NULL);
}

int avk_access_session_open(avk_access_t *access, int role, int64_t now_ms,
                            char id[AVK_ACCESS_SESSION_SIZE])
{
        if (avk_auth_token_new(id) != 0)
                return -1;
        pthread_mutex_lock(&access->lock);
        /* A free or expired slot, else the one that expires first. */
        struct session *slot = &access->sessions[0];
        for (size_t i = 0; i < access->max_sessions; i++) {
                struct session *s = &access->sessions[i];
                if (!s->hash[0] || s->expires_ms <= now_ms) {
                        slot = s;
                        break;
                }
                if (s->expires_ms < slot->expires_ms)
                        slot = s;
        }
        avk_auth_hash_hex(id, strlen(id), slot->hash);
        slot->role = role;
        slot->expires_ms = now_ms + access->ttl_ms;
        pthread_mutex_unlock(&access->lock);
        return 0;
}

/* The session of id, or NULL; under the lock. */
static struct session *find(avk_access_t *access, const char *id, size_t len)
{
        char hash[AVK_AUTH_HEX_SIZE];
        avk_auth_hash_hex(id, len, hash);
        struct session *found = NULL;
        for (size_t i = 0; i < access->max_sessions; i++) {
                struct session *s = &access->sessions[i];
                if (CRYPTO_memcmp(s->hash, hash, sizeof(hash)) == 0)
                        found = s;
        }
        return found;
}

int avk_access_session_role(avk_access_t *access, const char *id, size_t len, int64_t now_ms)
{
        pthread_mutex_lock(&access->lock);
        const struct session *s = find(access, id, len);
        int role = s && s->expires_ms > now_ms ? s->role : -1;
        pthread_mutex_unlock(&access->lock);
        return role;
}

void avk_access_session_close(avk_access_t *access, const char *id, size_t len)
{
        pthread_mutex_lock(&access->lock);
        struct session *s = find(access, id, len);
        if (s)
                memset(s, 0, sizeof(*s));
        pthread_mutex_unlock(&access->lock);
}
