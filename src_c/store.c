/* store.c - the store's lifecycle and per-call operations (see store.h). */
#include "store_private.h"

#include <stdlib.h>
#include <time.h>

/* Stack buffer of lookups that need only a record's header and key
 * (create, delete, contains); records this small are checksummed whole. */
#define READ_HINT 512u

/* How a create's deadline argument is meant. */
typedef enum deadline_kind { DEADLINE_TTL_S, DEADLINE_ABS_MS } deadline_kind;

void fkv_progress_read(const fkv_progress *p, uint64_t *done, uint64_t *total)
{
    *total = __atomic_load_n(&p->total, __ATOMIC_RELAXED);
    *done = __atomic_load_n(&p->done, __ATOMIC_RELAXED);
}

static void sleep_ms(uint64_t ms)
{
    struct timespec pause = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
}

/* ---- fork detection and the mutex ---------------------------------------- */

/* Bumped in every forked child, so a store opened before the fork sees a
 * different generation there. Cheaper than getpid() on every call. */
static uint64_t fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void) { fork_generation++; }
static void register_atfork(void) { pthread_atfork(NULL, NULL, on_fork_child); }

static inline int in_forked_child(const fkv_store *s)
{
    return s->fork_gen != __atomic_load_n(&fork_generation, __ATOMIC_RELAXED);
}

int store_enter(fkv_store *s, fkv_wait wait)
{
    if (FKV_UNLIKELY(in_forked_child(s)))
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

/* ---- lookup and count ---------------------------------------------------- */

/* A hash hit counts only when the key read back from disk is the same. */
int store_lookup(fkv_store *s, const char *key, size_t klen, uint32_t hash, uint8_t *buf,
                 size_t buflen, fkv_wait wait, found *f)
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
        int rc = read_record_at(s->file->fd, s->end, off, buf, slot_read_size(slot, buflen), wait,
                                &f->h, &f->got);
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
    }
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
            int rc = read_record_at(s->file->fd, s->end, FKV_LOC_OFFSET(loc), hdr, sizeof hdr,
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

/* ---- open and close ------------------------------------------------------ */

int store_open(const char *path, const fkv_options *opt, open_mode mode,
               fkv_verify_report *rep, fkv_progress *progress, fkv_store **out)
{
    *out = NULL;
    if (opt->max_file_size < FKV_MIN_FILE_SIZE || opt->max_file_size > FKV_MAX_FILE_SIZE)
        return FKV_ECONFIG;
    if (opt->durability != FKV_DURABLE_PROCESS && opt->durability != FKV_DURABLE_FSYNC)
        return FKV_ECONFIG;
    pthread_once(&atfork_once, register_atfork);

    fkv_store *s = (fkv_store *)calloc(1, sizeof *s);
    if (!s)
        return FKV_ENOMEM;
    s->path = strdup(path);
    if (!s->path || pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s->path);
        free(s);
        return FKV_ENOMEM;
    }
    if (commit_init(s) != FKV_OK) {
        pthread_mutex_destroy(&s->mu);
        free(s->path);
        free(s);
        return FKV_ENOMEM;
    }
    s->max_file_size = opt->max_file_size;
    s->durability = opt->durability;
    s->progress = progress;
    s->fork_gen = __atomic_load_n(&fork_generation, __ATOMIC_RELAXED);

    fkv_create_mode create = mode == OPEN_NORMAL ? FKV_OPEN_CREATE : FKV_OPEN_EXISTING;
    int fd = -1;
    int rc = fkv_open_locked(path, create, opt->lock_timeout_ms, &fd);
    if (rc == FKV_OK && !(s->file = fkv_file_wrap(fd))) {
        fkv_close_locked(fd);
        rc = FKV_ENOMEM;
    }
    if (rc == FKV_OK && mode == OPEN_NORMAL) {
        /* We hold the lock, so no compaction is running: a leftover is junk. */
        static const char *const leftovers[] = {COMPACT_SUFFIX, REPAIR_SUFFIX};
        for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++) {
            char *tmp = fkv_path_with_suffix(path, leftovers[i]);
            if (tmp)
                unlink(tmp);
            free(tmp);
        }
    }
    if (rc == FKV_OK)
        rc = scan_load(s, mode, rep);
    if (rc != FKV_OK) {
        if (s->file)
            fkv_file_release(s->file);
        fkv_index_free(&s->ix);
        commit_destroy(s);
        pthread_mutex_destroy(&s->mu);
        free(s->path);
        free(s);
        return rc;
    }
    s->progress = NULL;
    *out = s;
    return FKV_OK;
}

