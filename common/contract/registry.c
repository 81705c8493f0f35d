/*
 * avk_registry: see registry.h. Every request goes over one curl easy handle
 * that is reset and reused under the handle's mutex, so a keep-alive
 * connection to the registry survives between calls. The caches are small
 * arrays searched linearly: a process knows a handful of schemas, and after
 * warm-up no call reaches the network.
 *
 * Error sentences follow one shape so that a log line says which registry,
 * which schema and what went wrong: the base URL and curl's reason when the
 * registry cannot be reached, the HTTP status with the registry's error_code
 * and message when it answers an error.
 */
#include "common/contract/registry.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A schema is a few KiB; an answer near this size is not from a registry. */
#define REGISTRY_MAX_RESPONSE           (4u * 1024u * 1024u)
#define REGISTRY_DEFAULT_TIMEOUT_MS     10000L
#define REGISTRY_CONTENT_TYPE           "application/vnd.schemaregistry.v1+json"
#define REGISTRY_ACCEPT                 REGISTRY_CONTENT_TYPE ", application/json"
#define REGISTRY_USER_AGENT             "avvik-registry/1"
#define REGISTRY_INITIAL_RESPONSE_BYTES 4096u

struct registered_schema {
        char *subject;
        char *schema_json;
        int32_t id;
};

struct fetched_schema {
        int32_t id;
        char *schema_json;
};

struct avk_registry {
        pthread_mutex_t lock; /* guards everything below, including curl */
        CURL *curl;
        char curl_error[CURL_ERROR_SIZE];
        char *url; /* without a trailing '/', so paths can be appended */
        char *basic_auth;
        char *ca_location;
        long timeout_ms;
        struct registered_schema *registered;
        size_t registered_count;
        size_t registered_cap;
        struct fetched_schema *fetched;
        size_t fetched_count;
        size_t fetched_cap;
};

struct response_buffer {
        char *data;
        size_t len;
        size_t cap;
        int too_big;
        int out_of_memory;
};

/*
 * curl_global_init must not race with itself, and is never undone: other
 * modules of the process may use curl too, and curl_global_cleanup is only
 * safe once no thread does.
 */
