/*
 * read.c - the calls that only read: read, contains (and their no-wait
 * variants for a caller holding Python's GIL).
 */
#include "recover.h"

/* A read holds the mutex only to find its key's slot and pin the file
 * (fkv_file), then reads the record with the mutex let go: a read that waits
 * for the disk holds up no other read and no writer. What it reads is what
 * the slot pointed to when the mutex was held, in the file of that moment;
 * those bytes never change, so the read is as if done at that instant.
 * The key read back must be the caller's: if another key shares the 27-bit
 * hash (a few in a billion lookups), the lookup is done again under the
 * mutex, candidate by candidate.
 */

/* is_expired at the current time; reads the clock only for deadlines. */
static inline int expired_now(const fkv_rec_header *h)
{
    return h->deadline_ms != 0 && h->deadline_ms <= fkv_now_ms();
}

/* A key's record, found for a read: f->got bytes of it are in the buffer,
 * the rest is to be read from file (pinned: the caller unpins it). */
typedef struct read_hit {
    found f;
    fkv_file *file;
} read_hit;

/* First entry slot on hash's probe path whose stored hash matches. */
static int first_candidate(const fkv_index *ix, uint32_t hash, fkv_slot *out)
{
    for (uint64_t pos = fkv_index_home(ix, hash);; pos = fkv_index_next(ix, pos)) {
        fkv_slot slot = ix->slots[pos];
        if (slot.loc == FKV_LOC_EMPTY)
            return 0;
        if (FKV_SLOT_HASH(slot.hash) == hash && FKV_LOC_IS_ENTRY(slot.loc)) {
            *out = slot;
            return 1;
        }
    }
}

/* Under the mutex, the whole probe path: for keys that share a hash. */
static int find_locked(fkv_store *s, const char *key, size_t klen, uint32_t hash, uint8_t *buf,
                       size_t buflen, fkv_wait wait, read_hit *r)
{
    int rc = store_enter(s, wait);
    if (rc != FKV_OK)
        return rc;
    if ((rc = store_ready(s, hash, wait)) == FKV_OK)
        rc = store_lookup(s, key, klen, hash, buf, buflen, wait, &r->f);
    if (rc == FKV_OK) {
        r->file = s->file;
        fkv_file_pin(r->file);
    }
    store_leave(s);
    return rc;
}

/* A read that may not wait first asks the page cache with preadv2(RWF_NOWAIT),
 * which on a miss still starts the disk read (readahead) before it answers
 * EAGAIN: the caller, holding Python's GIL, would submit I/O for every
 * thread in turn. So after a miss the next COLD_SKIPS such reads answer
 * EAGAIN at once, and the caller reads without the GIL; then one asks the
 * page cache again. Shared by all threads; races only blur the count. */
#define COLD_SKIPS 15u

static inline int cold_skip(fkv_store *s)
{
    uint32_t n = fkv_atomic_load(&s->cold_skips, FKV_RELAXED);
    if (FKV_LIKELY(n == 0))
        return 0;
    fkv_atomic_store(&s->cold_skips, n - 1, FKV_RELAXED);
    return 1;
}

static inline void note_miss(fkv_store *s, int rc)
{
    if (rc == FKV_EAGAIN)
        fkv_atomic_store(&s->cold_skips, COLD_SKIPS, FKV_RELAXED);
}

