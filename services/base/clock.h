/* clock: wall and monotonic time in milliseconds. Wall time stamps events;
 * monotonic time measures delays and deadlines, immune to clock steps. */
#ifndef AISLE_CLOCK_H
#define AISLE_CLOCK_H

#include <stdint.h>

int64_t clock_wall_ms(void);
int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);
/* Sleeps ms milliseconds, resuming after signals. */
void clock_sleep_ms(int64_t ms);

#endif
