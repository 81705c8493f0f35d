/* wait_for: see wait_for.h. */
#include "tests/support/wait_for.h"

#include <time.h>

int64_t wait_for_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