static pthread_once_t curl_init_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init(void)
{
        curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *concat3(const char *a, const char *b, const char *c)
{
        size_t a_len = strlen(a), b_len = strlen(b), c_len = strlen(c);
        char *joined = malloc(a_len + b_len + c_len + 1);
        if (!joined)
                return NULL;
        memcpy(joined, a, a_len);
        memcpy(joined + a_len, b, b_len);
        memcpy(joined + a_len + b_len, c, c_len + 1);
        return joined;
}

static int validate_url(const char *url, char *errstr, size_t errstr_size)
{
        const char *host;

        if (!url || !*url) {
                snprintf(errstr, errstr_size, "schema registry url is empty");
                return -1;
        }
        if (strncmp(url, "http://", 7) == 0) {
                host = url + 7;
        } else if (strncmp(url, "https://", 8) == 0) {
                host = url + 8;
        } else {
                snprintf(errstr, errstr_size,
                         "schema registry url \"%s\" must start with http:// or https://", url);
                return -1;
        }
        if (*host == '\0' || *host == '/') {
                snprintf(errstr, errstr_size, "schema registry url \"%s\" has no host", url);
                return -1;
        }
        return 0;
}

static void registry_free(avk_registry_t *reg)
{
        for (size_t i = 0; i < reg->registered_count; i++) {
                free(reg->registered[i].subject);
                free(reg->registered[i].schema_json);
        }
        free(reg->registered);
        for (size_t i = 0; i < reg->fetched_count; i++)
                free(reg->fetched[i].schema_json);
        free(reg->fetched);
        if (reg->curl)
                curl_easy_cleanup(reg->curl);
        free(reg->url);
        free(reg->basic_auth);
        free(reg->ca_location);
        free(reg);
}

avk_registry_t *avk_registry_new(const struct avk_registry_conf *conf, char *errstr,
                                 size_t errstr_size)
{
        avk_registry_t *reg = NULL;

        if (!conf) {
                snprintf(errstr, errstr_size, "schema registry configuration is missing");
                return NULL;
        }
        if (validate_url(conf->url, errstr, errstr_size) != 0)
                return NULL;
        if (conf->timeout_ms < 0) {
                snprintf(errstr, errstr_size,
                         "schema registry timeout must not be negative (got %ld ms)",
                         conf->timeout_ms);
                return NULL;
        }
        pthread_once(&curl_init_once, curl_init);
        if (curl_init_result != CURLE_OK) {
                snprintf(errstr, errstr_size, "schema registry: curl_global_init failed: %s",
                         curl_easy_strerror(curl_init_result));
                return NULL;
        }

        reg = calloc(1, sizeof(*reg));
        if (!reg)
                goto oom;
        reg->timeout_ms = conf->timeout_ms ? conf->timeout_ms : REGISTRY_DEFAULT_TIMEOUT_MS;
        reg->url = strdup(conf->url);
        if (!reg->url)
                goto oom;
        /* validate_url guarantees a host, so this never eats into the scheme */
        for (size_t len = strlen(reg->url); len > 0 && reg->url[len - 1] == '/'; len--)
                reg->url[len - 1] = '\0';
        if (conf->basic_auth && !(reg->basic_auth = strdup(conf->basic_auth)))
                goto oom;
        if (conf->ca_location && !(reg->ca_location = strdup(conf->ca_location)))
                goto oom;
        reg->curl = curl_easy_init();
        if (!reg->curl) {
                snprintf(errstr, errstr_size, "schema registry %s: curl_easy_init failed",
                         reg->url);
                goto fail;
        }
        if (pthread_mutex_init(&reg->lock, NULL) != 0) {
                snprintf(errstr, errstr_size, "schema registry %s: cannot create its mutex",
                         reg->url);
                goto fail;
        }
        return reg;

oom:
        snprintf(errstr, errstr_size, "schema registry: out of memory");
fail:
        if (reg)
                registry_free(reg);
        return NULL;
}

void avk_registry_destroy(avk_registry_t *reg)
{
        if (!reg)
                return;
        pthread_mutex_destroy(&reg->lock);
        registry_free(reg);
}

static size_t response_write(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct response_buffer *response = userdata;
        size_t n = size * nmemb;

        /* Checked here too: a chunked answer has no Content-Length for
         * CURLOPT_MAXFILESIZE to refuse up front. */
        if (n > REGISTRY_MAX_RESPONSE - response->len) {
                response->too_big = 1;
                return 0; /* anything short of n makes curl abort the transfer */
        }
        if (response->len + n > response->cap) {
                size_t cap = response->cap ? response->cap : REGISTRY_INITIAL_RESPONSE_BYTES;
                while (cap < response->len + n)
                        cap *= 2;
                if (cap > REGISTRY_MAX_RESPONSE)
                        cap = REGISTRY_MAX_RESPONSE;
                char *grown = realloc(response->data, cap);
                if (!grown) {
                        response->out_of_memory = 1;
                        return 0;
                }
                response->data = grown;
                response->cap = cap;
        }
        memcpy(response->data + response->len, data, n);
        response->len += n;
        return n;
}

/* curl_easy_reset keeps the connection cache, so only the options are redone. */
static CURLcode setup_request(avk_registry_t *reg, const char *request_url, const char *post_body,
                              struct curl_slist *headers, struct response_buffer *response)
{
        CURL *curl = reg->curl;
        CURLcode rc;

        curl_easy_reset(curl);
        reg->curl_error[0] = '\0';
        if ((rc = curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, reg->curl_error)) != CURLE_OK)
                return rc;
        if ((rc = curl_easy_setopt(curl, CURLOPT_URL, request_url)) != CURLE_OK)
                return rc;
        /* A registry URL from configuration must not become file:// or worse. */
        if ((rc = curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https")) != CURLE_OK)
                return rc;
        /* Signals for DNS timeouts are unsafe in a threaded process. */
        if ((rc = curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK)
                return rc;
        if ((rc = curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, reg->timeout_ms)) != CURLE_OK)
                return rc;
        if ((rc = curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
                                   (curl_off_t)REGISTRY_MAX_RESPONSE)) != CURLE_OK)
                return rc;
        if ((rc = curl_easy_setopt(curl, CURLOPT_USERAGENT, REGISTRY_USER_AGENT)) != CURLE_OK)
                return rc;
        if ((rc = curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers)) != CURLE_OK)
                return rc;
        if ((rc = curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, response_write)) != CURLE_OK)
                return rc;
        if ((rc = curl_easy_setopt(curl, CURLOPT_WRITEDATA, response)) != CURLE_OK)
                return rc;
        if (reg->basic_auth) {
                if ((rc = curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC)) != CURLE_OK)
                        return rc;
                if ((rc = curl_easy_setopt(curl, CURLOPT_USERPWD, reg->basic_auth)) != CURLE_OK)
                        return rc;
        }
        if (reg->ca_location) {
                if ((rc = curl_easy_setopt(curl, CURLOPT_CAINFO, reg->ca_location)) != CURLE_OK)
                        return rc;
        }
        if (post_body) {
                if ((rc = curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                                           (curl_off_t)strlen(post_body))) != CURLE_OK)
                        return rc;
                if ((rc = curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post_body)) != CURLE_OK)
                        return rc;
        }
        return CURLE_OK;
}

