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
 * After a crash, open walks the log past the snapshot as always (torn tail
 * dropped, damage refused) but the records are kept aside (snapshot_keep),
 * chained by the block of their key's home slot: a read applies its home
 * block's records, in log order, before it probes (each record's own path
 * checked first), and any other call applies them all. Too many to keep (a
 * quarter of the table's slots), or more than the table holds without
 * growing: open loads the whole table and applies the rest as it walks.
 *
 * A block that fails makes these calls answer FKV_ESNAPSHOT; the store's
 * layer rebuilds the index from the log (recover.c), as a bad snapshot at
 * open would have cost. The answers given before came from blocks that
 * had passed every check.
 */
#include "snapshot_parts.h"
#include "crc32c.h"
#include "table_check.h"

#include <stdlib.h>

enum { LAZY_ABSENT = 0, LAZY_READ, LAZY_CHECKED };

/* Past this many records of log after the snapshot (a quarter of the
 * table's slots), open loads the whole table and applies them at once. */
#define PENDING_MAX(cap) ((cap) / 4)
FKV_STATIC_ASSERT(FKV_MAX_FILE_SIZE <= (1ull << 32), "a log offset fits a pending record's 32 bits");

static void failed(snapshot_lazy *L, snapshot_reason status)
{
    if (!L->failed)
        L->failed = status;
}

static uint64_t block_of(const fkv_store *s, uint32_t hash)
{
    return fkv_index_home(&s->ix, hash) >> s->snap.lazy->block_bits;
}

static fkv_slot *block_at(fkv_store *s, uint64_t b)
{
    return s->ix.slots + b * s->snap.lazy->block_slots;
}

/* Read block b and compare its CRC: 1 if it is in. */
static int block_read(fkv_store *s, uint64_t b)
{
    snapshot_lazy *L = s->snap.lazy;
    if (L->state[b] != LAZY_ABSENT)
        return 1;
    size_t bytes = (size_t)L->block_slots * sizeof(fkv_slot), got;
    uint8_t *dst = (uint8_t *)block_at(s, b);
    fkv_map_populate(dst, bytes);
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
    snapshot_lazy *L = s->snap.lazy;
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
    snapshot_lazy *L = s->snap.lazy;
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
 * saw) and every record past the snapshot applied: the snapshot's file is
 * let go. */
static void all_in(fkv_store *s)
{
    snapshot_lazy_free(s->snap.lazy);
    s->snap.lazy = NULL;
}

/* The blocks on hash's probe path, from its home slot to the first empty
 * one, read and checked: FKV_OK, FKV_EAGAIN (a block to read with
 * FKV_NO_WAIT), or FKV_ESNAPSHOT when one failed (L->failed says why). */
static int path_checked(fkv_store *s, uint32_t hash, fkv_wait wait)
{
    snapshot_lazy *L = s->snap.lazy;
    if (L->checked == L->nblocks)
        return FKV_OK;
    uint64_t pos = fkv_index_home(&s->ix, hash);
    for (uint64_t k = 0; k <= L->nblocks; k++) {
        uint64_t b = pos >> L->block_bits, last = (b + 1) * L->block_slots;
        if (L->state[b] != LAZY_CHECKED) {
            if (wait == FKV_NO_WAIT)
                return FKV_EAGAIN; /* file reads: not while the caller holds the GIL */
            if (!block_check(s, b))
                return FKV_ESNAPSHOT;
        }
        for (; pos < last; pos++)
            if (s->ix.slots[pos].loc == FKV_LOC_EMPTY)
                return FKV_OK;
        pos = last & (s->ix.cap - 1);
    }
    failed(L, SNAP_BAD_TABLE);
    return FKV_ESNAPSHOT;
}

/* Apply block b's records of the log past the snapshot, in log order, each
 * once the blocks on its probe path are checked. FKV_OK, FKV_ESNAPSHOT when
 * a block failed, or the error of reading a record (then the rest wait). */
static int apply_block(fkv_store *s, uint64_t b)
{
    snapshot_lazy *L = s->snap.lazy;
    while (L->pend_head[b] != SNAPSHOT_NONE) {
        const snapshot_pending *p = &L->pend[L->pend_head[b]];
        log_key k;
        int rc = log_read_key(s->file, s->end, p->off, &k,
                              p->off < L->hinted_end ? LOG_WHOLE_RECORD : LOG_KEY_ONLY);
        /* (once the whole table is in, it may have grown: blocks moved) */
        int moved = s->ix.cap != L->nblocks * L->block_slots;
        if (rc == FKV_ECORRUPT || (rc == FKV_OK && !moved && block_of(s, k.hash) != b)) {
            /* not the record its hints (or the walk) said: trust neither */
            failed(L, SNAP_BAD_HINT);
            return FKV_ESNAPSHOT;
        }
        if (rc == FKV_OK)
            rc = path_checked(s, k.hash, FKV_MAY_WAIT);
        if (rc == FKV_OK)
            rc = store_apply(s, k.rec, &k.h, p->off, k.hash);
        if (rc != FKV_OK)
            return rc;
        L->pend_head[b] = p->next;
        L->pend_left--;
    }
    return FKV_OK;
}

int snapshot_ready_path(fkv_store *s, uint32_t hash, fkv_wait wait)
{
    snapshot_lazy *L = s->snap.lazy;
    if (L->failed)
        return wait == FKV_NO_WAIT ? FKV_EAGAIN : FKV_ESNAPSHOT;
    if (L->checked == L->nblocks) /* only records past the snapshot are left */
        return wait == FKV_NO_WAIT ? FKV_EAGAIN : snapshot_finish(s);
    int rc = path_checked(s, hash, wait);
    uint64_t b = block_of(s, hash);
    if (rc == FKV_OK && L->pend_left > 0 && L->pend_head[b] != SNAPSHOT_NONE) {
        if (wait == FKV_NO_WAIT)
            return FKV_EAGAIN; /* applying reads the log */
        if ((rc = apply_block(s, b)) == FKV_OK)
            rc = path_checked(s, hash, wait); /* the records may have filled empty slots */
    }
    if (rc == FKV_ESNAPSHOT && wait == FKV_NO_WAIT)
        return FKV_EAGAIN;
    if (rc == FKV_OK && L->checked == L->nblocks && L->pend_left == 0)
        all_in(s);
    return rc;
}

int snapshot_finish(fkv_store *s)
{
    snapshot_lazy *L = s->snap.lazy;
    if (!L->failed && L->read == 0) {
        /* Nothing read yet: all in one pass, read ahead by a helper thread,
         * into huge pages where the kernel has them. */
        fkv_map_prefer(s->ix.slots, (size_t)s->ix.cap * sizeof(fkv_slot), FKV_PAGES_HUGE);
        if (snapshot_load_all(L, s->ix.slots, s->ix.cap) == FKV_OK) {
            memset(L->state, LAZY_CHECKED, (size_t)L->nblocks);
            L->read = L->checked = L->nblocks;
        }
    }
    for (uint64_t b = 0; b < L->nblocks && !L->failed; b++)
        block_check(s, b);
    if (L->failed)
        return FKV_ESNAPSHOT;
    /* Every block is in: the records past the snapshot in log order, with
     * the table free to grow (blocks no longer matter). */
    L->keeping = 0;
    int rc = fkv_index_reserve(&s->ix, L->pend_left);
    for (uint64_t b = 0; b < L->nblocks && rc == FKV_OK && L->pend_left > 0; b++)
        rc = apply_block(s, b); /* each block's records in log order */
    if (rc != FKV_OK)
        return rc; /* FKV_ESNAPSHOT, or the rest wait for the next call */
    all_in(s);
    return FKV_OK;
}

/* The list of kept records is sized once for as many as the tail can hold
 * (only the pages written to are paid for), up to this; growing it by
 * doubling, with its copies, made a crashed reopen of a million keys with
 * 10,000 records past the snapshot about 5% slower (C, interleaved). */
#define PENDING_PRESIZE_MAX (1u << 20)

int snapshot_keep_start(snapshot_lazy *L, uint64_t tail, uint64_t cap)
{
    uint64_t most = tail / (FKV_REC_HEADER_SIZE + 1) + 1, bound = PENDING_MAX(cap) + 1;
    if (most > bound)
        most = bound;
    if (most > PENDING_PRESIZE_MAX)
        most = PENDING_PRESIZE_MAX;
    L->pend = (snapshot_pending *)malloc((size_t)most * sizeof *L->pend);
    L->pend_cap = L->pend ? (size_t)most : 0;
    L->pend_head = (uint32_t *)malloc((size_t)L->nblocks * sizeof(uint32_t));
    L->pend_last = (uint32_t *)malloc((size_t)L->nblocks * sizeof(uint32_t));
    if (!L->pend || !L->pend_head || !L->pend_last)
        return FKV_ENOMEM; /* freed with L */
    memset(L->pend_head, 0xff, (size_t)L->nblocks * sizeof(uint32_t));
    L->keeping = 1;
    return FKV_OK;
}

/* The list's next 32 KiB backed by pages in one call, ahead of its
 * writes: a fault for each fresh page cost more (a crashed reopen of a
 * million keys with 10,000 records to keep, C: 16 µs of about 0.5 ms). */
#define PENDING_AHEAD ((32u << 10) / sizeof(snapshot_pending))

static void pend_populate(snapshot_lazy *L)
{
    size_t n = L->pend_cap - L->npend < PENDING_AHEAD ? L->pend_cap - L->npend : PENDING_AHEAD;
    fkv_map_populate(L->pend + L->npend, n * sizeof *L->pend);
    L->pend_ready = L->npend + n;
}

int snapshot_keep_room(const fkv_store *s, uint64_t n)
{
    return s->snap.lazy->npend + n <= PENDING_MAX(s->ix.cap);
}

int snapshot_keeping(const fkv_store *s)
{
    return s->snap.lazy && s->snap.lazy->keeping;
}

int snapshot_keep(fkv_store *s, uint64_t off, uint32_t hash)
{
    snapshot_lazy *L = s->snap.lazy;
    if (L->npend >= PENDING_MAX(s->ix.cap))
        return FKV_EFULL; /* the caller loads the whole table and applies the rest */
    if (L->npend == L->pend_cap) {
        size_t cap = L->pend_cap ? 2 * L->pend_cap : 1024;
        snapshot_pending *p = (snapshot_pending *)realloc(L->pend, cap * sizeof *p);
        if (!p)
            return FKV_ENOMEM;
        L->pend = p;
        L->pend_cap = cap;
    }
    if (FKV_UNLIKELY(L->npend >= L->pend_ready))
        pend_populate(L);
    uint32_t i = (uint32_t)L->npend++, b = (uint32_t)block_of(s, hash);
    L->pend[i].off = (uint32_t)off; /* below FKV_MAX_FILE_SIZE */
    L->pend[i].next = SNAPSHOT_NONE;
    if (L->pend_head[b] == SNAPSHOT_NONE)
        L->pend_head[b] = i;
    else
        L->pend[L->pend_last[b]].next = i;
    L->pend_last[b] = i;
    L->pend_left++;
    return FKV_OK;
}

void snapshot_blocks_loaded(const fkv_store *s, uint64_t *checked, uint64_t *total)
{
    *checked = s->snap.lazy ? s->snap.lazy->checked : 0;
    *total = s->snap.lazy ? s->snap.lazy->nblocks : 0;
}