int fkv_open(const char *path, const fkv_options *opt, fkv_store **out)
{
    return store_open(path, opt, OPEN_NORMAL, NULL, NULL, out);
}

int fkv_close(fkv_store *s)
{
    if (in_forked_child(s)) {
        /* Only our copy of the descriptor goes; the parent keeps its lock.
         * No thread of the parent came along, so no read has it pinned. */
        if (s->file) {
            close(s->file->fd);
            free(s->file);
        }
        s->file = NULL;
        s->closed = 1;
        return FKV_OK;
    }
    pthread_mutex_lock(&s->mu);
    if (!s->closed) {
        commit_close(s);
        s->closed = 1;
        fkv_file_release(s->file);
        s->file = NULL;
        fkv_index_free(&s->ix);
    }
    pthread_mutex_unlock(&s->mu);
    return FKV_OK;
}

void fkv_free(fkv_store *s)
{
    if (!s)
        return;
    fkv_close(s);
    if (!in_forked_child(s)) { /* a child's copy of the mutex may be locked */
        commit_destroy(s);
        pthread_mutex_destroy(&s->mu);
    }
    fkv_index_free(&s->ix);
    free(s->path);
    free(s);
}

/* ---- writes -------------------------------------------------------------- */

/* Append one encoded record at the end of the log. On failure the file is
 * cut back, so no partial record is ever visible after a reopen (nothing
 * past s->end was acknowledged: writers are serialized by the mutex). */
static int append(fkv_store *s, const uint8_t *rec, size_t len)
{
    int rc = fkv_write_at(s->file->fd, rec, len, s->end);
    if (rc != FKV_OK) {
        int saved = fkv_last_errno();
        while (ftruncate(s->file->fd, (off_t)s->end) != 0 && errno == EINTR) {
        }
        fkv_set_errno(saved);
        return rc;
    }
    s->end += len;
    s->write_seq++;
    commit_appended(s);
    return FKV_OK;
}

/* The end of every write call: in fsync mode, wait for a flush that covers
 * the record just appended (commit.c). */
static int finish_write(fkv_store *s, int rc)
{
    if (rc == FKV_OK && s->durability == FKV_DURABLE_FSYNC)
        rc = commit_wait_durable(s, s->write_seq);
    store_leave(s);
    return rc;
}