/*
 * Sends one request (a POST when post_body is set) and parses the answer.
 * Returns 0 with *answer set to the JSON object of a 2xx answer and *status
 * to the HTTP status; -1 for a final 4xx answer; AVK_REGISTRY_UNAVAILABLE for
 * anything else (see registry.h). `what` names the schema in error sentences
 * ("schema id 42", "subject \"orders-value\"").
 */
static int registry_call(avk_registry_t *reg, const char *path, const char *post_body,
                         const char *what, json_t **answer, long *status, char *errstr,
                         size_t errstr_size)
{
        struct response_buffer response = {0};
        struct curl_slist *headers = NULL, *appended;
        char *request_url = NULL;
        json_t *body = NULL;
        json_error_t json_error;
        CURLcode rc;
        int ret = AVK_REGISTRY_UNAVAILABLE;

        *answer = NULL;
        *status = 0;
        request_url = concat3(reg->url, path, "");
        if (!request_url)
                goto oom;
        const char *header_lines[] = {
            "Accept: " REGISTRY_ACCEPT,
            /* POST only; curl would otherwise send form-urlencoded */
            post_body ? "Content-Type: " REGISTRY_CONTENT_TYPE : NULL,
            /* A 100-continue round trip only adds latency for bodies this small. */
            "Expect:",
        };
        for (size_t i = 0; i < sizeof(header_lines) / sizeof(header_lines[0]); i++) {
                if (!header_lines[i])
                        continue;
                appended = curl_slist_append(headers, header_lines[i]);
                if (!appended)
                        goto oom;
                headers = appended;
        }

        rc = setup_request(reg, request_url, post_body, headers, &response);
        if (rc != CURLE_OK) {
                snprintf(errstr, errstr_size,
                         "schema registry %s: cannot set up the request for %s: %s", reg->url, what,
                         curl_easy_strerror(rc));
                goto out;
        }
        rc = curl_easy_perform(reg->curl);
        if (response.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
                snprintf(errstr, errstr_size,
                         "schema registry %s answered with more than %u MiB for %s", reg->url,
                         REGISTRY_MAX_RESPONSE / (1024u * 1024u), what);
                goto out;
        }
        if (response.out_of_memory)
                goto oom;
        if (rc == CURLE_OPERATION_TIMEDOUT) {
                snprintf(errstr, errstr_size,
                         "schema registry %s: no answer within the timeout of %ld ms for %s",
                         reg->url, reg->timeout_ms, what);
                goto out;
        }
        if (rc != CURLE_OK) {
                snprintf(errstr, errstr_size, "schema registry %s: %s (for %s)", reg->url,
                         reg->curl_error[0] ? reg->curl_error : curl_easy_strerror(rc), what);
                goto out;
        }
        curl_easy_getinfo(reg->curl, CURLINFO_RESPONSE_CODE, status);

        if (response.len == 0) {
                snprintf(errstr, errstr_size,
                         "schema registry answered %ld with an empty body for %s", *status, what);
                goto out;
        }
        body = json_loadb(response.data, response.len, 0, &json_error);
        if (*status < 200 || *status > 299) {
                if (*status >= 400 && *status < 500 && *status != 408 && *status != 429)
                        ret = -1;
                json_t *code = json_object_get(body, "error_code");
                json_t *message = json_object_get(body, "message");
                if (json_is_integer(code) && json_is_string(message))
                        snprintf(errstr, errstr_size,
                                 "schema registry answered %ld (error %" JSON_INTEGER_FORMAT
                                 ": %s) for %s",
                                 *status, json_integer_value(code), json_string_value(message),
                                 what);
                else if (body)
                        snprintf(errstr, errstr_size,
                                 "schema registry answered %ld without an error_code and "
                                 "message for %s",
                                 *status, what);
                else
                        snprintf(errstr, errstr_size,
                                 "schema registry answered %ld with a body that is not JSON for "
                                 "%s",
                                 *status, what);
                goto out;
        }
        if (!body) {
                snprintf(errstr, errstr_size,
                         "schema registry answered %ld with a body that is not JSON (%s) for %s",
                         *status, json_error.text, what);
                goto out;
        }
        if (!json_is_object(body)) {
                snprintf(errstr, errstr_size,
                         "schema registry answered %ld with malformed JSON (not an object) for %s",
                         *status, what);
                goto out;
        }
        *answer = body;
        body = NULL;
        ret = 0;
        goto out;

oom:
        snprintf(errstr, errstr_size, "schema registry %s: out of memory for %s", reg->url, what);
out:
        json_decref(body);
        free(response.data);
        curl_slist_free_all(headers);
        free(request_url);
        return ret;
}

