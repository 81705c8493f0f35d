/*
 * Tests for avk_registry against a fake Schema Registry served in-process by
 * libmicrohttpd on an ephemeral loopback port. The fake speaks just enough of
 * the Confluent API (register, fetch by id, Confluent error bodies) and can be
 * switched into failure modes, so each test shows what a caller of the client
 * gets back when the registry misbehaves.
 */
#include "common/registry.h"

#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ck_assert_contains(text, part)                                                             \
        ck_assert_msg(strstr((text), (part)) != NULL, "\"%s\" does not contain \"%s\"", (text),    \
                      (part))

#define FAKE_FIRST_ID     100
#define FAKE_MAX_SCHEMAS  32
#define FAKE_MAX_UPLOAD   (1024 * 1024)
#define FAKE_HANG_MS      1500
#define CLIENT_TIMEOUT_MS 300L
#define OVERSIZED_BYTES   (5 * 1024 * 1024)

static const char SCHEMA_A[] = "{\"type\":\"record\",\"name\":\"Deviation\",\"fields\":[{\"name\":"
                               "\"id\",\"type\":\"string\"}]}";
static const char SCHEMA_B[] = "{\"type\":\"record\",\"name\":\"Response\",\"fields\":[{\"name\":"
                               "\"text\",\"type\":\"string\"}]}";

enum fake_mode {
        FAKE_NORMAL,
        FAKE_FAIL_500,     /* 500 with a Confluent error body */
        FAKE_GARBAGE,      /* 200 with an HTML body */
        FAKE_NO_ID,        /* 200 with JSON that lacks "id" */
        FAKE_HANG,         /* answers only after FAKE_HANG_MS */
        FAKE_HUGE,         /* 200 with a Content-Length over 4 MiB */
        FAKE_HUGE_CHUNKED, /* 200, chunked, over 4 MiB */
};

/* What the fake last received; copied out under the lock by fake_seen(). */
struct fake_seen {
        int requests;
        char method[16];
        char url[512];
        char subject[256];
        char schema[1024];
        char content_type[128];
        char accept[128];
        char authorization[128];
};

struct fake_registry {
        struct MHD_Daemon *daemon;
        char url[64];
        atomic_int stopping;
        pthread_mutex_t lock; /* the MHD thread writes, the test thread reads */
        enum fake_mode mode;
        const char *schema_type; /* "schemaType" in fetch answers; NULL leaves it out */
        char *schemas[FAKE_MAX_SCHEMAS];
        size_t schema_count;
        struct fake_seen seen;
};

struct fake_upload {
        char *data;
        size_t len;
};

static struct fake_registry *fake;

static void copy_text(char *dst, size_t dst_size, const char *src)
{
        snprintf(dst, dst_size, "%s", src ? src : "");
}

static enum MHD_Result fake_respond(struct MHD_Connection *connection, unsigned int status,
                                    const char *content_type, char *body)
{
        struct MHD_Response *response =
            MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
        if (!response) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        enum MHD_Result ret = MHD_queue_response(connection, status, response);
        MHD_destroy_response(response);
        return ret;
}

static enum MHD_Result fake_respond_json(struct MHD_Connection *connection, unsigned int status,
                                         json_t *body)
{
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!text)
                return MHD_NO;
        return fake_respond(connection, status, "application/vnd.schemaregistry.v1+json", text);
}

static enum MHD_Result fake_error(struct MHD_Connection *connection, unsigned int status,
                                  int error_code, const char *message)
{
        return fake_respond_json(
            connection, status,
            json_pack("{s:i,s:s}", "error_code", error_code, "message", message));
}

static ssize_t fake_chunk(void *cls, uint64_t pos, char *buf, size_t max)
{
        (void)cls;
        if (pos >= OVERSIZED_BYTES)
                return MHD_CONTENT_READER_END_OF_STREAM;
        size_t n = OVERSIZED_BYTES - pos < max ? (size_t)(OVERSIZED_BYTES - pos) : max;
        memset(buf, ' ', n);
        return (ssize_t)n;
}

