/* service_thread: see service_thread.h. */
#include "tests/support/service_thread.h"

#include <check.h>

static void *run_service(void *arg)
{
        struct service_thread *t = arg;
        t->rc = t->run(t->service, t->err, sizeof(t->err));
        return NULL;
}

void service_thread_start(struct service_thread *t, void *service,
                          int (*run)(void *service, char *errstr, size_t errstr_size),
                          void (*stop)(void *service))
{
        t->service = service;
        t->run = run;
        t->stop = stop;
        t->rc = 0;
        ck_assert_int_eq(pthread_create(&t->thread, NULL, run_service, t), 0);
}

void service_thread_stop(struct service_thread *t)
{
        t->stop(t->service);
        pthread_join(t->thread, NULL);
        ck_assert_msg(t->rc == 0, "%s", t->err);
}
