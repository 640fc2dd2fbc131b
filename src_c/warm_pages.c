/* warm_pages.c - pages of a data file known to be in memory (warm_pages.h). */
#include "platform.h" /* first: sets the feature macros */
#include "warm_pages.h"
#include "clock.h"
#include "file_map.h"

#include <stdlib.h>

#define PAGE_SHIFT 12
#define CHUNK_SHIFT 10 /* pages per chunk: 4 MiB of file, 4 KiB of table */
#define CHUNKS (size_t)(FKV_MAP_BYTES >> PAGE_SHIFT >> CHUNK_SHIFT)
#define TICK_SHIFT 10  /* milliseconds to ticks of 1,024 ms */

/* Chunks made on first note: an open, and a store that is never read,
 * costs 2 KiB and no system call. */
struct fkv_warm {
    uintptr_t chunk[CHUNKS]; /* uint32_t[1 << CHUNK_SHIFT] each, or 0 */
};

/* Never 0 (a page never noted) nor 1 (so that tick - 1 is not 0 either). */
static inline uint32_t tick_now(void)
{
    return (uint32_t)(fkv_coarse_ms() >> TICK_SHIFT) + 2u;
}

fkv_warm *fkv_warm_new(void)
{
    return (fkv_warm *)calloc(1, sizeof(fkv_warm));
}

void fkv_warm_free(fkv_warm *w)
{
    if (!w)
        return;
    for (size_t c = 0; c < CHUNKS; c++)
        free((void *)w->chunk[c]);
    free(w);
}

static uint32_t *chunk_of(fkv_warm *w, uint64_t page)
{
    uintptr_t *at = &w->chunk[page >> CHUNK_SHIFT];
    uintptr_t have = fkv_atomic_load(at, FKV_ACQUIRE);
    if (have)
        return (uint32_t *)have;
    uint32_t *fresh = (uint32_t *)calloc((size_t)1 << CHUNK_SHIFT, sizeof(uint32_t));
    if (!fresh)
        return NULL;
    if (fkv_atomic_cas_word(at, &have, (uintptr_t)fresh))
        return fresh;
    free(fresh); /* another thread made it first */
    return (uint32_t *)have;
}

void fkv_warm_note(fkv_warm *w, uint64_t off, uint64_t n)
{
    if (!w || n == 0 || off + n > FKV_MAP_BYTES)
        return;
    uint32_t tick = tick_now();
    for (uint64_t p = off >> PAGE_SHIFT; p <= (off + n - 1) >> PAGE_SHIFT; p++) {
        uint32_t *chunk = chunk_of(w, p);
        if (!chunk)
            return;
        uint32_t *at = &chunk[p & ((1u << CHUNK_SHIFT) - 1)];
        if (fkv_atomic_load(at, FKV_RELAXED) != tick) /* not dirtying a line for nothing */
            fkv_atomic_store(at, tick, FKV_RELAXED);
    }
}

int fkv_warm_all(const fkv_warm *w, uint64_t off, uint64_t n)
{
    if (!w || n == 0 || off + n > FKV_MAP_BYTES)
        return 0;
    uint32_t tick = tick_now();
    for (uint64_t p = off >> PAGE_SHIFT; p <= (off + n - 1) >> PAGE_SHIFT; p++) {
        uintptr_t chunk = fkv_atomic_load(&w->chunk[p >> CHUNK_SHIFT], FKV_ACQUIRE);
        if (!chunk)
            return 0;
        uint32_t seen = fkv_atomic_load(&((const uint32_t *)chunk)[p & ((1u << CHUNK_SHIFT) - 1)],
                                        FKV_RELAXED);
        if (seen == 0 || seen + 1u < tick)
            return 0;
    }
    return 1;
}