/* Answers a register: the same schema text always gets the same id. */
static enum MHD_Result fake_register(struct MHD_Connection *connection, const char *subject,
                                     const struct fake_upload *upload)
{
        json_t *request = json_loadb(upload->data, upload->len, 0, NULL);
        const char *schema = json_string_value(json_object_get(request, "schema"));
        int id = -1;

        if (!schema) {
                json_decref(request);
                return fake_error(connection, 422, 42201, "Invalid schema");
        }
        pthread_mutex_lock(&fake->lock);
        copy_text(fake->seen.subject, sizeof(fake->seen.subject), subject);
        copy_text(fake->seen.schema, sizeof(fake->seen.schema), schema);
        for (size_t i = 0; i < fake->schema_count; i++) {
                if (strcmp(fake->schemas[i], schema) == 0)
                        id = FAKE_FIRST_ID + (int)i;
        }
        if (id < 0 && fake->schema_count < FAKE_MAX_SCHEMAS) {
                fake->schemas[fake->schema_count] = strdup(schema);
                id = FAKE_FIRST_ID + (int)fake->schema_count++;
        }
        pthread_mutex_unlock(&fake->lock);
        json_decref(request);
        if (id < 0)
                return fake_error(connection, 500, 50001, "fake registry is full");
        return fake_respond_json(connection, 200, json_pack("{s:i}", "id", id));
}

static enum MHD_Result fake_fetch(struct MHD_Connection *connection, const char *id_text)
{
        char *end;
        long id = strtol(id_text, &end, 10);
        json_t *answer = NULL;

        pthread_mutex_lock(&fake->lock);
        long index = id - FAKE_FIRST_ID;
        if (*id_text && *end == '\0' && index >= 0 && index < (long)fake->schema_count) {
                answer = json_pack("{s:s}", "schema", fake->schemas[index]);
                if (fake->schema_type)
                        json_object_set_new(answer, "schemaType", json_string(fake->schema_type));
        }
        pthread_mutex_unlock(&fake->lock);
        if (!answer)
                return fake_error(connection, 404, 40403, "Schema not found");
        return fake_respond_json(connection, 200, answer);
}

static void fake_hang(void)
{
        /* In steps, so that teardown need not wait out the whole hang. */
        for (int waited = 0; waited < FAKE_HANG_MS && !atomic_load(&fake->stopping); waited += 20)
                usleep(20 * 1000);
}

