/*
 * fake_registry: see fake_registry.h.
 *
 * libmicrohttpd calls the handler on its own thread, once per request with no
 * upload data (to set up the connection's state), then once per piece of the
 * body, then a last time with none left - where the request is answered. The
 * fake's state is shared with the test thread under one mutex.
 */
#include "tests/support/fake_registry.h"

#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_UPLOAD (1024 * 1024)

struct subject_count {
        char *subject;
        int registrations;
};

struct fake_registry {
        struct MHD_Daemon *daemon;
        char url[64];
        atomic_int stopping;
        pthread_mutex_t lock; /* the daemon's thread writes, the test thread reads */
        enum fake_registry_mode mode;
        const char *schema_type; /* "schemaType" in fetch answers; NULL leaves it out */
        char *schemas[FAKE_REGISTRY_MAX];
        size_t schema_cnt;
        struct subject_count subjects[FAKE_REGISTRY_MAX];
        size_t subject_cnt;
        FILE *kept; /* fake_registry_keep_in()'s file, appended to; NULL when none */
        struct fake_registry_seen seen;
};

struct upload {
        char *data;
        size_t len;
};

static void copy_text(char *dst, size_t dst_size, const char *src)
{
        snprintf(dst, dst_size, "%s", src ? src : "");
}

static enum MHD_Result respond(struct MHD_Connection *connection, unsigned int status,
                               const char *content_type, char *body)
{
        if (!body)
                return MHD_NO;
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

static enum MHD_Result respond_json(struct MHD_Connection *connection, unsigned int status,
                                    json_t *body)
{
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        return respond(connection, status, "application/vnd.schemaregistry.v1+json", text);
}

static enum MHD_Result respond_error(struct MHD_Connection *connection, unsigned int status,
                                     int error_code, const char *message)
{
        return respond_json(connection, status,
                            json_pack("{s:i,s:s}", "error_code", error_code, "message", message));
}

static ssize_t oversized_chunk(void *cls, uint64_t pos, char *buf, size_t max)
{
        (void)cls;
        if (pos >= FAKE_REGISTRY_OVERSIZED)
                return MHD_CONTENT_READER_END_OF_STREAM;
        size_t n =
            FAKE_REGISTRY_OVERSIZED - pos < max ? (size_t)(FAKE_REGISTRY_OVERSIZED - pos) : max;
        memset(buf, ' ', n);
        return (ssize_t)n;
}

/* Under the lock. */
static void count_registration(struct fake_registry *fake, const char *subject)
{
        for (size_t i = 0; i < fake->subject_cnt; i++) {
                if (strcmp(fake->subjects[i].subject, subject) == 0) {
                        fake->subjects[i].registrations++;
                        return;
                }
        }
        if (fake->subject_cnt < FAKE_REGISTRY_MAX) {
                char *copy = strdup(subject);
                if (copy)
                        fake->subjects[fake->subject_cnt++] = (struct subject_count){copy, 1};
        }
}

/* Under the lock: the id of schema, stored if new; -1 when full. */
static int32_t store_schema(struct fake_registry *fake, const char *schema)
{
        for (size_t i = 0; i < fake->schema_cnt; i++) {
                if (strcmp(fake->schemas[i], schema) == 0)
                        return FAKE_REGISTRY_FIRST_ID + (int32_t)i;
        }
        if (fake->schema_cnt >= FAKE_REGISTRY_MAX)
                return -1;
        char *copy = strdup(schema);
        if (!copy)
                return -1;
        fake->schemas[fake->schema_cnt] = copy;
        if (fake->kept) {
                /* One JSON string a line, flushed at once: a SIGKILL loses no id. */
                json_t *line = json_string(schema);
                if (!line || json_dumpf(line, fake->kept, JSON_ENCODE_ANY) != 0 ||
                    fputc('\n', fake->kept) == EOF || fflush(fake->kept) != 0) {
                        json_decref(line);
                        free(copy);
                        return -1;
                }
                json_decref(line);
        }
        return FAKE_REGISTRY_FIRST_ID + (int32_t)fake->schema_cnt++;
}

/* Answers a register: the same schema text always gets the same id. */
static enum MHD_Result answer_register(struct fake_registry *fake,
                                       struct MHD_Connection *connection, const char *subject,
                                       const struct upload *upload)
{
        json_t *request = json_loadb(upload->data ? upload->data : "", upload->len, 0, NULL);
        const char *schema = json_string_value(json_object_get(request, "schema"));

        if (!schema) {
                json_decref(request);
                return respond_error(connection, 422, 42201, "Invalid schema");
        }
        pthread_mutex_lock(&fake->lock);
        fake->seen.registers++;
        copy_text(fake->seen.subject, sizeof(fake->seen.subject), subject);
        copy_text(fake->seen.schema, sizeof(fake->seen.schema), schema);
        count_registration(fake, subject);
        int32_t id = store_schema(fake, schema);
        pthread_mutex_unlock(&fake->lock);
        json_decref(request);
        if (id < 0)
                return respond_error(connection, 500, 50001, "fake registry is full");
        return respond_json(connection, 200, json_pack("{s:i}", "id", (int)id));
}

static enum MHD_Result answer_fetch(struct fake_registry *fake, struct MHD_Connection *connection,
                                    const char *id_text)
{
        char *end;
        long id = strtol(id_text, &end, 10);
        json_t *answer = NULL;

        pthread_mutex_lock(&fake->lock);
        fake->seen.fetches++;
        long index = id - FAKE_REGISTRY_FIRST_ID;
        if (*id_text && *end == '\0' && index >= 0 && index < (long)fake->schema_cnt) {
                answer = json_pack("{s:s}", "schema", fake->schemas[index]);
                if (answer && fake->schema_type)
                        json_object_set_new(answer, "schemaType", json_string(fake->schema_type));
        }
        pthread_mutex_unlock(&fake->lock);
        if (!answer)
                return respond_error(connection, 404, 40403, "Schema not found");
        return respond_json(connection, 200, answer);
}

static void hang(struct fake_registry *fake)
{
        /* In steps, so that stopping need not wait out the whole hang. */
        for (int waited = 0; waited < FAKE_REGISTRY_HANG_MS && !atomic_load(&fake->stopping);
             waited += 20)
                usleep(20 * 1000);
}

/* Collects the body; returns 1 when the request is complete and to be answered. */
static int collect_upload(struct upload *upload, const char *data, size_t *size, int *ok)
{
        *ok = 1;
        if (*size == 0)
                return 1;
        if (upload->len + *size > MAX_UPLOAD) {
                *ok = 0;
                return 0;
        }
        char *grown = realloc(upload->data, upload->len + *size);
        if (!grown) {
                *ok = 0;
                return 0;
        }
        memcpy(grown + upload->len, data, *size);
        upload->data = grown;
        upload->len += *size;
        *size = 0;
        return 0;
}

static void note_request(struct fake_registry *fake, struct MHD_Connection *connection,
                         const char *method, const char *url)
{
        struct fake_registry_seen *seen = &fake->seen;
        seen->requests++;
        copy_text(seen->method, sizeof(seen->method), method);
        copy_text(seen->url, sizeof(seen->url), url);
        copy_text(
            seen->content_type, sizeof(seen->content_type),
            MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE));
        copy_text(seen->accept, sizeof(seen->accept),
                  MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT));
        copy_text(seen->authorization, sizeof(seen->authorization),
                  MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                              MHD_HTTP_HEADER_AUTHORIZATION));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
        struct fake_registry *fake = cls;
        struct upload *upload = *con_cls;
        (void)version;

        if (!upload) {
                upload = calloc(1, sizeof(*upload));
                *con_cls = upload;
                return upload ? MHD_YES : MHD_NO;
        }
        int ok;
        if (!collect_upload(upload, upload_data, upload_data_size, &ok))
                return ok ? MHD_YES : MHD_NO;

        pthread_mutex_lock(&fake->lock);
        note_request(fake, connection, method, url);
        enum fake_registry_mode mode = fake->mode;
        pthread_mutex_unlock(&fake->lock);

        switch (mode) {
        case FAKE_REGISTRY_FAIL_500:
                return respond_error(connection, 500, 50001, "Error in the backend datastore");
        case FAKE_REGISTRY_GARBAGE:
                return respond(connection, 200, "text/html",
                               strdup("<html><body>proxy says hi</body></html>"));
        case FAKE_REGISTRY_NO_ID:
                return respond_json(connection, 200, json_pack("{s:i}", "version", 1));
        case FAKE_REGISTRY_HUGE: {
                char *body = malloc(FAKE_REGISTRY_OVERSIZED + 1);
                if (!body)
                        return MHD_NO;
                memset(body, ' ', FAKE_REGISTRY_OVERSIZED);
                body[FAKE_REGISTRY_OVERSIZED] = '\0';
                return respond(connection, 200, "application/json", body);
        }
        case FAKE_REGISTRY_HUGE_CHUNKED: {
                struct MHD_Response *response = MHD_create_response_from_callback(
                    MHD_SIZE_UNKNOWN, 64 * 1024, oversized_chunk, NULL, NULL);
                if (!response)
                        return MHD_NO;
                enum MHD_Result ret = MHD_queue_response(connection, 200, response);
                MHD_destroy_response(response);
                return ret;
        }
        case FAKE_REGISTRY_HANG:
                hang(fake);
                break;
        case FAKE_REGISTRY_NORMAL:
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
                        return respond_error(connection, 422, 42201, "subject too long");
                memcpy(subject, url + strlen(subjects), subject_len);
                subject[subject_len] = '\0';
                return answer_register(fake, connection, subject, upload);
        }
        if (strcmp(method, "GET") == 0 && strncmp(url, ids, strlen(ids)) == 0)
                return answer_fetch(fake, connection, url + strlen(ids));
        return respond_error(connection, 404, 404, "HTTP 404 Not Found");
}

