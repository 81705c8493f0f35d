/*
 * avk_registry: a client for a Confluent-compatible Schema Registry over
 * libcurl. Registers writer schemas under "<topic>-value" and fetches schemas
 * by id for readers. Both directions are cached for the life of the handle, so
 * the registry is asked once per schema and process.
 *
 * A handle may be shared by threads: calls are serialised by a mutex, which
 * is cheap because after warm-up every call is a cache hit.
 */
#ifndef AVK_REGISTRY_H
#define AVK_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

typedef struct avk_registry avk_registry_t;

/**
 * What a failed call returns when the registry did not give a final answer:
 * unreachable, no answer within the timeout, a 5xx, 408 or 429, or an answer
 * that is not the registry's JSON. Callers retry later and must never treat
 * it as a bad record. A final answer (a 404 for an id, 409/422 for a schema)
 * returns -1.
 */
#define AVK_REGISTRY_UNAVAILABLE (-2)

/** Connection settings; NULL strings mean "not set". */
struct avk_registry_conf {
        const char *url;         /**< e.g. "http://localhost:8081" (required) */
        const char *basic_auth;  /**< "user:password" or NULL */
        const char *ca_location; /**< CA bundle for https, or NULL for the system's */
        long timeout_ms;         /**< whole-request timeout; 0 means 10000 */
};

/**
 * @brief Creates a client. Nothing is sent until the first call.
 * @returns the handle, or NULL with the reason in errstr.
 */
avk_registry_t *avk_registry_new(const struct avk_registry_conf *conf, char *errstr,
                                 size_t errstr_size);

void avk_registry_destroy(avk_registry_t *reg);

/**
 * @brief Registers schema_json under subject (POST /subjects/{subject}/versions)
 * and returns its id; the registry answers with the existing id when the schema
 * is already registered.
 * @returns 0 and *id set, or with the reason in errstr (the URL and curl's
 * reason when unreachable, or the HTTP status with the registry's error_code
 * and message) AVK_REGISTRY_UNAVAILABLE or -1 (a final refusal).
 */
int avk_registry_register(avk_registry_t *reg, const char *subject, const char *schema_json,
                          int32_t *id, char *errstr, size_t errstr_size);

/**
 * @brief Fetches the schema with the given id (GET /schemas/ids/{id}).
 * @param schema_json receives the schema text, owned by the handle and valid
 *        until avk_registry_destroy().
 * @returns 0, or with the reason in errstr -1 when the registry answered that
 * the id does not exist or holds no Avro schema, or AVK_REGISTRY_UNAVAILABLE.
 */
int avk_registry_fetch(avk_registry_t *reg, int32_t id, const char **schema_json, char *errstr,
                       size_t errstr_size);

#endif