static enum MHD_Result fake_handle(void *cls, struct MHD_Connection *connection, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
        struct fake_upload *upload = *con_cls;
        enum fake_mode mode;
        (void)cls;
        (void)version;

        if (!upload) {
                upload = calloc(1, sizeof(*upload));
                *con_cls = upload;
                return upload ? MHD_YES : MHD_NO;
        }
        if (*upload_data_size > 0) {
                if (upload->len + *upload_data_size > FAKE_MAX_UPLOAD)
                        return MHD_NO;
                char *grown = realloc(upload->data, upload->len + *upload_data_size);
                if (!grown)
                        return MHD_NO;
                memcpy(grown + upload->len, upload_data, *upload_data_size);
                upload->data = grown;
                upload->len += *upload_data_size;
                *upload_data_size = 0;
                return MHD_YES;
        }

        pthread_mutex_lock(&fake->lock);
        fake->seen.requests++;
        copy_text(fake->seen.method, sizeof(fake->seen.method), method);
        copy_text(fake->seen.url, sizeof(fake->seen.url), url);
        copy_text(
            fake->seen.content_type, sizeof(fake->seen.content_type),
            MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE));
        copy_text(fake->seen.accept, sizeof(fake->seen.accept),
                  MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT));
        copy_text(fake->seen.authorization, sizeof(fake->seen.authorization),
                  MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                              MHD_HTTP_HEADER_AUTHORIZATION));
        mode = fake->mode;
        pthread_mutex_unlock(&fake->lock);

        switch (mode) {
        case FAKE_FAIL_500:
                return fake_error(connection, 500, 50001, "Error in the backend datastore");
        case FAKE_GARBAGE:
                return fake_respond(connection, 200, "text/html",
                                    strdup("<html><body>proxy says hi</body></html>"));
        case FAKE_NO_ID:
                return fake_respond_json(connection, 200, json_pack("{s:i}", "version", 1));
        case FAKE_HUGE: {
                char *body = malloc(OVERSIZED_BYTES + 1);
                if (!body)
                        return MHD_NO;
                memset(body, ' ', OVERSIZED_BYTES);
                body[OVERSIZED_BYTES] = '\0';
                return fake_respond(connection, 200, "application/json", body);
        }
        case FAKE_HUGE_CHUNKED: {
                struct MHD_Response *response = MHD_create_response_from_callback(
                    MHD_SIZE_UNKNOWN, 64 * 1024, fake_chunk, NULL, NULL);
                enum MHD_Result ret = MHD_queue_response(connection, 200, response);
                MHD_destroy_response(response);
                return ret;
        }
        case FAKE_HANG:
                fake_hang();
                break;
        case FAKE_NORMAL:
                break;
        }

        static const char subjects[] = "/subjects/", versions[] = "/versions",
                          ids[] = "/schemas/ids/";
        size_t url_len = strlen(url);
        if (strcmp(method, "POST") == 0 && strncmp(url, subjects, strlen(subjects)) == 0 &&
            url_len > strlen(subjects) + strlen(versions) &&
            strcmp(url + url_len - strlen(versions), versions) == 0) {
                char subject[256];
                size_t subject_len = url_len - strlen(subjects) - strlen(versions);
                if (subject_len >= sizeof(subject))
                        return fake_error(connection, 422, 42201, "subject too long");
                memcpy(subject, url + strlen(subjects), subject_len);
                subject[subject_len] = '\0';
                return fake_register(connection, subject, upload);
        }
        if (strcmp(method, "GET") == 0 && strncmp(url, ids, strlen(ids)) == 0)
                return fake_fetch(connection, url + strlen(ids));
        return fake_error(connection, 404, 404, "HTTP 404 Not Found");
}

static void fake_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
        struct fake_upload *upload = *con_cls;
        (void)cls;
        (void)connection;
        (void)toe;
        if (upload) {
                free(upload->data);
                free(upload);
        }
        *con_cls = NULL;
}

static void fake_start(void)
{
        struct sockaddr_in loopback = {.sin_family = AF_INET, .sin_port = 0};
        loopback.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

        fake = calloc(1, sizeof(*fake));
        ck_assert_ptr_nonnull(fake);
        pthread_mutex_init(&fake->lock, NULL);
        fake->daemon = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, fake_handle, NULL, MHD_OPTION_SOCK_ADDR,
            &loopback, MHD_OPTION_NOTIFY_COMPLETED, fake_completed, NULL, MHD_OPTION_END);
        ck_assert_ptr_nonnull(fake->daemon);
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(fake->daemon, MHD_DAEMON_INFO_BIND_PORT);
        ck_assert_ptr_nonnull(info);
        ck_assert_uint_ne(info->port, 0);
        snprintf(fake->url, sizeof(fake->url), "http://127.0.0.1:%u", (unsigned)info->port);
}

static void fake_stop(void)
{
        atomic_store(&fake->stopping, 1);
        MHD_stop_daemon(fake->daemon);
        for (size_t i = 0; i < fake->schema_count; i++)
                free(fake->schemas[i]);
        pthread_mutex_destroy(&fake->lock);
        free(fake);
        fake = NULL;
}

static void fake_set_mode(enum fake_mode mode)
{
        pthread_mutex_lock(&fake->lock);
        fake->mode = mode;
        pthread_mutex_unlock(&fake->lock);
}

static void fake_set_schema_type(const char *schema_type)
{
        pthread_mutex_lock(&fake->lock);
        fake->schema_type = schema_type;
        pthread_mutex_unlock(&fake->lock);
}

/* Stores a schema as if another producer had registered it; returns its id. */
static int32_t fake_add_schema(const char *schema)
{
        pthread_mutex_lock(&fake->lock);
        ck_assert_uint_lt(fake->schema_count, FAKE_MAX_SCHEMAS);
        fake->schemas[fake->schema_count] = strdup(schema);
        int32_t id = FAKE_FIRST_ID + (int32_t)fake->schema_count++;
        pthread_mutex_unlock(&fake->lock);
        return id;
}

