/* warm_pages.c - pages of a data file known to be in memory (warm_pages.h). */
#include "platform.h" /* first: sets the feature macros */
#include "warm_pages.h"
#include "clock.h"
#include "file_map.h"

#include <stdlib.h>

#define PAGE_SHIFT 12
#define TICK_SHIFT 10 /* milliseconds to ticks of 1,024 ms */

/* Never 0 (a page never noted) nor 1 (so that tick - 1 is not 0 either). */
static inline uint32_t tick_now(void)
{
    return (uint32_t)(fkv_coarse_ms() >> TICK_SHIFT) + 2u;
}

uint32_t *fkv_warm_new(void)
{
    return (uint32_t *)calloc((size_t)(FKV_MAP_BYTES >> PAGE_SHIFT), sizeof(uint32_t));
}

void fkv_warm_free(uint32_t *w)
{
    free(w);
}

void fkv_warm_note(uint32_t *w, uint64_t off, uint64_t n)
{
    if (!w || n == 0 || off + n > FKV_MAP_BYTES)
        return;
    uint32_t tick = tick_now();
    for (uint64_t p = off >> PAGE_SHIFT; p <= (off + n - 1) >> PAGE_SHIFT; p++) {
        if (fkv_atomic_load(&w[p], FKV_RELAXED) != tick) /* not dirtying a line for nothing */
            fkv_atomic_store(&w[p], tick, FKV_RELAXED);
    }
}

int fkv_warm_all(const uint32_t *w, uint64_t off, uint64_t n)
{
    if (!w || n == 0 || off + n > FKV_MAP_BYTES)
        return 0;
    uint32_t tick = tick_now();
    for (uint64_t p = off >> PAGE_SHIFT; p <= (off + n - 1) >> PAGE_SHIFT; p++) {
        uint32_t seen = fkv_atomic_load(&w[p], FKV_RELAXED);
        if (seen == 0 || seen + 1u < tick)
            return 0;
    }
    return 1;
}