static int create_locked(fkv_store *s, const char *key, size_t klen, const uint8_t *val,
                         size_t vlen, uint64_t when, deadline_kind kind)
{
    uint8_t buf[READ_HINT];
    uint32_t hash = fkv_hash(key, klen);
    /* Grow the index before writing: after the write nothing may fail. */
    int rc = fkv_index_reserve(&s->ix, 1);
    if (rc != FKV_OK)
        return rc;
    uint64_t now = fkv_now_ms();
    uint64_t deadline = kind == DEADLINE_TTL_S && when ? now + when * 1000u : when;
    if (kind == DEADLINE_ABS_MS && deadline) {
        if (deadline <= now)
            return FKV_EEXPIRED;
        if (deadline - now > FKV_TTL_MAX_S * 1000u)
            return FKV_ETTL;
    }
    found f;
    rc = store_lookup(s, key, klen, hash, buf, sizeof buf, FKV_MAY_WAIT, &f);
    if (rc == FKV_OK && !is_expired(&f.h, now))
        return FKV_EEXISTS;
    if (rc != FKV_OK && rc != FKV_ENOTFOUND)
        return rc;
    size_t need = FKV_REC_HEADER_SIZE + klen + vlen;
    if (s->end + need > s->max_file_size) {
        if ((rc = compact_make_room(s, need, now)) != FKV_OK)
            return rc;
        /* Compaction dropped expired records and moved the rest. */
        rc = store_lookup(s, key, klen, hash, buf, sizeof buf, FKV_MAY_WAIT, &f);
        if (rc != FKV_OK && rc != FKV_ENOTFOUND)
            return rc;
    }
    int replacing = rc == FKV_OK;
    size_t n = fkv_record_encode(s->wbuf, FKV_KIND_PUT, key, klen, val, vlen, deadline);
    if ((rc = append(s, s->wbuf, n)) != FKV_OK)
        return rc;
    uint32_t loc = (uint32_t)(s->end - n) | (deadline ? FKV_LOC_TTL : 0);
    uint32_t word = fkv_slot_word(hash, n);
    if (replacing) {
        s->live_bytes -= fkv_record_size(&f.h);
        s->n_ttl -= (s->ix.slots[f.pos].loc & FKV_LOC_TTL) != 0;
        s->ix.slots[f.pos].hash = word;
        s->ix.slots[f.pos].loc = loc;
    } else {
        fkv_index_put(&s->ix, fkv_index_free_slot(&s->ix, hash), word, loc);
    }
    s->live_bytes += n;
    /* An expired entry being replaced was not in the count, so +1 either way. */
    s->live_cache++;
    if (deadline) {
        s->n_ttl++;
        if (deadline < s->cache_until)
            s->cache_until = deadline;
    }
    compact_maybe(s);
    return FKV_OK;
}

static int create_entry(fkv_store *s, const char *key, size_t klen, const uint8_t *val,
                        size_t vlen, uint64_t when, deadline_kind kind)
{
    if (!key_len_ok(klen))
        return FKV_EKEY;
    if (vlen > FKV_VALUE_MAX)
        return FKV_EVALUE;
    if (kind == DEADLINE_TTL_S && when > FKV_TTL_MAX_S)
        return FKV_ETTL;
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    if ((rc = commit_writable(s)) == FKV_OK)
        rc = create_locked(s, key, klen, val, vlen, when, kind);
    return finish_write(s, rc);
}

int fkv_create(fkv_store *s, const char *key, size_t klen, const uint8_t *val, size_t vlen,
               uint64_t ttl_s)
{
    return create_entry(s, key, klen, val, vlen, ttl_s, DEADLINE_TTL_S);
}

int fkv_create_until(fkv_store *s, const char *key, size_t klen, const uint8_t *val,
                     size_t vlen, uint64_t deadline_ms)
{
    return create_entry(s, key, klen, val, vlen, deadline_ms, DEADLINE_ABS_MS);
}

static int delete_locked(fkv_store *s, const char *key, size_t klen)
{
    uint8_t buf[READ_HINT];
    found f;
    int rc = store_lookup(s, key, klen, fkv_hash(key, klen), buf, sizeof buf, FKV_MAY_WAIT, &f);
    if (rc != FKV_OK)
        return rc;
    if (is_expired(&f.h, fkv_now_ms()))
        return FKV_EEXPIRED;
    size_t n = FKV_REC_HEADER_SIZE + klen;
    if (s->end + n > s->max_file_size) {
        /* No room for a tombstone at the cap: rewrite the file without the
         * key instead, which always fits because it only shrinks. */
        return compact_locked(s, f.pos);
    }
    n = fkv_record_encode(s->wbuf, FKV_KIND_DEL, key, klen, NULL, 0, 0);
    if ((rc = append(s, s->wbuf, n)) != FKV_OK)
        return rc;
    s->live_bytes -= fkv_record_size(&f.h);
    s->n_ttl -= (s->ix.slots[f.pos].loc & FKV_LOC_TTL) != 0;
    fkv_index_remove(&s->ix, f.pos);
    s->live_cache--;
    compact_maybe(s);
    return FKV_OK;
}

int fkv_delete(fkv_store *s, const char *key, size_t klen)
{
    if (!key_len_ok(klen))
        return FKV_EKEY;
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    if ((rc = commit_writable(s)) == FKV_OK)
        rc = delete_locked(s, key, klen);
    return finish_write(s, rc);
}