static struct fake_seen fake_seen(void)
{
        pthread_mutex_lock(&fake->lock);
        struct fake_seen seen = fake->seen;
        pthread_mutex_unlock(&fake->lock);
        return seen;
}

static avk_registry_t *client_for(const char *url, const char *basic_auth, long timeout_ms)
{
        struct avk_registry_conf conf = {
            .url = url, .basic_auth = basic_auth, .timeout_ms = timeout_ms};
        char errstr[512] = "";
        avk_registry_t *reg = avk_registry_new(&conf, errstr, sizeof(errstr));
        ck_assert_msg(reg != NULL, "avk_registry_new(\"%s\"): %s", url, errstr);
        return reg;
}

static avk_registry_t *client(void)
{
        return client_for(fake->url, NULL, 0);
}

static double elapsed_ms(const struct timespec *since)
{
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - since->tv_sec) * 1000.0 +
               (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

/* A port nothing listens on: bound once by us, then released. */
static unsigned unused_port(void)
{
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
        socklen_t addr_len = sizeof(addr);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &addr_len), 0);
        close(fd);
        return ntohs(addr.sin_port);
}

START_TEST(test_register_returns_id_and_caches_it)
{
        avk_registry_t *reg = client();
        char errstr[512] = "";
        int32_t id = -1, again = -1;

        ck_assert_msg(avk_registry_register(reg, "deviation.reported-value", SCHEMA_A, &id, errstr,
                                            sizeof(errstr)) == 0,
                      "%s", errstr);
        ck_assert_int_eq(id, FAKE_FIRST_ID);
        struct fake_seen seen = fake_seen();
        ck_assert_int_eq(seen.requests, 1);
        ck_assert_str_eq(seen.method, "POST");
        ck_assert_str_eq(seen.url, "/subjects/deviation.reported-value/versions");
        ck_assert_str_eq(seen.schema, SCHEMA_A);
        ck_assert_str_eq(seen.content_type, "application/vnd.schemaregistry.v1+json");
        ck_assert_contains(seen.accept, "application/vnd.schemaregistry.v1+json");

        ck_assert_msg(avk_registry_register(reg, "deviation.reported-value", SCHEMA_A, &again,
                                            errstr, sizeof(errstr)) == 0,
                      "%s", errstr);
        ck_assert_int_eq(again, FAKE_FIRST_ID);
        ck_assert_int_eq(fake_seen().requests, 1);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_register_cache_is_keyed_by_subject_and_schema)
{
        avk_registry_t *reg = client();
        char errstr[512] = "";
        int32_t id_b = -1, id_other_subject = -1;

        int32_t id_a = -1;
        ck_assert_msg(
            avk_registry_register(reg, "a-value", SCHEMA_A, &id_a, errstr, sizeof(errstr)) == 0,
            "%s", errstr);
        ck_assert_msg(
            avk_registry_register(reg, "a-value", SCHEMA_B, &id_b, errstr, sizeof(errstr)) == 0,
            "%s", errstr);
        ck_assert_int_eq(fake_seen().requests, 2);
        ck_assert_int_ne(id_a, id_b);
        ck_assert_msg(avk_registry_register(reg, "b-value", SCHEMA_A, &id_other_subject, errstr,
                                            sizeof(errstr)) == 0,
                      "%s", errstr);
        ck_assert_int_eq(fake_seen().requests, 3);
        ck_assert_str_eq(fake_seen().subject, "b-value");
        ck_assert_int_eq(id_other_subject, id_a);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_register_escapes_subject)
{
        /* Unescaped, '?' would start a query and '#' a fragment, and the path would
         * no longer end in /versions. */
        static const char subject[] = "deviation reported/v1?x=1#frag%20+\xc3\xa6\xc3\xb8";
        avk_registry_t *reg = client();
        char errstr[512] = "";
        int32_t id = -1;

        ck_assert_msg(avk_registry_register(reg, subject, SCHEMA_A, &id, errstr, sizeof(errstr)) ==
                          0,
                      "%s", errstr);
        ck_assert_int_eq(id, FAKE_FIRST_ID);
        ck_assert_str_eq(fake_seen().subject, subject);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_trailing_slash_is_stripped)
{
        char url[80];
        snprintf(url, sizeof(url), "%s/", fake->url);
        avk_registry_t *reg = client_for(url, NULL, 0);
        char errstr[512] = "";
        int32_t id = -1;

        ck_assert_msg(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)) == 0, "%s",
            errstr);
        ck_assert_str_eq(fake_seen().url, "/subjects/s-value/versions");

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_fetch_returns_schema_and_caches_it)
{
        int32_t id = fake_add_schema(SCHEMA_B);
        avk_registry_t *reg = client();
        char errstr[512] = "";
        const char *schema = NULL, *again = NULL;

        ck_assert_msg(avk_registry_fetch(reg, id, &schema, errstr, sizeof(errstr)) == 0, "%s",
                      errstr);
        ck_assert_str_eq(schema, SCHEMA_B);
        struct fake_seen seen = fake_seen();
        ck_assert_int_eq(seen.requests, 1);
        ck_assert_str_eq(seen.method, "GET");
        ck_assert_contains(seen.accept, "application/vnd.schemaregistry.v1+json");

        ck_assert_msg(avk_registry_fetch(reg, id, &again, errstr, sizeof(errstr)) == 0, "%s",
                      errstr);
        ck_assert_ptr_eq(again, schema);
        ck_assert_int_eq(fake_seen().requests, 1);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_fetch_accepts_explicit_avro_type)
{
        int32_t id = fake_add_schema(SCHEMA_A);
        fake_set_schema_type("AVRO");
        avk_registry_t *reg = client();
        char errstr[512] = "";
        const char *schema = NULL;

        ck_assert_msg(avk_registry_fetch(reg, id, &schema, errstr, sizeof(errstr)) == 0, "%s",
                      errstr);
        ck_assert_str_eq(schema, SCHEMA_A);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_fetch_rejects_protobuf)
{
        int32_t id = fake_add_schema("syntax = \"proto3\"; message M {}");
        fake_set_schema_type("PROTOBUF");
        avk_registry_t *reg = client();
        char errstr[512] = "";
        const char *schema = NULL;

        ck_assert_int_eq(avk_registry_fetch(reg, id, &schema, errstr, sizeof(errstr)), -1);
        ck_assert_contains(errstr, "PROTOBUF");
        ck_assert_ptr_null(schema);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_fetch_unknown_id_names_error_code)
{
        avk_registry_t *reg = client();
        char errstr[512] = "";
        const char *schema = NULL;

        ck_assert_int_eq(avk_registry_fetch(reg, 42, &schema, errstr, sizeof(errstr)), -1);
        ck_assert_contains(errstr, "404");
        ck_assert_contains(errstr, "40403");
        ck_assert_contains(errstr, "not found");
        ck_assert_contains(errstr, "schema id 42");
        ck_assert_ptr_null(schema);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_server_error_names_status)
{
        fake_set_mode(FAKE_FAIL_500);
        avk_registry_t *reg = client();
        char errstr[512] = "";
        int32_t id = -1;

        ck_assert_int_eq(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)), -1);
        ck_assert_contains(errstr, "500");
        ck_assert_contains(errstr, "50001");
        ck_assert_contains(errstr, "backend datastore");
        ck_assert_contains(errstr, "s-value");

        /* A failure is not cached: the registry is asked again once it recovers. */
        fake_set_mode(FAKE_NORMAL);
        ck_assert_msg(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)) == 0, "%s",
            errstr);
        ck_assert_int_eq(id, FAKE_FIRST_ID);
        ck_assert_int_eq(fake_seen().requests, 2);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_garbage_body_is_not_json)
{
        fake_set_mode(FAKE_GARBAGE);
        avk_registry_t *reg = client();
        char errstr[512] = "";
        int32_t id = -1;
        const char *schema = NULL;

        ck_assert_int_eq(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)), -1);
        ck_assert_contains(errstr, "200");
        ck_assert_contains(errstr, "not JSON");

        errstr[0] = '\0';
        ck_assert_int_eq(avk_registry_fetch(reg, 7, &schema, errstr, sizeof(errstr)), -1);
        ck_assert_contains(errstr, "not JSON");
        ck_assert_contains(errstr, "schema id 7");

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_answer_without_id_is_malformed)
{
        fake_set_mode(FAKE_NO_ID);
        avk_registry_t *reg = client();
        char errstr[512] = "";
        int32_t id = -1;

        ck_assert_int_eq(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)), -1);
        ck_assert_contains(errstr, "200");
        ck_assert_contains(errstr, "malformed");
        ck_assert_int_eq(id, -1);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_oversized_answer_is_refused)
{
        static const enum fake_mode modes[] = {FAKE_HUGE, FAKE_HUGE_CHUNKED};
        avk_registry_t *reg = client();
        char errstr[512] = "";
        const char *schema = NULL;

        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
                fake_set_mode(modes[i]);
                errstr[0] = '\0';
                ck_assert_int_eq(avk_registry_fetch(reg, 1, &schema, errstr, sizeof(errstr)), -1);
                ck_assert_contains(errstr, "4 MiB");
        }

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_hanging_registry_times_out)
{
        fake_set_mode(FAKE_HANG);
        avk_registry_t *reg = client_for(fake->url, NULL, CLIENT_TIMEOUT_MS);
        char errstr[512] = "";
        int32_t id = -1;
        struct timespec start;

        clock_gettime(CLOCK_MONOTONIC, &start);
        ck_assert_int_eq(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)), -1);
        double took = elapsed_ms(&start);
        ck_assert_msg(took < 1000.0, "register took %.0f ms against a %ld ms timeout", took,
                      CLIENT_TIMEOUT_MS);
        ck_assert_contains(errstr, "timeout");
        ck_assert_contains(errstr, "300 ms");

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_basic_auth_is_sent)
{
        avk_registry_t *reg = client_for(fake->url, "user:secret", 0);
        char errstr[512] = "";
        int32_t id = -1;

        ck_assert_msg(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)) == 0, "%s",
            errstr);
        /* base64("user:secret") */
        ck_assert_str_eq(fake_seen().authorization, "Basic dXNlcjpzZWNyZXQ=");
        avk_registry_destroy(reg);

        reg = client();
        ck_assert_msg(
            avk_registry_register(reg, "t-value", SCHEMA_A, &id, errstr, sizeof(errstr)) == 0, "%s",
            errstr);
        ck_assert_str_eq(fake_seen().authorization, "");
        avk_registry_destroy(reg);
}
END_TEST