static int remember_registered(avk_registry_t *reg, const char *subject, const char *schema_json,
                               int32_t id)
{
        if (reg->registered_count == reg->registered_cap) {
                size_t cap = reg->registered_cap ? reg->registered_cap * 2 : 8;
                struct registered_schema *grown =
                    realloc(reg->registered, cap * sizeof(*reg->registered));
                if (!grown)
                        return -1;
                reg->registered = grown;
                reg->registered_cap = cap;
        }
        struct registered_schema entry = {strdup(subject), strdup(schema_json), id};
        if (!entry.subject || !entry.schema_json) {
                free(entry.subject);
                free(entry.schema_json);
                return -1;
        }
        reg->registered[reg->registered_count++] = entry;
        return 0;
}

int avk_registry_register(avk_registry_t *reg, const char *subject, const char *schema_json,
                          int32_t *id, char *errstr, size_t errstr_size)
{
        char *escaped = NULL, *path = NULL, *request_text = NULL;
        json_t *request = NULL, *answer = NULL;
        json_error_t json_error;
        char what[256];
        long status;
        int ret = AVK_REGISTRY_UNAVAILABLE;

        if (!subject || !*subject || !schema_json) {
                snprintf(errstr, errstr_size,
                         "schema registry: register needs a subject and a schema");
                return -1;
        }
        snprintf(what, sizeof(what), "subject \"%s\"", subject);

        pthread_mutex_lock(&reg->lock);
        for (size_t i = 0; i < reg->registered_count; i++) {
                if (strcmp(reg->registered[i].subject, subject) == 0 &&
                    strcmp(reg->registered[i].schema_json, schema_json) == 0) {
                        *id = reg->registered[i].id;
                        ret = 0;
                        goto out;
                }
        }

        escaped = curl_easy_escape(reg->curl, subject, 0);
        if (!escaped)
                goto oom;
        path = concat3("/subjects/", escaped, "/versions");
        if (!path)
                goto oom;
        request = json_pack_ex(&json_error, 0, "{s:s}", "schema", schema_json);
        if (!request) {
                snprintf(errstr, errstr_size, "schema registry: cannot send the schema for %s: %s",
                         what, json_error.text);
                ret = -1;
                goto out;
        }
        request_text = json_dumps(request, JSON_COMPACT);
        if (!request_text)
                goto oom;

        ret = registry_call(reg, path, request_text, what, &answer, &status, errstr, errstr_size);
        if (ret != 0)
                goto out;
        ret = AVK_REGISTRY_UNAVAILABLE;
        json_t *answer_id = json_object_get(answer, "id");
        if (!json_is_integer(answer_id) || json_integer_value(answer_id) < 0 ||
            json_integer_value(answer_id) > INT32_MAX) {
                snprintf(errstr, errstr_size,
                         "schema registry answered %ld with malformed JSON (no schema id in "
                         "\"id\") for %s",
                         status, what);
                goto out;
        }
        if (remember_registered(reg, subject, schema_json,
                                (int32_t)json_integer_value(answer_id)) != 0)
                goto oom;
        *id = (int32_t)json_integer_value(answer_id);
        ret = 0;
        goto out;

oom:
        snprintf(errstr, errstr_size, "schema registry %s: out of memory for %s", reg->url, what);
out:
        pthread_mutex_unlock(&reg->lock);
        json_decref(answer);
        json_decref(request);
        free(request_text);
        free(path);
        curl_free(escaped);
        return ret;
}

