/* clock: thin wrappers over clock_gettime. */
#include "services/base/clock.h"

#include <errno.h>
#include <time.h>

static int64_t clock_us(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_wall_ms(void) { return clock_us(CLOCK_REALTIME) / 1000; }
int64_t clock_mono_ms(void) { return clock_us(CLOCK_MONOTONIC) / 1000; }
int64_t clock_mono_us(void) { return clock_us(CLOCK_MONOTONIC); }

int64_t clock_thread_cpu_us(void) { return clock_us(CLOCK_THREAD_CPUTIME_ID); }

void clock_sleep_ms(int64_t ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void clock_sleep_until_us(int64_t mono_us) {
    struct timespec ts = {mono_us / 1000000, (mono_us % 1000000) * 1000};
    if (mono_us <= 0) return;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}