struct register_thread {
        avk_registry_t *reg;
        int32_t id;
        int ret;
        char errstr[256];
};

static void *register_in_thread(void *arg)
{
        struct register_thread *t = arg;
        t->ret = avk_registry_register(t->reg, "shared-value", SCHEMA_A, &t->id, t->errstr,
                                       sizeof(t->errstr));
        return NULL;
}

START_TEST(test_threads_share_one_registration)
{
        enum { THREADS = 8 };
        struct register_thread threads[THREADS];
        pthread_t tids[THREADS];
        avk_registry_t *reg = client();

        for (int i = 0; i < THREADS; i++) {
                threads[i] = (struct register_thread){.reg = reg, .id = -1, .ret = -2};
                ck_assert_int_eq(pthread_create(&tids[i], NULL, register_in_thread, &threads[i]),
                                 0);
        }
        for (int i = 0; i < THREADS; i++)
                pthread_join(tids[i], NULL);
        for (int i = 0; i < THREADS; i++) {
                ck_assert_msg(threads[i].ret == 0, "thread %d: %s", i, threads[i].errstr);
                ck_assert_int_eq(threads[i].id, FAKE_FIRST_ID);
        }
        /* The lock is held across the request, so the first thread's answer is cached
         * before any other thread looks. */
        ck_assert_int_eq(fake_seen().requests, 1);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_unreachable_registry_names_url)
{
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%u", unused_port());
        avk_registry_t *reg = client_for(url, NULL, 2000);
        char errstr[512] = "";
        int32_t id = -1;
        const char *schema = NULL;

        ck_assert_int_eq(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)), -1);
        ck_assert_contains(errstr, url);
        ck_assert_contains(errstr, "connect");

        errstr[0] = '\0';
        ck_assert_int_eq(avk_registry_fetch(reg, 1, &schema, errstr, sizeof(errstr)), -1);
        ck_assert_contains(errstr, url);
        ck_assert_contains(errstr, "connect");

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_bad_urls_are_rejected)
{
        static const char *const urls[] = {"ftp://x", "", "localhost:8081", "http://",
                                           "https:///subjects"};
        char errstr[512];

        for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
                struct avk_registry_conf conf = {.url = urls[i]};
                errstr[0] = '\0';
                avk_registry_t *reg = avk_registry_new(&conf, errstr, sizeof(errstr));
                ck_assert_msg(reg == NULL, "\"%s\" was accepted", urls[i]);
                ck_assert_contains(errstr, "schema registry url");
        }

        struct avk_registry_conf no_url = {.url = NULL};
        errstr[0] = '\0';
        ck_assert_ptr_null(avk_registry_new(&no_url, errstr, sizeof(errstr)));
        ck_assert_contains(errstr, "empty");

        struct avk_registry_conf negative = {.url = "http://localhost:8081", .timeout_ms = -1};
        errstr[0] = '\0';
        ck_assert_ptr_null(avk_registry_new(&negative, errstr, sizeof(errstr)));
        ck_assert_contains(errstr, "timeout");
}
END_TEST