static int find_for_read(fkv_store *s, const char *key, size_t klen, uint8_t *buf,
                         size_t buflen, fkv_wait wait, read_hit *r)
{
    if (wait == FKV_NO_WAIT && cold_skip(s))
        return FKV_EAGAIN;
    uint32_t hash = fkv_hash(key, klen);
    int rc = store_enter(s, wait);
    if (rc != FKV_OK)
        return rc;
    uint64_t pause_ms = 0;
    if (FKV_UNLIKELY(s->debug_read_pause_ms)) { /* a test's stand-in for a slow disk */
        if (wait == FKV_NO_WAIT) {
            store_leave(s);
            return FKV_EAGAIN;
        }
        pause_ms = s->debug_read_pause_ms;
        s->debug_read_pause_ms = 0;
    }
    fkv_slot slot;
    if ((rc = store_ready(s, hash, wait)) != FKV_OK) {
        store_leave(s);
        return rc;
    }
    if (!first_candidate(&s->ix, hash, &slot)) {
        store_leave(s);
        return FKV_ENOTFOUND;
    }
    fkv_file *file = s->file;
    uint64_t end = s->end;
    fkv_file_pin(file);
    store_leave(s);
    if (FKV_UNLIKELY(pause_ms)) {
        fkv_atomic_add(&s->debug_reads_paused, 1, FKV_RELAXED);
        fkv_sleep_ms(pause_ms);
        fkv_atomic_sub(&s->debug_reads_paused, 1, FKV_RELAXED);
    }

    found *f = &r->f;
    f->off = FKV_LOC_OFFSET(slot.loc);
    size_t want = slot_read_size(slot, buflen);
    if (fkv_warm_all(file->warm, f->off, want)) {
        /* In memory a moment ago: copied from the mapping, no system call
         * (warm_pages.h), and no wait even when the GIL is held. */
        rc = read_record_at(file->fd, file->map, end, f->off, buf, want, FKV_MAY_WAIT, &f->h,
                            &f->got);
    } else {
        rc = read_record_at(file->fd, NULL, end, f->off, buf, want, wait, &f->h, &f->got);
        if (wait == FKV_NO_WAIT)
            note_miss(s, rc);
        if (rc == FKV_OK)
            fkv_warm_note(file->warm, f->off, f->got);
    }
    if (rc == FKV_OK && f->h.klen == klen && memcmp(buf + FKV_REC_HEADER_SIZE, key, klen) == 0) {
        /* Small records are whole in buf: check them here, so no caller
         * acts on a damaged deadline. read() checks larger ones. */
        f->verified = f->got >= fkv_record_size(&f->h);
        if (f->verified && !fkv_record_checksum_ok(buf, &f->h))
            rc = fkv_corrupt_at(f->off);
        if (rc == FKV_OK) {
            r->file = file;
            return FKV_OK;
        }
    }
    fkv_file_unpin(file);
    if (rc != FKV_OK)
        return rc;
    return find_locked(s, key, klen, hash, buf, buflen, wait, r);
}

static int read_entry(fkv_store *s, const char *key, size_t klen, uint8_t *buf, size_t *voff,
                      size_t *vlen, fkv_wait wait)
{
    if (!key_len_ok(klen))
        return FKV_EKEY;
    read_hit r;
    int rc = find_for_read(s, key, klen, buf, FKV_REC_MAX, wait, &r);
    if (rc != FKV_OK)
        return rc;
    const found *f = &r.f;
    rc = store_finish_record(r.file->fd, buf, &r.f, wait);
    if (wait == FKV_NO_WAIT)
        note_miss(s, rc);
    fkv_file_unpin(r.file);
    if (rc != FKV_OK)
        return rc;
    if (expired_now(&f->h))
        return FKV_EEXPIRED;
    *voff = FKV_REC_HEADER_SIZE + klen;
    *vlen = f->h.vlen;
    return FKV_OK;
}

int fkv_read(fkv_store *s, const char *key, size_t klen, uint8_t *buf, size_t *voff,
             size_t *vlen)
{
    return read_entry(s, key, klen, buf, voff, vlen, FKV_MAY_WAIT);
}

int fkv_try_read(fkv_store *s, const char *key, size_t klen, uint8_t *buf, size_t *voff,
                 size_t *vlen)
{
    return read_entry(s, key, klen, buf, voff, vlen, FKV_NO_WAIT);
}

static int contains_entry(fkv_store *s, const char *key, size_t klen, int *found_out,
                          fkv_wait wait)
{
    *found_out = 0;
    if (!key_len_ok(klen))
        return FKV_OK;
    uint8_t buf[READ_HINT];
    read_hit r;
    int rc = find_for_read(s, key, klen, buf, sizeof buf, wait, &r);
    if (rc == FKV_OK) {
        fkv_file_unpin(r.file);
        *found_out = !expired_now(&r.f.h);
    } else if (rc == FKV_ENOTFOUND) {
        rc = FKV_OK;
    }
    return rc;
}

int fkv_contains(fkv_store *s, const char *key, size_t klen, int *found_out)
{
    return contains_entry(s, key, klen, found_out, FKV_MAY_WAIT);
}

int fkv_try_contains(fkv_store *s, const char *key, size_t klen, int *found_out)
{
    return contains_entry(s, key, klen, found_out, FKV_NO_WAIT);
}

/* ---- several keys as of one moment --------------------------------------- */

/* One key of find_many: its status, and where its live record lies. A
 * small record the lookup read whole and checked goes to buf (cap bytes)
 * at once: read_many need not read it again. */
static int find_one(fkv_store *s, fkv_many *e, uint32_t hash, fkv_wait wait, uint64_t now,
                    uint64_t *used, uint8_t *buf, size_t cap)
{
    uint8_t hint[READ_HINT];
    found f;
    e->status = FKV_ENOTFOUND;
    e->copied = 0;
    if (!key_len_ok(e->klen))
        return FKV_OK;
    int rc = store_ready(s, hash, wait);
    if (rc != FKV_OK)
        return rc;
    rc = store_lookup(s, e->key, e->klen, hash, hint, sizeof hint, wait, &f);
    if (rc == FKV_ENOTFOUND)
        return FKV_OK;
    if (rc != FKV_OK)
        return rc;
    if (is_expired(&f.h, now)) {
        e->status = FKV_EEXPIRED;
        return FKV_OK;
    }
    uint64_t size = fkv_record_size(&f.h);
    e->status = FKV_OK;
    e->at = f.off;
    e->voff = (size_t)*used + FKV_REC_HEADER_SIZE + e->klen;
    e->vlen = f.h.vlen;
    if (f.verified && f.got >= size && buf != NULL && *used + size <= cap) {
        memcpy(buf + *used, hint, (size_t)size);
        e->copied = 1;
    }
    *used += size;
    return FKV_OK;
}

