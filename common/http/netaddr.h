/*
 * avk_netaddr: the listen addresses of avvik's HTTP endpoints (gateway,
 * metrics and health endpoints of the services, dashboard), written
 * "host:port" or "[IPv6 address]:port" in configuration. Port 0 asks the
 * kernel for a free port (tests read it back from the server).
 */
#ifndef AVK_NETADDR_H
#define AVK_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

/**
 * @brief Resolves listen (the value of configuration key key) to a socket
 * address for bind().
 * @returns 0, or -1 with a sentence naming key and the reason in errstr.
 */
int avk_netaddr_resolve_listen(const char *key, const char *listen, struct sockaddr_storage *addr,
                               char *errstr, size_t errstr_size);

#endif
