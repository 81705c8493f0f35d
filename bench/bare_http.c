/*
 * bare_http: the yardstick for the gateway's capacity - libmicrohttpd with
 * nothing of avvik in it, threaded as the gateway is (an internal epoll
 * thread pool of THREADS threads) and with the gateway's 16 KiB of memory a
 * connection (common/http/server.c: libmicrohttpd zeroes it after every
 * request, so its default 32 KiB would cost this side more). It takes POST bodies of up to 64 KB,
 * checks the bearer token by comparing it with TOKEN, and answers 202 with
 * a body of the gateway's shape ({"id":...,"status":"accepted"}) once the
 * body is in; no validation, no Kafka. It writes its port to PORT_FILE and
 * serves until SIGTERM or SIGINT.
 *
 * usage: bare_http PORT_FILE TOKEN THREADS
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#define MAX_BODY 65536

static const char *token;
static const char reply[] =
    "{\"id\":\"00000000-0000-4000-8000-000000000000\",\"status\":\"accepted\"}";

struct upload {
        size_t len;
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *text)
{
        struct MHD_Response *r =
            MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
        if (!r)
                return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        enum MHD_Result rc = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **state)
{
        (void)cls;
        (void)url;
        (void)version;
        (void)data;
        struct upload *u = *state;
        if (!u) {
                if (!(u = calloc(1, sizeof(*u))))
                        return MHD_NO;
                *state = u;
                return MHD_YES;
        }
        if (*data_size) {
                u->len += *data_size;
                *data_size = 0;
                return MHD_YES;
        }
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (strcmp(method, "POST") != 0)
                return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "{}");
        if (!auth || strncmp(auth, "Bearer ", 7) != 0 || strcmp(auth + 7, token) != 0)
                return answer(c, MHD_HTTP_UNAUTHORIZED, "{}");
        if (u->len == 0 || u->len > MAX_BODY)
                return answer(c, MHD_HTTP_BAD_REQUEST, "{}");
        return answer(c, MHD_HTTP_ACCEPTED, reply);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode why)
{
        (void)cls;
        (void)c;
        (void)why;
        free(*state);
        *state = NULL;
}

int main(int argc, char **argv)
{
        if (argc != 4 || atoi(argv[3]) < 1) {
                fprintf(stderr, "usage: bare_http PORT_FILE TOKEN THREADS\n");
                return 2;
        }
        token = argv[2];
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        pthread_sigmask(SIG_BLOCK, &stop, NULL); /* the server's threads inherit it */
        struct MHD_Daemon *d = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
            on_request, NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)atoi(argv[3]),
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            (size_t)(16 * 1024), MHD_OPTION_END);
        if (!d) {
                fprintf(stderr, "bare_http: cannot start the server\n");
                return 1;
        }
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        FILE *f = fopen(argv[1], "w");
        if (!info || !f || fprintf(f, "%u\n", info->port) < 0 || fclose(f) != 0) {
                fprintf(stderr, "bare_http: %s: cannot write the port\n", argv[1]);
                MHD_stop_daemon(d);
                return 1;
        }
        int sig;
        sigwait(&stop, &sig);
        MHD_stop_daemon(d);
        return 0;
}
