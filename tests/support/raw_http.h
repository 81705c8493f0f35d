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

/**
 * @brief Opens cnt connections to 127.0.0.1:port from 127.0.0.1 into fds and
 * leaves them idle (close them with close()); a failure fails the test.
 */
void raw_http_hold_idle(int port, int *fds, int cnt);

/**
 * @brief GETs path cnt times from the address source, each on a connection of
 * its own; every answer must be 200, or the test fails.
 * @returns the slowest answer's time, in seconds.
 */
double raw_http_slowest_get(const char *source, int port, const char *path, int cnt);

/** @brief How many times needle occurs in text. */
int raw_http_count(const char *text, const char *needle);

#endif
