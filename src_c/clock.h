/*
 * clock.h - the one place the core reads the time.
 *
 * TTL deadlines are wall-clock milliseconds since the Unix epoch, so they
 * survive a reopen. Tests can pin the clock (fkv_clock_set) to check expiry
 * without sleeping; the override is process-wide. Never touches Python.
 */
#ifndef FKV_CLOCK_H
#define FKV_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (or the pinned value). */
uint64_t fkv_now_ms(void);

/* Pin the clock at ms; 0 returns to the real clock. For tests. */
void fkv_clock_set(uint64_t ms);

/* Microseconds of a clock that never jumps, for timeouts (never pinned). */
uint64_t fkv_monotonic_us(void);

/* Milliseconds of that clock, read cheaply at a few milliseconds' grain. */
uint64_t fkv_coarse_ms(void);

/* Sleep ms milliseconds, resuming after signals. For test hooks. */
void fkv_sleep_ms(uint64_t ms);

#endif /* FKV_CLOCK_H */
