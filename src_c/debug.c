/*
 * debug.c - the test hooks (fkv_debug_* in store.h), in one place: each
 * lets a test make happen what a real system does rarely (a slow disk, a
 * failed flush, a kill in the middle of a replace) or look at what is
 * otherwise hidden (how much of a snapshot has loaded). None is on a path
 * a store takes unless a test set it.
 */
#include "snapshot.h"

int fkv_debug_hold(fkv_store *s, uint64_t ms)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    fkv_sleep_ms(ms);
    store_leave(s);
    return FKV_OK;
}

/* read.c sleeps in the next read that may wait, after the mutex is let go. */
int fkv_debug_pause_next_read(fkv_store *s, uint64_t ms)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    s->debug_read_pause_ms = ms;
    store_leave(s);
    return FKV_OK;
}

int fkv_debug_reads_paused(fkv_store *s)
{
    return (int)fkv_atomic_load(&s->debug_reads_paused, FKV_RELAXED);
}

/* commit.c fails its next flush with err in place of calling fdatasync. */
int fkv_debug_fail_next_flush(fkv_store *s, int err)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    s->fail_next_flush = err;
    store_leave(s);
    return FKV_OK;
}

int fkv_debug_snapshot_blocks(fkv_store *s, uint64_t *checked, uint64_t *total)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    snapshot_blocks_loaded(s, checked, total);
    store_leave(s);
    return FKV_OK;
}

/* file_io.c's replace ends the process when it reaches this step. */
void fkv_debug_kill_at_replace_step(int step)
{
    fkv_atomic_store(&fkv_replace_kill_step, step, FKV_RELAXED);
}