START_TEST(test_https_url_is_accepted)
{
        struct avk_registry_conf conf = {.url = "https://registry.example:8081/",
                                         .ca_location = "/etc/ssl/certs/ca-certificates.crt"};
        char errstr[512] = "";
        avk_registry_t *reg = avk_registry_new(&conf, errstr, sizeof(errstr));
        ck_assert_msg(reg != NULL, "%s", errstr);
        avk_registry_destroy(reg);
}
END_TEST

static Suite *registry_suite(void)
{
        Suite *suite = suite_create("registry");

        TCase *with_fake = tcase_create("with_fake");
        tcase_add_checked_fixture(with_fake, fake_start, fake_stop);
        tcase_add_test(with_fake, test_register_returns_id_and_caches_it);
        tcase_add_test(with_fake, test_register_cache_is_keyed_by_subject_and_schema);
        tcase_add_test(with_fake, test_register_escapes_subject);
        tcase_add_test(with_fake, test_trailing_slash_is_stripped);
        tcase_add_test(with_fake, test_fetch_returns_schema_and_caches_it);
        tcase_add_test(with_fake, test_fetch_accepts_explicit_avro_type);
        tcase_add_test(with_fake, test_fetch_rejects_protobuf);
        tcase_add_test(with_fake, test_fetch_unknown_id_names_error_code);
        tcase_add_test(with_fake, test_server_error_names_status);
        tcase_add_test(with_fake, test_garbage_body_is_not_json);
        tcase_add_test(with_fake, test_answer_without_id_is_malformed);
        tcase_add_test(with_fake, test_oversized_answer_is_refused);
        tcase_add_test(with_fake, test_hanging_registry_times_out);
        tcase_add_test(with_fake, test_basic_auth_is_sent);
        tcase_add_test(with_fake, test_threads_share_one_registration);
        suite_add_tcase(suite, with_fake);

        TCase *without_fake = tcase_create("without_fake");
        tcase_add_test(without_fake, test_unreachable_registry_names_url);
        tcase_add_test(without_fake, test_bad_urls_are_rejected);
        tcase_add_test(without_fake, test_https_url_is_accepted);
        suite_add_tcase(suite, without_fake);

        return suite;
}

int main(void)
{
        SRunner *runner = srunner_create(registry_suite());
        srunner_run_all(runner, CK_NORMAL);
        int failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
