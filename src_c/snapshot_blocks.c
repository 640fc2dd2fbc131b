/*
 * snapshot_blocks.c - a snapshot's table loaded block by block, as reads
 * first need it, so that a reopen costs its header and the blocks the first
 * reads touch (64 KiB each) instead of the whole table (16 MB at a million
 * keys).
 *
 * Opening checks the snapshot's header and its table of block CRCs
 * (snapshot.c) and leaves the index's memory untouched. A read first makes
 * sure that every block on its key's probe path, from the home slot to the
 * first empty one, has been read, its CRC compared, and its slots checked;
 * only then does it probe. Any other call (a write, iteration, a count,
 * stats, compaction) may touch any slot, so it loads the rest first
 * (store_enter_all). Blocks never change while some are still to come: the
 * first write has loaded them all.
 *
 * Checking a block alone needs to know how many non-empty slots run into it
 * from before (an entry may sit that far from its home): that run is
 * counted in the blocks before it, read for the purpose (almost always only
 * the one before), so no claim of the file is taken on trust. Each block's
 * counts must be those the snapshot states for it, which open saw add up
 * to the header's.
 *
 * A block that fails costs what a bad snapshot costs at open: the whole log
 * is scanned into a fresh index (scan_rebuild) and stats say why. The
 * answers given before came from blocks that had passed every check.
 */
#include "store_private.h"
#include "crc32c.h"
#include "table_check.h"

#include <stdlib.h>

enum { LAZY_ABSENT = 0, LAZY_READ, LAZY_CHECKED };

void snapshot_lazy_free(snapshot_lazy *L)
{
    if (!L)
        return;
    close(L->fd);
    free(L->state);
    free(L->block);
    free(L);
}

static void failed(snapshot_lazy *L, int status)
{
    if (!L->failed)
        L->failed = status;
}

static fkv_slot *block_at(fkv_store *s, uint64_t b)
{
    return s->ix.slots + b * s->lazy->block_slots;
}

/* Read block b and compare its CRC: 1 if it is in. */
static int block_read(fkv_store *s, uint64_t b)
{
    snapshot_lazy *L = s->lazy;
    if (L->state[b] != LAZY_ABSENT)
        return 1;
    size_t bytes = (size_t)L->block_slots * sizeof(fkv_slot), got;
    uint8_t *dst = (uint8_t *)block_at(s, b);
    if (fkv_read_at(L->fd, dst, bytes, L->body_off + b * bytes, &got, FKV_MAY_WAIT) != FKV_OK ||
        got != bytes) {
        failed(L, SNAP_UNREADABLE);
        return 0;
    }
    if (fkv_crc32c(0, dst, bytes) != L->block[b].crc) {
        failed(L, SNAP_BAD_CHECKSUM);
        return 0;
    }
    L->state[b] = LAZY_READ;
    L->read++;
    return 1;
}

/* The non-empty slots just before block b, counted back (wrapping) to the
 * nearest empty one: 1 with *run set, 0 if a block failed or none is empty. */
static int run_before(fkv_store *s, uint64_t b, uint64_t *run)
{
    snapshot_lazy *L = s->lazy;
    uint64_t n = 0;
    for (uint64_t k = 1; k <= L->nblocks; k++) {
        uint64_t p = (b + L->nblocks - k) & (L->nblocks - 1);
        if (!block_read(s, p))
            return 0;
        const fkv_slot *sl = block_at(s, p);
        for (uint64_t i = L->block_slots; i-- > 0; n++)
            if (sl[i].loc == FKV_LOC_EMPTY) {
                *run = n;
                return 1;
            }
    }
    failed(L, SNAP_BAD_TABLE); /* no empty slot: probing would never stop */
    return 0;
}

/* Block b read and checked slot by slot: 1 if it passed. */
static int block_check(fkv_store *s, uint64_t b)
{
    snapshot_lazy *L = s->lazy;
    if (L->state[b] == LAZY_CHECKED)
        return 1;
    uint64_t run;
    if (!block_read(s, b) || !run_before(s, b, &run))
        return 0;
    table_check c;
    table_check_start(&c, s->ix.cap, L->end);
    const snapshot_block *k = &L->block[b];
    if (!table_check_block(&c, block_at(s, b), b * L->block_slots, (size_t)L->block_slots, run) ||
        c.n_live != k->live || c.n_deleted != k->deleted || c.n_dl != k->ttl) {
        failed(L, SNAP_BAD_TABLE);
        return 0;
    }
    L->state[b] = LAZY_CHECKED;
    L->checked++;
    return 1;
}

/* Every block is checked (their counts add up to the header's, as open
 * saw): the snapshot's file is let go. */
static void all_in(fkv_store *s)
{
    snapshot_lazy_free(s->lazy);
    s->lazy = NULL;
}

/* A block failed: scan the whole log instead, as an open would have. */
static int rescan(fkv_store *s)
{
    snapshot_lazy *L = s->lazy;
    int rc = scan_rebuild(s);
    if (rc != FKV_OK)
        return rc; /* the log itself is damaged: as an open would have failed */
    s->snapshot_status = L->failed ? L->failed : SNAP_BAD_TABLE;
    snapshot_lazy_free(L);
    s->lazy = NULL;
    s->snapshot_seq = UINT64_MAX; /* close saves a good one */
    snapshot_covers(s, 0);
    return FKV_OK;
}

int snapshot_ready_path(fkv_store *s, uint32_t hash, fkv_wait wait)
{
    snapshot_lazy *L = s->lazy;
    uint64_t pos = fkv_index_home(&s->ix, hash);
    for (uint64_t k = 0; k <= L->nblocks && !L->failed; k++) {
        uint64_t b = pos / L->block_slots, last = (b + 1) * L->block_slots;
        if (L->state[b] != LAZY_CHECKED) {
            if (wait == FKV_NO_WAIT)
                return FKV_EAGAIN; /* file reads: not while the caller holds the GIL */
            if (!block_check(s, b))
                break;
            if (L->checked == L->nblocks) { /* the last one: L goes */
                all_in(s);
                return FKV_OK;
            }
        }
        for (; pos < last; pos++)
            if (s->ix.slots[pos].loc == FKV_LOC_EMPTY)
                return FKV_OK;
        pos = last & (s->ix.cap - 1);
    }
    if (wait == FKV_NO_WAIT)
        return FKV_EAGAIN;
    return s->lazy ? rescan(s) : FKV_OK;
}

int snapshot_finish(fkv_store *s)
{
    snapshot_lazy *L = s->lazy;
    if (!L->failed && L->read == 0) {
        /* Nothing read yet: all in one pass, read ahead by a helper thread. */
        int status = snapshot_load_all(L, s->ix.slots, s->ix.cap);
        if (status == SNAP_LOADED) {
            snapshot_lazy_free(L);
            s->lazy = NULL;
            return FKV_OK;
        }
        failed(L, status);
    }
    for (uint64_t b = 0; b < L->nblocks && !L->failed; b++)
        block_check(s, b);
    if (L->failed)
        return rescan(s);
    all_in(s);
    return FKV_OK;
}

int fkv_debug_snapshot_blocks(fkv_store *s, uint64_t *checked, uint64_t *total)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    *checked = s->lazy ? s->lazy->checked : 0;
    *total = s->lazy ? s->lazy->nblocks : 0;
    store_leave(s);
    return FKV_OK;
}
