/* clock.c - wall-clock milliseconds, with a pin for tests (see clock.h). */
#include "platform.h" /* first: sets the feature macros */
#include "clock.h"

#include <errno.h>
#include <time.h>

static volatile uint64_t pinned_ms;

uint64_t fkv_now_ms(void)
{
    uint64_t pin = fkv_atomic_load(&pinned_ms, FKV_RELAXED);
    if (pin)
        return pin;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void fkv_clock_set(uint64_t ms)
{
    fkv_atomic_store(&pinned_ms, ms, FKV_RELAXED);
}

uint64_t fkv_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t fkv_coarse_ms(void)
{
    struct timespec ts;
    clock_gettime(FKV_CLOCK_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void fkv_sleep_ms(uint64_t ms)
{
    struct timespec pause = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
}
