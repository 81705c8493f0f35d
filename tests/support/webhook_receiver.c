/* The test webhook endpoint: see webhook_receiver.h. */
#include "tests/support/webhook_receiver.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/http/webhook.h"
#include "common/util/secret.h"

#define SCRIPT_MAX 16

struct webhook_receiver {
        struct MHD_Daemon *daemon;
        pthread_mutex_t lock;
        char url[64];
        int script[SCRIPT_MAX];
        size_t script_cnt, script_next;
        int hang_cnt, hang_ms;
        int answered;
        atomic_int stopping;
        struct webhook_request requests[WEBHOOK_RECEIVER_MAX];
        int count;
        unsigned char key[AVK_SECRET_MAX];
        size_t key_len; /* 0: signatures are not checked */
};

struct upload {
        char *body;
        size_t len;
};

static void copy_header(struct MHD_Connection *c, const char *name, char *dst, size_t size)
{
        const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
        snprintf(dst, size, "%s", v ? v : "");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *data_size, void **con_cls)
{
        (void)url;
        (void)method;
        (void)version;
        struct webhook_receiver *r = cls;
        struct upload *up = *con_cls;
        if (!up) {
                *con_cls = up = calloc(1, sizeof(*up));
                return up ? MHD_YES : MHD_NO;
        }
        if (*data_size) {
                char *grown = realloc(up->body, up->len + *data_size + 1);
                if (!grown)
                        return MHD_NO;
                up->body = grown;
                memcpy(up->body + up->len, data, *data_size);
                up->len += *data_size;
                up->body[up->len] = '\0';
                *data_size = 0;
                return MHD_YES;
        }
        int status, hang = 0, refused = 0;
        pthread_mutex_lock(&r->lock);
        if (r->count < WEBHOOK_RECEIVER_MAX) {
                struct webhook_request *req = &r->requests[r->count++];
                copy_header(c, "X-Avvik-Event-Id", req->event_id, sizeof(req->event_id));
                copy_header(c, "X-Avvik-Event-Type", req->event_type, sizeof(req->event_type));
                copy_header(c, "X-Avvik-Batch-Id", req->batch_id, sizeof(req->batch_id));
                copy_header(c, "X-Avvik-Signature", req->signature, sizeof(req->signature));
                copy_header(c, "X-Avvik-Timestamp", req->timestamp, sizeof(req->timestamp));
                copy_header(c, "Content-Type", req->content_type, sizeof(req->content_type));
                req->body = up->body ? up->body : strdup("");
                req->body_len = up->len;
                up->body = NULL;
                if (r->key_len && avk_webhook_verify(r->key, r->key_len, req->signature,
                                                     req->event_type, req->body, req->body_len,
                                                     time(NULL), AVK_WEBHOOK_TOLERANCE_S,
                                                     req->refused, sizeof(req->refused)) != 0)
                        refused = 1;
        }
        status = r->script[r->script_next];
        if (r->script_next + 1 < r->script_cnt)
                r->script_next++;
        if (refused)
                status = 401;
        if (r->hang_cnt != 0) {
                hang = r->hang_ms;
                if (r->hang_cnt > 0)
                        r->hang_cnt--;
        }
        pthread_mutex_unlock(&r->lock);
        for (int waited = 0; waited < hang && !atomic_load(&r->stopping); waited += 10)
                usleep(10000);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
        MHD_destroy_response(resp);
        pthread_mutex_lock(&r->lock);
        r->answered++;
        pthread_mutex_unlock(&r->lock);
        return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
        (void)cls;
        (void)c;
        (void)toe;
        struct upload *up = *con_cls;
        if (up) {
                free(up->body);
                free(up);
        }
        *con_cls = NULL;
}

struct webhook_receiver *webhook_receiver_start(const char *cert_pem, const char *key_pem)
{
        struct webhook_receiver *r = calloc(1, sizeof(*r));
        ck_assert_ptr_nonnull(r);
        pthread_mutex_init(&r->lock, NULL);
        r->script[0] = 200;
        r->script_cnt = 1;
        struct sockaddr_in loopback = {.sin_family = AF_INET, .sin_port = 0};
        loopback.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
        if (cert_pem) {
                ck_assert_msg(MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES,
                              "libmicrohttpd without TLS");
                flags |= MHD_USE_TLS;
        }
        struct MHD_OptionItem tls[] = {
            {cert_pem ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)cert_pem},
            {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key_pem},
            {MHD_OPTION_END, 0, NULL}};
        r->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, r, MHD_OPTION_SOCK_ADDR,
                                     &loopback, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                                     MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
        ck_assert_msg(r->daemon != NULL, "MHD_start_daemon on 127.0.0.1 failed");
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(r->daemon, MHD_DAEMON_INFO_BIND_PORT);
        snprintf(r->url, sizeof(r->url), "%s://127.0.0.1:%u/hook", cert_pem ? "https" : "http",
                 (unsigned)info->port);
        return r;
}

void webhook_receiver_stop(struct webhook_receiver *r)
{
        if (!r)
                return;
        atomic_store(&r->stopping, 1);
        MHD_stop_daemon(r->daemon);
        for (int i = 0; i < r->count; i++)
                free(r->requests[i].body);
        pthread_mutex_destroy(&r->lock);
        free(r);
}

const char *webhook_receiver_url(const struct webhook_receiver *r)
{
        return r->url;
}

void webhook_receiver_verify(struct webhook_receiver *r, const void *key, size_t key_len)
{
        ck_assert_uint_le(key_len, sizeof(r->key));
        pthread_mutex_lock(&r->lock);
        memcpy(r->key, key, key_len);
        r->key_len = key_len;
        pthread_mutex_unlock(&r->lock);
}

void webhook_receiver_script(struct webhook_receiver *r, const int *statuses, size_t cnt)
{
        ck_assert(cnt > 0 && cnt <= SCRIPT_MAX);
        pthread_mutex_lock(&r->lock);
        memcpy(r->script, statuses, cnt * sizeof(*statuses));
        r->script_cnt = cnt;
        r->script_next = 0;
        pthread_mutex_unlock(&r->lock);
}

void webhook_receiver_hang(struct webhook_receiver *r, int cnt, int ms)
{
        pthread_mutex_lock(&r->lock);
        r->hang_cnt = cnt;
        r->hang_ms = ms;
        pthread_mutex_unlock(&r->lock);
}

int webhook_receiver_count(struct webhook_receiver *r)
{
        pthread_mutex_lock(&r->lock);
        int n = r->count;
        pthread_mutex_unlock(&r->lock);
        return n;
}

int webhook_receiver_answered(struct webhook_receiver *r)
{
        pthread_mutex_lock(&r->lock);
        int n = r->answered;
        pthread_mutex_unlock(&r->lock);
        return n;
}

struct webhook_request webhook_receiver_request(struct webhook_receiver *r, int i)
{
        pthread_mutex_lock(&r->lock);
        ck_assert_int_lt(i, r->count);
        struct webhook_request copy = r->requests[i];
        copy.body = malloc(copy.body_len + 1);
        ck_assert_ptr_nonnull(copy.body);
        memcpy(copy.body, r->requests[i].body, copy.body_len + 1);
        pthread_mutex_unlock(&r->lock);
        return copy;
}

void webhook_request_free(struct webhook_request *req)
{
        free(req->body);
        req->body = NULL;
}