static void completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
        struct upload *upload = *con_cls;
        (void)cls;
        (void)connection;
        (void)toe;
        if (upload) {
                free(upload->data);
                free(upload);
        }
        *con_cls = NULL;
}

struct fake_registry *fake_registry_start(enum fake_registry_mode mode, char *errstr,
                                          size_t errstr_size)
{
        return fake_registry_start_on(mode, 0, errstr, errstr_size);
}

struct fake_registry *fake_registry_start_on(enum fake_registry_mode mode, unsigned port,
                                             char *errstr, size_t errstr_size)
{
        struct sockaddr_in loopback = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        loopback.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

        struct fake_registry *fake = calloc(1, sizeof(*fake));
        if (!fake) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        pthread_mutex_init(&fake->lock, NULL);
        fake->mode = mode;
        fake->daemon =
            MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handle, fake,
                             MHD_OPTION_SOCK_ADDR, &loopback, MHD_OPTION_LISTENING_ADDRESS_REUSE,
                             1u, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
        if (!fake->daemon) {
                snprintf(errstr, errstr_size, "MHD_start_daemon on 127.0.0.1:%u failed", port);
                fake_registry_stop(fake);
                return NULL;
        }
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(fake->daemon, MHD_DAEMON_INFO_BIND_PORT);
        if (!info || info->port == 0) {
                snprintf(errstr, errstr_size, "the fake registry's daemon has no port");
                fake_registry_stop(fake);
                return NULL;
        }
        snprintf(fake->url, sizeof(fake->url), "http://127.0.0.1:%u", (unsigned)info->port);
        return fake;
}

