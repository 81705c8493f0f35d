/*
 * service_thread: a service's run loop (avk_notify_run(), avk_analysis_run(),
 * ...) on a thread of its own while the test drives its inputs, and the
 * stop that ends it, joins it and fails the test if the loop failed.
 */
#ifndef AVK_TEST_SERVICE_THREAD_H
#define AVK_TEST_SERVICE_THREAD_H

#include <pthread.h>
#include <stddef.h>

struct service_thread {
        void *service;
        int (*run)(void *service, char *errstr, size_t errstr_size);
        void (*stop)(void *service);
        pthread_t thread;
        int rc;
        char err[512]; /**< the loop's error; also room for the service's creation error */
};

/** @brief Runs run(service) on a new thread; stop(service) must make it return. */
void service_thread_start(struct service_thread *t, void *service,
                          int (*run)(void *service, char *errstr, size_t errstr_size),
                          void (*stop)(void *service));

/** @brief Stops the service, joins the thread, and fails the test if run failed. */
void service_thread_stop(struct service_thread *t);

#endif