static const char *remember_fetched(avk_registry_t *reg, int32_t id, const char *schema_json)
{
        if (reg->fetched_count == reg->fetched_cap) {
                size_t cap = reg->fetched_cap ? reg->fetched_cap * 2 : 8;
                struct fetched_schema *grown = realloc(reg->fetched, cap * sizeof(*reg->fetched));
                if (!grown)
                        return NULL;
                reg->fetched = grown;
                reg->fetched_cap = cap;
        }
        char *copy = strdup(schema_json);
        if (!copy)
                return NULL;
        reg->fetched[reg->fetched_count++] = (struct fetched_schema){id, copy};
        return copy;
}

int avk_registry_fetch(avk_registry_t *reg, int32_t id, const char **schema_json, char *errstr,
                       size_t errstr_size)
{
        json_t *answer = NULL;
        char what[64], path[64];
        long status;
        int ret = AVK_REGISTRY_UNAVAILABLE;

        snprintf(what, sizeof(what), "schema id %" PRId32, id);
        snprintf(path, sizeof(path), "/schemas/ids/%" PRId32, id);

        pthread_mutex_lock(&reg->lock);
        for (size_t i = 0; i < reg->fetched_count; i++) {
                if (reg->fetched[i].id == id) {
                        *schema_json = reg->fetched[i].schema_json;
                        ret = 0;
                        goto out;
                }
        }

        ret = registry_call(reg, path, NULL, what, &answer, &status, errstr, errstr_size);
        if (ret != 0)
                goto out;
        ret = AVK_REGISTRY_UNAVAILABLE;
        json_t *schema = json_object_get(answer, "schema");
        json_t *type = json_object_get(answer, "schemaType");
        if (!json_is_string(schema) || (type && !json_is_string(type))) {
                snprintf(errstr, errstr_size,
                         "schema registry answered %ld with malformed JSON (no string \"schema\" "
                         "or a schemaType that is not a string) for %s",
                         status, what);
                goto out;
        }
        /* The registry omits schemaType for Avro; Protobuf or JSON Schema text would only fail
         * later, in the Avro parser, with a far less useful message. */
        if (type && strcmp(json_string_value(type), "AVRO") != 0) {
                snprintf(errstr, errstr_size,
                         "schema registry holds %s as a %s schema, and only AVRO is supported",
                         what, json_string_value(type));
                ret = -1;
                goto out;
        }
        const char *cached = remember_fetched(reg, id, json_string_value(schema));
        if (!cached) {
                snprintf(errstr, errstr_size, "schema registry %s: out of memory for %s", reg->url,
                         what);
                goto out;
        }
        *schema_json = cached;
        ret = 0;
out:
        pthread_mutex_unlock(&reg->lock);
        json_decref(answer);
        return ret;
}