/* ---- reads --------------------------------------------------------------
 *
 * A read holds the mutex only to find its key's slot and pin the file
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
    uint32_t n = __atomic_load_n(&s->cold_skips, __ATOMIC_RELAXED);
    if (FKV_LIKELY(n == 0))
        return 0;
    __atomic_store_n(&s->cold_skips, n - 1, __ATOMIC_RELAXED);
    return 1;
}

static inline void note_miss(fkv_store *s, int rc)
{
    if (rc == FKV_EAGAIN)
        __atomic_store_n(&s->cold_skips, COLD_SKIPS, __ATOMIC_RELAXED);
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
    if (!first_candidate(&s->ix, hash, &slot)) {
        store_leave(s);
        return FKV_ENOTFOUND;
    }
    fkv_file *file = s->file;
    uint64_t end = s->end;
    fkv_file_pin(file);
    store_leave(s);
    if (FKV_UNLIKELY(pause_ms)) {
        __atomic_add_fetch(&s->debug_reads_paused, 1, __ATOMIC_RELAXED);
        sleep_ms(pause_ms);
        __atomic_sub_fetch(&s->debug_reads_paused, 1, __ATOMIC_RELAXED);
    }

    found *f = &r->f;
    f->off = FKV_LOC_OFFSET(slot.loc);
    rc = read_record_at(file->fd, end, f->off, buf, slot_read_size(slot, buflen), wait, &f->h,
                        &f->got);
    if (wait == FKV_NO_WAIT)
        note_miss(s, rc);
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
    size_t total = fkv_record_size(&f->h);
    if (f->got < total) {
        size_t got, rest = total - f->got;
        rc = fkv_read_at(r.file->fd, buf + f->got, rest, f->off + f->got, &got, wait);
        if (wait == FKV_NO_WAIT)
            note_miss(s, rc);
        if (rc == FKV_OK && got < rest)
            rc = fkv_corrupt_at(f->off);
    }
    fkv_file_unpin(r.file);
    if (rc != FKV_OK)
        return rc;
    /* Checksum before the deadline: the deadline is part of what it guards. */
    if (!f->verified && !fkv_record_checksum_ok(buf, &f->h))
        return fkv_corrupt_at(f->off);
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

int fkv_count(fkv_store *s, uint64_t *n)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    rc = store_count_live(s, fkv_now_ms(), n);
    store_leave(s);
    return rc;
}

/* ---- maintenance --------------------------------------------------------- */

int fkv_compact(fkv_store *s, fkv_progress *progress)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    s->progress = progress;
    if ((rc = commit_writable(s)) == FKV_OK)
        rc = compact_locked(s, COMPACT_KEEP_ALL);
    s->progress = NULL;
    store_leave(s);
    return rc;
}

int fkv_get_stats(fkv_store *s, fkv_stats *st)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    rc = store_count_live(s, fkv_now_ms(), &st->live_keys);
    st->held_keys = s->ix.live;
    st->file_bytes = s->end;
    st->live_bytes = s->live_bytes;
    st->dead_bytes = s->end - s->live_bytes;
    st->index_bytes = fkv_index_bytes(&s->ix);
    st->index_slots = s->ix.cap;
    st->max_file_size = s->max_file_size;
    st->torn_bytes_dropped = s->torn_dropped;
    st->compactions = s->compactions;
    st->flushes = s->flushes;
    st->flush_errno = s->flush_errno;
    store_leave(s);
    return rc;
}

int fkv_debug_hold(fkv_store *s, uint64_t ms)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    sleep_ms(ms);
    store_leave(s);
    return FKV_OK;
}

int fkv_debug_reads_paused(fkv_store *s)
{
    return (int)__atomic_load_n(&s->debug_reads_paused, __ATOMIC_RELAXED);
}

int fkv_debug_pause_next_read(fkv_store *s, uint64_t ms)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    s->debug_read_pause_ms = ms;
    store_leave(s);
    return FKV_OK;
}
