/*
 * transaction.c - groups of records that land together, and the writer
 * slot a transaction holds.
 *
 * A group (record.h) is one append: a header naming its members' count,
 * length and checksum, then the members. Recovery takes it whole or not at
 * all (log.c); here it is published to the index under the same hold of
 * the mutex as its append, so a reader sees all of it or none, and in
 * fsync mode one flush covers it (write_finish, shared with other writers
 * through group commit).
 *
 * The writer slot follows lmdb's one-writer rule: a transaction takes it at
 * its begin and lets it go at its end, and meanwhile every write of another
 * thread waits for it (store_writer_turn, one test on the path of a write
 * when no transaction is open). Readers never look at it. The changes of
 * an open transaction are kept by its caller, who can see them; the core
 * sees them only at the commit, as one group.
 */
#include "transaction.h"
#include "write.h"
#include "recover.h"
#include "commit.h"
#include "compact.h"
#include "crc32c.h"

#include <stdlib.h>

/* What a group write needs beyond the stack, kept between calls (under
 * s->mu): a group of a thousand records allocated afresh each time paid
 * for new pages on every call (put_many of 1,000 took 2.9 ms, twice a
 * thousand puts; with the scratch kept, see benchmarks/batches.py). */
typedef struct group_scratch {
    struct staged *st;
    size_t st_cap;
    uint8_t *buf;
    size_t buf_cap;
    size_t *set;
    size_t set_cap;
} group_scratch;

/* Room for n items of size bytes at *p (holding *cap), grown by doubling. */
static int room(void **p, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap)
        return FKV_OK;
    size_t want = *cap ? *cap : 64;
    while (want < n)
        want *= 2;
    void *q = realloc(*p, want * size);
    if (!q)
        return FKV_ENOMEM;
    *p = q;
    *cap = want;
    return FKV_OK;
}

int transaction_init(fkv_store *s)
{
    s->txn_open = 0;
    s->txn_thread = 0;
    s->txn_owner = 0;
    return pthread_cond_init(&s->txn_ended, NULL) == 0 ? FKV_OK : FKV_ENOMEM;
}

void transaction_destroy(fkv_store *s)
{
    group_scratch *g = (group_scratch *)s->group_scratch;
    if (g) {
        free(g->st);
        free(g->buf);
        free(g->set);
        free(g);
        s->group_scratch = NULL;
    }
    pthread_cond_destroy(&s->txn_ended);
}

/* Let the slot go and wake the writers waiting for it. */
static void slot_free(fkv_store *s)
{
    s->txn_open = 0;
    s->txn_thread = 0;
    s->txn_owner = 0;
    pthread_cond_broadcast(&s->txn_ended);
}

void transaction_close(fkv_store *s)
{
    if (s->txn_open)
        slot_free(s); /* its waiters wake to a closed store */
}

/* ---- a group's checks ------------------------------------------------------ */

/* One change as staged: its lookup before anything is written. */
typedef struct staged {
    uint32_t hash;
    int found;      /* the key has an index entry (f) */
    int was_live;   /* ... that had not expired */
    int skip;       /* a delete of a key that is not live: nothing to write */
    found f;
    size_t off, len; /* its record in the group's buffer */
} staged;

static int change_ok(const fkv_change *c)
{
    if (!key_len_ok(c->klen))
        return FKV_EKEY;
    if (c->op == FKV_CHANGE_PUT)
        return c->vlen <= FKV_VALUE_MAX ? FKV_OK : FKV_EVALUE;
    return c->op == FKV_CHANGE_DELETE ? FKV_OK : FKV_EVALUE;
}

/* FKV_EDUPLICATE if two changes name one key: two entries for one key
 * would both claim its slot. An open-addressing set of the hashes, keys
 * compared only where hashes meet. */
