/*
 * store_core.c - the store's core, which every call stands on: the mutex
 * and fork detection (enter/leave), finding a key's entry, counting live
 * keys, and pointing the index at a record, the one way an entry is
 * written (by writes and by recovery alike). Knows nothing of snapshots,
 * opening or closing.
 */
#include "store_core.h"

/* ---- fork detection and the mutex ---------------------------------------- */

/* Bumped in every forked child, so a store opened before the fork sees a
 * different generation there. Cheaper than getpid() on every call. */
static uint64_t fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void) { fork_generation++; }
static void register_atfork(void) { pthread_atfork(NULL, NULL, on_fork_child); }

void store_fork_mark(fkv_store *s)
{
    pthread_once(&atfork_once, register_atfork);
    s->fork_gen = fkv_atomic_load(&fork_generation, FKV_RELAXED);
}

int store_in_forked_child(const fkv_store *s)
{
    return s->fork_gen != fkv_atomic_load(&fork_generation, FKV_RELAXED);
}

int store_enter(fkv_store *s, fkv_wait wait)
{
    if (FKV_UNLIKELY(store_in_forked_child(s)))
        return FKV_EFORKED;
    if (wait == FKV_NO_WAIT) {
        if (pthread_mutex_trylock(&s->mu) != 0)
            return FKV_EAGAIN;
    } else {
        pthread_mutex_lock(&s->mu);
    }
    if (FKV_UNLIKELY(s->closed)) {
        pthread_mutex_unlock(&s->mu);
        return FKV_ECLOSED;
    }
    return FKV_OK;
}

int store_writer_wait(fkv_store *s)
{
    uint64_t me = fkv_thread_self();
    while (s->txn_open) {
        if (s->txn_thread && s->txn_owner == me)
            return FKV_ETXN;
        pthread_cond_wait(&s->txn_ended, &s->mu);
        if (s->closed)
            return FKV_ECLOSED;
    }
    return FKV_OK;
}

/* ---- lookup and count ---------------------------------------------------- */

FKV_STATIC_ASSERT(FKV_MAX_FILE_SIZE <= FKV_MAP_BYTES, "a whole data file fits its mapping");

/* A hash hit counts only when the key read back from disk is the same. */
static int lookup(fkv_store *s, const char *key, size_t klen, uint32_t hash, uint8_t *buf,
                  size_t buflen, fkv_wait wait, const uint8_t *map, found *f)
{
    const fkv_index *ix = &s->ix;
    for (uint64_t pos = fkv_index_home(ix, hash);; pos = fkv_index_next(ix, pos)) {
        fkv_slot slot = ix->slots[pos];
        if (slot.loc == FKV_LOC_EMPTY)
            return FKV_ENOTFOUND;
        if (FKV_SLOT_HASH(slot.hash) != hash || !FKV_LOC_IS_ENTRY(slot.loc))
            continue;
        uint64_t off = FKV_LOC_OFFSET(slot.loc);
        /* The size class covers the whole record: one pread fetches it. */
        int rc = read_record_at(s->file->fd, map, s->end, off, buf, slot_read_size(slot, buflen),
                                wait, &f->h, &f->got);
        if (rc != FKV_OK)
            return rc;
        if (f->h.klen == klen && memcmp(buf + FKV_REC_HEADER_SIZE, key, klen) == 0) {
            /* Small records are whole in buf: check them here, so no caller
             * acts on a damaged deadline. read() checks larger ones. */
            f->verified = f->got >= fkv_record_size(&f->h);
            if (f->verified && !fkv_record_checksum_ok(buf, &f->h))
                return fkv_corrupt_at(off);
            f->pos = pos;
            f->off = off;
            return FKV_OK;
        }
        /* Another key with the same hash (a few in a billion lookups), or
         * this key with damaged bytes: a record that fails its checksum is
         * damage, never "not found". */
        if (f->got >= fkv_record_size(&f->h) && !fkv_record_checksum_ok(buf, &f->h))
            return fkv_corrupt_at(off);
    }
}