/* Under one hold of the mutex: each key's status, and where its record
 * lies in the file; the file pinned. *total: bytes of the live records. */
static int find_many(fkv_store *s, fkv_many *k, size_t n, fkv_wait wait, uint8_t *buf,
                     size_t cap, uint64_t *total, fkv_file **file, uint64_t *end,
                     uint64_t *epoch)
{
    int rc = store_enter(s, wait);
    if (rc != FKV_OK)
        return rc;
    uint64_t now = fkv_now_ms(), used = 0;
    uint32_t ahead[STORE_AHEAD]; /* the hashes of keys i .. i + STORE_AHEAD - 1 */
    for (size_t j = 0; j < n && j < STORE_AHEAD; j++) {
        ahead[j] = fkv_hash(k[j].key, k[j].klen);
        store_prefetch_slot(s, ahead[j]);
    }
    for (size_t i = 0; i < n && rc == FKV_OK; i++) {
        uint32_t hash = ahead[i % STORE_AHEAD];
        if (i + STORE_AHEAD / 2 < n)
            store_prefetch_record(s, ahead[(i + STORE_AHEAD / 2) % STORE_AHEAD]);
        rc = find_one(s, &k[i], hash, wait, now, &used, buf, cap);
        if (i + STORE_AHEAD < n) {
            ahead[i % STORE_AHEAD] = fkv_hash(k[i + STORE_AHEAD].key, k[i + STORE_AHEAD].klen);
            store_prefetch_slot(s, ahead[i % STORE_AHEAD]);
        }
    }
    if (rc == FKV_OK) {
        *file = s->file;
        *end = s->end;
        *epoch = s->compactions;
        fkv_file_pin(*file);
        *total = used;
    }
    store_leave(s);
    return rc;
}

static int read_many(fkv_store *s, fkv_many *k, size_t n, uint8_t *buf, size_t cap, size_t *need,
                     fkv_wait wait)
{
    fkv_file *file = NULL;
    uint64_t total = 0, end = 0, epoch = 0;
    int rc = find_many(s, k, n, wait, buf, cap, &total, &file, &end, &epoch);
    if (rc != FKV_OK)
        return rc;
    *need = (size_t)total;
    if (total > cap) {
        fkv_file_unpin(file);
        return FKV_ENOMEM; /* the caller grows buf to *need and asks again */
    }
    /* The records are read with the mutex let go: they never change, and
     * the pinned file outlives a compaction that replaces it. */
    for (size_t i = 0; i < n && rc == FKV_OK; i++) {
        if (k[i].status != FKV_OK || k[i].copied)
            continue;
        uint8_t *rec = buf + k[i].voff - FKV_REC_HEADER_SIZE - k[i].klen;
        size_t size = FKV_REC_HEADER_SIZE + k[i].klen + k[i].vlen, got = 0;
        fkv_rec_header h;
        rc = read_record_at(file->fd, file->map, end, k[i].at, rec, size, wait, &h, &got);
        if (rc == FKV_OK && (got != size || fkv_record_size(&h) != size ||
                             !fkv_record_checksum_ok(rec, &h)))
            rc = fkv_corrupt_at(k[i].at);
    }
    fkv_file_unpin(file);
    return rc;
}

int fkv_read_many(fkv_store *s, fkv_many *k, size_t n, uint8_t *buf, size_t cap, size_t *need)
{
    return read_many(s, k, n, buf, cap, need, FKV_MAY_WAIT);
}

int fkv_try_read_many(fkv_store *s, fkv_many *k, size_t n, uint8_t *buf, size_t cap,
                      size_t *need)
{
    int rc = read_many(s, k, n, buf, cap, need, FKV_NO_WAIT);
    note_miss(s, rc);
    return rc;
}

int fkv_versions(fkv_store *s, fkv_many *k, size_t n, uint64_t *epoch)
{
    fkv_file *file = NULL;
    uint64_t total = 0, end = 0;
    int rc = find_many(s, k, n, FKV_MAY_WAIT, NULL, 0, &total, &file, &end, epoch);
    if (rc == FKV_OK)
        fkv_file_unpin(file);
    return rc;
}