struct fake_registry *fake_registry_start_or_fail(void)
{
        char errstr[256] = "";
        struct fake_registry *fake =
            fake_registry_start(FAKE_REGISTRY_NORMAL, errstr, sizeof(errstr));
        ck_assert_msg(fake != NULL, "fake registry: %s", errstr);
        return fake;
}

void fake_registry_stop(struct fake_registry *fake)
{
        if (!fake)
                return;
        atomic_store(&fake->stopping, 1);
        if (fake->daemon)
                MHD_stop_daemon(fake->daemon);
        for (size_t i = 0; i < fake->schema_cnt; i++)
                free(fake->schemas[i]);
        for (size_t i = 0; i < fake->subject_cnt; i++)
                free(fake->subjects[i].subject);
        if (fake->kept)
                fclose(fake->kept);
        pthread_mutex_destroy(&fake->lock);
        free(fake);
}

int fake_registry_keep_in(struct fake_registry *fake, const char *path, char *errstr,
                          size_t errstr_size)
{
        int rc = -1;
        FILE *kept = fopen(path, "a+");
        if (!kept) {
                snprintf(errstr, errstr_size, "%s: cannot open", path);
                return -1;
        }
        rewind(kept);
        pthread_mutex_lock(&fake->lock);
        char *text = NULL;
        size_t text_size = 0;
        int line_no = 0;
        while (getline(&text, &text_size, kept) != -1) {
                line_no++;
                json_t *line = json_loads(text, JSON_DECODE_ANY, NULL);
                const char *schema = json_string_value(line);
                int32_t id = schema ? store_schema(fake, schema) : -1;
                json_decref(line);
                if (id < 0) {
                        snprintf(errstr, errstr_size, "%s: line %d: not a JSON string", path,
                                 line_no);
                        goto out;
                }
        }
        if (ferror(kept)) {
                snprintf(errstr, errstr_size, "%s: read error", path);
                goto out;
        }
        fake->kept = kept;
        kept = NULL;
        rc = 0;
out:
        pthread_mutex_unlock(&fake->lock);
        free(text);
        if (kept)
                fclose(kept);
        return rc;
}

