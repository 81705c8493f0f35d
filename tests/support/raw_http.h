/*
 * raw_http: HTTP as bytes over a TCP socket, for tests that send what a
 * client library would not (ambiguous framing, idle and slow connections)
 * and see exactly what the server wrote back and whether it closed.
 */
#ifndef AVK_TEST_RAW_HTTP_H
#define AVK_TEST_RAW_HTTP_H

/**
 * @brief Connects to 127.0.0.1:port from the address source (NULL: any;
 * "127.0.0.2" is another client on loopback).
 * @returns the socket, or -1 (errno set).
 */
int raw_http_connect(const char *source, int port);

/**
 * @brief Sends request (NULL: nothing) on fd, then reads until the server
 * closes the connection or timeout_ms pass without a byte.
 * @returns what was read, NUL-terminated (free() it); *closed is 1 when the
 * server closed the connection.
 */
char *raw_http_exchange(int fd, const char *request, int timeout_ms, int *closed);

/** @brief How many times needle occurs in text. */
int raw_http_count(const char *text, const char *needle);

#endif