static int keys_unique(group_scratch *g, const fkv_change *c, const staged *st, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    if (room((void **)&g->set, &g->set_cap, cap, sizeof *g->set) != FKV_OK)
        return FKV_ENOMEM;
    size_t *set = g->set;
    for (size_t i = 0; i < cap; i++)
        set[i] = SIZE_MAX;
    int rc = FKV_OK;
    for (size_t i = 0; i < n && rc == FKV_OK; i++) {
        size_t at = st[i].hash & (cap - 1);
        for (; set[at] != SIZE_MAX; at = (at + 1) & (cap - 1)) {
            const fkv_change *o = &c[set[at]];
            if (st[set[at]].hash == st[i].hash && o->klen == c[i].klen &&
                memcmp(o->key, c[i].key, c[i].klen) == 0) {
                rc = FKV_EDUPLICATE;
                break;
            }
        }
        set[at] = i;
    }
    return rc;
}

/* Look every key up and size the group: *bytes of records to write (0 when
 * there is nothing: deletes of keys that are not live). */
static int stage(fkv_store *s, const fkv_change *c, staged *st, size_t n, uint64_t now,
                 uint64_t *bytes)
{
    uint8_t buf[READ_HINT];
    uint64_t total = 0;
    for (size_t j = 0; j < n && j < STORE_AHEAD; j++)
        store_prefetch_slot(s, st[j].hash);
    for (size_t i = 0; i < n; i++) {
        if (i + STORE_AHEAD / 2 < n)
            store_prefetch_record(s, st[i + STORE_AHEAD / 2].hash);
        if (i + STORE_AHEAD < n)
            store_prefetch_slot(s, st[i + STORE_AHEAD].hash);
        int rc = store_lookup(s, c[i].key, c[i].klen, st[i].hash, buf, sizeof buf,
                              FKV_MAY_WAIT, &st[i].f);
        if (rc != FKV_OK && rc != FKV_ENOTFOUND)
            return rc;
        st[i].found = rc == FKV_OK;
        st[i].was_live = rc == FKV_OK && !is_expired(&st[i].f.h, now);
        st[i].skip = c[i].op == FKV_CHANGE_DELETE && !st[i].was_live;
        st[i].len = st[i].skip ? 0
                               : FKV_REC_HEADER_SIZE + c[i].klen +
                                     (c[i].op == FKV_CHANGE_PUT ? c[i].vlen : 0);
        total += st[i].len;
    }
    *bytes = total;
    return FKV_OK;
}

/* ---- a group written --------------------------------------------------------- */

/* Encode the staged changes as one group into buf; the offset of its last
 * member in *last. */
static size_t encode_group(uint8_t *buf, const fkv_change *c, staged *st, size_t n, size_t *last)
{
    size_t used = FKV_GROUP_HEADER_SIZE;
    uint32_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (st[i].skip)
            continue;
        int put = c[i].op == FKV_CHANGE_PUT;
        st[i].off = used;
        *last = used;
        used += fkv_record_encode(buf + used, put ? FKV_KIND_PUT : FKV_KIND_DEL, c[i].key,
                                  c[i].klen, put ? c[i].val : NULL, put ? c[i].vlen : 0,
                                  put ? c[i].deadline_ms : 0);
        count++;
    }
    uint32_t crc = fkv_crc32c(0, buf + FKV_GROUP_HEADER_SIZE, used - FKV_GROUP_HEADER_SIZE);
    fkv_group_header_encode(buf, count, (uint32_t)(used - FKV_GROUP_HEADER_SIZE), crc);
    return used;
}

