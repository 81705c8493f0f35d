/* HTTP as bytes for tests: see raw_http.h. */
#include "tests/support/raw_http.h"

#include <check.h>
#include <stdio.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int raw_http_connect(const char *source, int port)
{
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
                return -1;
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
        if (source) {
                struct sockaddr_in from = {.sin_family = AF_INET};
                inet_pton(AF_INET, source, &from.sin_addr);
                if (bind(fd, (struct sockaddr *)&from, sizeof(from)) != 0) {
                        close(fd);
                        return -1;
                }
        }
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
                close(fd);
                return -1;
        }
        return fd;
}

char *raw_http_exchange(int fd, const char *request, int timeout_ms, int *closed)
{
        size_t len = 0, cap = 4096;
        char *text = malloc(cap);
        *closed = 0;
        if (!text)
                return NULL;
        for (size_t sent = 0, total = request ? strlen(request) : 0; sent < total;) {
                ssize_t n = send(fd, request + sent, total - sent, MSG_NOSIGNAL);
                if (n <= 0)
                        break;
                sent += (size_t)n;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        while (poll(&p, 1, timeout_ms) > 0) {
                if (len + 1024 > cap) {
                        char *grown = realloc(text, cap *= 2);
                        if (!grown)
                                break;
                        text = grown;
                }
                ssize_t n = recv(fd, text + len, cap - len - 1, 0);
                if (n <= 0) {
                        *closed = 1;
                        break;
                }
                len += (size_t)n;
        }
        text[len] = '\0';
        return text;
}

int raw_http_count(const char *text, const char *needle)
{
        int n = 0;
        for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
                n++;
        return n;
}

void raw_http_hold_idle(int port, int *fds, int cnt)
{
        for (int i = 0; i < cnt; i++) {
                fds[i] = raw_http_connect(NULL, port);
                ck_assert_msg(fds[i] >= 0, "idle connection %d refused by the kernel", i);
        }
        usleep(200 * 1000); /* the server accepted (or refused) them all */
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double raw_http_slowest_get(const char *source, int port, const char *path, int cnt)
{
        char request[512];
        snprintf(request, sizeof(request),
                 "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
        double slowest = 0;
        for (int i = 0; i < cnt; i++) {
                double t0 = now_s();
                int fd = raw_http_connect(source, port), closed;
                ck_assert_msg(fd >= 0, "GET %s %d from %s: cannot connect", path, i, source);
                char *answer = raw_http_exchange(fd, request, 2000, &closed);
                close(fd);
                double took = now_s() - t0;
                slowest = took > slowest ? took : slowest;
                ck_assert_msg(answer && strncmp(answer, "HTTP/1.1 200", 12) == 0,
                              "GET %s %d from %s: \"%s\"", path, i, source, answer);
                free(answer);
        }
        return slowest;
}
