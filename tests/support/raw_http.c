/* HTTP as bytes for tests: see raw_http.h. */
#include "tests/support/raw_http.h"

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