static int group_locked(fkv_store *s, const fkv_change *c, size_t n, size_t *deleted)
{
    group_scratch *g = (group_scratch *)s->group_scratch;
    *deleted = 0;
    if (!g && !(g = (group_scratch *)calloc(1, sizeof *g)))
        return FKV_ENOMEM;
    s->group_scratch = g;
    if (room((void **)&g->st, &g->st_cap, n ? n : 1, sizeof *g->st) != FKV_OK)
        return FKV_ENOMEM;
    staged *st = g->st;
    uint8_t *buf = NULL;
    int rc = FKV_OK;
    for (size_t i = 0; i < n && rc == FKV_OK; i++) {
        rc = change_ok(&c[i]);
        st[i].hash = fkv_hash(c[i].key, c[i].klen);
    }
    if (rc == FKV_OK)
        rc = keys_unique(g, c, st, n);
    /* Grow the index before writing: after the write nothing may fail. */
    if (rc == FKV_OK)
        rc = fkv_index_reserve(&s->ix, n);
    uint64_t now = fkv_now_ms(), bytes = 0;
    if (rc == FKV_OK)
        rc = stage(s, c, st, n, now, &bytes);
    uint64_t need = FKV_GROUP_HEADER_SIZE + bytes;
    if (rc == FKV_OK && bytes > 0 && need > FKV_GROUP_MAX_BYTES)
        rc = FKV_EFULL;
    if (rc == FKV_OK && bytes > 0 && s->end + need > s->max_file_size) {
        /* Compaction drops expired records and moves the rest: stage again. */
        if ((rc = compact_make_room(s, (size_t)need, now)) == FKV_OK)
            rc = stage(s, c, st, n, now, &bytes);
        need = FKV_GROUP_HEADER_SIZE + bytes;
    }
    if (rc == FKV_OK && bytes > 0) {
        if ((rc = room((void **)&g->buf, &g->buf_cap, (size_t)need, 1)) == FKV_OK)
            buf = g->buf;
    }
    size_t last = 0, dels = 0;
    uint64_t base = s->end;
    if (rc == FKV_OK && bytes > 0)
        rc = write_append(s, buf, encode_group(buf, c, st, n, &last), last);
    for (size_t i = 0; rc == FKV_OK && bytes > 0 && i < n; i++) {
        if (st[i].skip)
            continue;
        if (c[i].op == FKV_CHANGE_PUT) {
            store_point(s, st[i].hash, base + st[i].off, st[i].len, c[i].deadline_ms,
                        st[i].found ? &st[i].f : NULL, st[i].was_live);
        } else {
            store_unpoint(s, &st[i].f);
            dels++;
        }
    }
    if (rc == FKV_OK && bytes > 0)
        compact_maybe(s);
    *deleted = dels;
    return rc;
}

int fkv_write_group(fkv_store *s, const fkv_change *c, size_t n, size_t *deleted)
{
    *deleted = 0;
    int rc = store_enter_all(s);
    if (rc != FKV_OK)
        return rc;
    if ((rc = write_ready(s)) == FKV_OK)
        rc = group_locked(s, c, n, deleted);
    return write_finish(s, rc);
}

/* ---- the writer slot ------------------------------------------------------------ */

int fkv_txn_begin(fkv_store *s, uint64_t token)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    if ((rc = store_writer_turn(s)) == FKV_OK) {
        s->txn_open = 1;
        s->txn_thread = token == 0;
        s->txn_owner = token ? token : fkv_thread_self();
    }
    store_leave(s);
    return rc;
}

int fkv_txn_end(fkv_store *s, uint64_t token, int commit, const fkv_change *c, size_t n,
                size_t *deleted)
{
    uint64_t owner = token ? token : fkv_thread_self();
    *deleted = 0;
    int rc = store_enter_all(s);
    if (rc != FKV_OK) {
        /* Closed meanwhile (close let the slot go), or a rebuild failed:
         * the slot must not outlive the call either way. */
        if (rc != FKV_ECLOSED && rc != FKV_EFORKED) {
            pthread_mutex_lock(&s->mu);
            if (s->txn_open && s->txn_owner == owner)
                slot_free(s);
            pthread_mutex_unlock(&s->mu);
        }
        return rc;
    }
    if (!s->txn_open || s->txn_owner != owner) {
        store_leave(s);
        return FKV_ETXN;
    }
    if (commit && n > 0 && (rc = commit_writable(s)) == FKV_OK)
        rc = group_locked(s, c, n, deleted);
    slot_free(s); /* before the flush: the next writer appends meanwhile */
    return write_finish(s, rc);
}
