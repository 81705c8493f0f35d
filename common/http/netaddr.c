/* avk_netaddr: see netaddr.h. */
#include "common/http/netaddr.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int avk_netaddr_resolve_listen(const char *key, const char *listen, struct sockaddr_storage *addr,
                               char *errstr, size_t errstr_size)
{
        char host[256];
        const char *port;
        const char *colon = listen[0] == '[' ? strchr(listen, ']') : strrchr(listen, ':');
        if (listen[0] == '[') {
                if (!colon || colon[1] != ':')
                        goto bad;
                snprintf(host, sizeof(host), "%.*s", (int)(colon - listen - 1), listen + 1);
                port = colon + 2;
        } else {
                if (!colon || colon == listen)
                        goto bad;
                snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
                port = colon + 1;
        }
        if (!*port || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 ||
            atoi(port) > 65535)
                goto bad;
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                        *res;
        int rc = getaddrinfo(host, port, &hints, &res);
        if (rc != 0) {
                snprintf(errstr, errstr_size, "%s: %s: %s", key, host, gai_strerror(rc));
                return -1;
        }
        memcpy(addr, res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);
        return 0;
bad:
        snprintf(errstr, errstr_size, "%s: \"%s\": expected host:port or [address]:port", key,
                 listen);
        return -1;
}