const char *fake_registry_url(const struct fake_registry *fake)
{
        return fake->url;
}

void fake_registry_set_mode(struct fake_registry *fake, enum fake_registry_mode mode)
{
        pthread_mutex_lock(&fake->lock);
        fake->mode = mode;
        pthread_mutex_unlock(&fake->lock);
}

void fake_registry_set_schema_type(struct fake_registry *fake, const char *schema_type)
{
        pthread_mutex_lock(&fake->lock);
        fake->schema_type = schema_type;
        pthread_mutex_unlock(&fake->lock);
}

int32_t fake_registry_add_schema(struct fake_registry *fake, const char *schema)
{
        pthread_mutex_lock(&fake->lock);
        int32_t id = store_schema(fake, schema);
        pthread_mutex_unlock(&fake->lock);
        return id;
}

struct fake_registry_seen fake_registry_seen(struct fake_registry *fake)
{
        pthread_mutex_lock(&fake->lock);
        struct fake_registry_seen seen = fake->seen;
        pthread_mutex_unlock(&fake->lock);
        return seen;
}

int fake_registry_registrations(struct fake_registry *fake, const char *subject)
{
        int n = 0;
        pthread_mutex_lock(&fake->lock);
        for (size_t i = 0; i < fake->subject_cnt; i++) {
                if (strcmp(fake->subjects[i].subject, subject) == 0)
                        n = fake->subjects[i].registrations;
        }
        pthread_mutex_unlock(&fake->lock);
        return n;
}

char *fake_registry_schema(struct fake_registry *fake, int32_t id)
{
        char *copy = NULL;
        pthread_mutex_lock(&fake->lock);
        int64_t index = (int64_t)id - FAKE_REGISTRY_FIRST_ID;
        if (index >= 0 && index < (int64_t)fake->schema_cnt)
                copy = strdup(fake->schemas[index]);
        pthread_mutex_unlock(&fake->lock);
        return copy;
}

unsigned fake_registry_unused_port(void)
{
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
        socklen_t addr_len = sizeof(addr);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
                return 0;
        unsigned port = 0;
        if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
            getsockname(fd, (struct sockaddr *)&addr, &addr_len) == 0)
                port = ntohs(addr.sin_port);
        close(fd);
        return port;
}
