/* clock: wall and monotonic time (and a thread's CPU time). Wall time stamps events;
 * monotonic time measures delays and deadlines, immune to clock steps. */
#ifndef AISLE_CLOCK_H
#define AISLE_CLOCK_H

#include <stdint.h>

int64_t clock_wall_ms(void);
int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);
/* CPU time the calling thread has used, in microseconds (for benches). */
int64_t clock_thread_cpu_us(void);
/* Sleeps ms milliseconds, resuming after signals. */
void clock_sleep_ms(int64_t ms);
/* Sleeps until clock_mono_us() reaches mono_us (a high-resolution timer:
 * tens of microseconds late, where a millisecond sleep rounds up), resuming
 * after signals; returns at once for a time already past. */
void clock_sleep_until_us(int64_t mono_us);

#endif