int store_lookup(fkv_store *s, const char *key, size_t klen, uint32_t hash, uint8_t *buf,
                 size_t buflen, fkv_wait wait, found *f)
{
    return lookup(s, key, klen, hash, buf, buflen, wait, s->file->map, f);
}

int store_lookup_absent(fkv_store *s, const char *key, size_t klen, uint32_t hash, uint8_t *buf,
                        size_t buflen, found *f)
{
    return lookup(s, key, klen, hash, buf, buflen, FKV_MAY_WAIT, NULL, f);
}

/* Checks as store_core.h says; reads the rest with the wait given. */
int store_finish_record(int fd, uint8_t *buf, found *f, fkv_wait wait)
{
    size_t total = fkv_record_size(&f->h);
    if (f->got < total) {
        size_t got, rest = total - f->got;
        int rc = fkv_read_at(fd, buf + f->got, rest, f->off + f->got, &got, wait);
        if (rc != FKV_OK)
            return rc;
        if (got < rest)
            return fkv_corrupt_at(f->off);
        f->got = total;
    }
    /* Checksum before the deadline: the deadline is part of what it guards. */
    if (!f->verified && !fkv_record_checksum_ok(buf, &f->h))
        return fkv_corrupt_at(f->off);
    f->verified = 1;
    return FKV_OK;
}

/* Exact and free while no deadline has passed since the last count;
 * otherwise reads the header of each entry that has a deadline. */
int store_count_live(fkv_store *s, uint64_t now, uint64_t *out)
{
    if (s->n_ttl == 0) {
        s->live_cache = s->ix.live;
        s->cache_until = UINT64_MAX;
    } else if (now >= s->cache_until) {
        uint64_t live = 0, next = UINT64_MAX;
        uint8_t hdr[FKV_REC_HEADER_SIZE + FKV_KEY_MAX_BYTES];
        for (uint64_t pos = 0; pos < s->ix.cap; pos++) {
            uint32_t loc = s->ix.slots[pos].loc;
            if (!FKV_LOC_IS_ENTRY(loc))
                continue;
            if (!(loc & FKV_LOC_TTL)) {
                live++;
                continue;
            }
            size_t got;
            fkv_rec_header h;
            int rc = read_record_at(s->file->fd, NULL, s->end, FKV_LOC_OFFSET(loc), hdr, sizeof hdr,
                                    FKV_MAY_WAIT, &h, &got);
            if (rc != FKV_OK)
                return rc;
            if (!is_expired(&h, now)) {
                live++;
                if (h.deadline_ms && h.deadline_ms < next)
                    next = h.deadline_ms;
            }
        }
        s->live_cache = live;
        s->cache_until = next;
    }
    *out = s->live_cache;
    return FKV_OK;
}

/* ---- pointing the index at records ---------------------------------------- */

int store_apply(fkv_store *s, const uint8_t *rec, const fkv_rec_header *h, uint64_t off,
                uint32_t hash)
{
    if (h->kind == FKV_KIND_GROUP)
        return FKV_OK; /* a group's header (named by hints): its members follow */
    const char *key = (const char *)rec + FKV_REC_HEADER_SIZE;
    uint8_t buf[FKV_REC_HEADER_SIZE + FKV_KEY_MAX_BYTES];
    found f;
    int rc = store_lookup(s, key, h->klen, hash, buf, sizeof buf, FKV_MAY_WAIT, &f);
    if (rc != FKV_OK && rc != FKV_ENOTFOUND)
        return rc;
    if (h->kind == FKV_KIND_PUT)
        store_point(s, hash, off, fkv_record_size(h), h->deadline_ms, rc == FKV_OK ? &f : NULL,
                    rc == FKV_OK);
    else if (rc == FKV_OK)
        store_unpoint(s, &f);
    return FKV_OK;
}
