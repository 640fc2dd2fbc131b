/* store.c - open, lock, scan, and the operations on one data file (see store.h). */
#include "platform.h" /* first: sets the feature macros */
#include "store.h"
#include "clock.h"
#include "hash_index.h"
#include "record.h"
#include "status.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

/* Stack buffer of lookups that need only a record's header and key
 * (create, delete, contains); records this small are checksummed whole. */
#define READ_HINT 512u
/* Opening and compaction read the log in chunks this large. */
#define SCAN_CHUNK (1u << 20)
#define SCAN_BUF (SCAN_CHUNK + FKV_REC_MAX)
#define COMPACT_SUFFIX ".compact"
#define REPAIR_SUFFIX ".repair"
#define AUTO_COMPACT_MIN (4u << 20)

struct fkv_store {
    pthread_mutex_t mu;
    int fd;
    int closed;
    uint64_t fork_gen;      /* fork generation at open: differs in a child */
    char *path;
    fkv_index ix;
    uint64_t end;           /* append offset: bytes of valid log */
    uint64_t live_bytes;    /* header + records the index points to */
    uint64_t n_ttl;         /* index entries whose record has a deadline */
    uint64_t live_cache;    /* live keys, exact while now < cache_until */
    uint64_t cache_until;
    uint64_t max_file_size;
    int durability;
    uint64_t torn_dropped;
    uint64_t compactions;
    uint64_t auto_retry_at;  /* after a failed automatic compaction: file size to retry at */
    fkv_progress *progress;  /* set for the length of a compact/verify/repair call */
    uint8_t wbuf[FKV_REC_MAX]; /* record being encoded; guarded by mu */
};

/* Polled by another thread without a lock: relaxed atomics, no tearing. */
static inline void progress_total(fkv_store *s, uint64_t total)
{
    if (s->progress) {
        __atomic_store_n(&s->progress->total, total, __ATOMIC_RELAXED);
        __atomic_store_n(&s->progress->done, 0, __ATOMIC_RELAXED);
    }
}

static inline void progress_done(fkv_store *s, uint64_t done)
{
    if (s->progress)
        __atomic_store_n(&s->progress->done, done, __ATOMIC_RELAXED);
}

void fkv_progress_read(const fkv_progress *p, uint64_t *done, uint64_t *total)
{
    *total = __atomic_load_n(&p->total, __ATOMIC_RELAXED);
    *done = __atomic_load_n(&p->done, __ATOMIC_RELAXED);
}

/* ---- fork detection ------------------------------------------------------ */

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

/* Take the mutex for a call; checks fork first (a fork may copy it locked). */
static inline int enter(fkv_store *s)
{
    if (FKV_UNLIKELY(in_forked_child(s)))
        return FKV_EFORKED;
    pthread_mutex_lock(&s->mu);
    if (FKV_UNLIKELY(s->closed)) {
        pthread_mutex_unlock(&s->mu);
        return FKV_ECLOSED;
    }
    return FKV_OK;
}

static inline void leave(fkv_store *s) { pthread_mutex_unlock(&s->mu); }

/* ---- small I/O helpers --------------------------------------------------- */

static int io_error(void)
{
    fkv_set_errno(errno);
    return FKV_EIO;
}

static int corrupt_at(uint64_t off)
{
    fkv_set_offset(off);
    return FKV_ECORRUPT;
}

/* Read up to len bytes at off; *got < len only at end of file. */
static int read_at(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return io_error();
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return FKV_OK;
}

/* read_at that never waits for the disk: FKV_EAGAIN unless all len bytes
 * are in the page cache. */
static int read_at_nowait(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    ssize_t r = fkv_pread_nowait(fd, buf, len, (off_t)off);
    if (r < 0 || (size_t)r < len)
        return FKV_EAGAIN; /* not cached, or a kernel that cannot tell */
    *got = (size_t)r;
    return FKV_OK;
}

static int write_at(int fd, const void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return io_error();
        }
        done += (size_t)w;
    }
    return FKV_OK;
}

static int sync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n == 0) {
        dir[0] = slash ? '/' : '.';
        n = 1;
    } else if (n >= sizeof dir) {
        return FKV_OK; /* cannot name it; the rename itself already happened */
    } else {
        memcpy(dir, path, n);
    }
    dir[n] = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return io_error();
    int rc = fsync(dfd) == 0 ? FKV_OK : io_error();
    close(dfd);
    return rc;
}

/* path + suffix in fresh memory, or NULL. */
static char *path_with_suffix(const char *path, const char *suffix)
{
    size_t plen = strlen(path), slen = strlen(suffix);
    char *p = (char *)malloc(plen + slen + 1);
    if (p) {
        memcpy(p, path, plen);
        memcpy(p + plen, suffix, slen + 1);
    }
    return p;
}

/* Append one encoded record at the end of the log. On failure the file is
 * cut back, so no partial record is ever visible after a reopen. */
static int append(fkv_store *s, const uint8_t *rec, size_t len)
{
    int rc = write_at(s->fd, rec, len, s->end);
    if (rc == FKV_OK && s->durability == FKV_DURABLE_FSYNC && fkv_fdatasync(s->fd) != 0)
        rc = io_error();
    if (rc != FKV_OK) {
        int saved = fkv_last_errno();
        while (ftruncate(s->fd, (off_t)s->end) != 0 && errno == EINTR) {
        }
        fkv_set_errno(saved);
        return rc;
    }
    s->end += len;
    return FKV_OK;
}

static inline int is_expired(const fkv_rec_header *h, uint64_t now)
{
    return h->deadline_ms != 0 && h->deadline_ms <= now;
}

/* is_expired at the current time; reads the clock only for deadlines. */
static inline int expired_now(const fkv_rec_header *h)
{
    return h->deadline_ms != 0 && h->deadline_ms <= fkv_now_ms();
}

/* ---- lookup -------------------------------------------------------------- */

typedef struct found {
    uint64_t pos;  /* slot */
    uint64_t off;  /* record offset */
    size_t got;    /* bytes of the record now in the buffer */
    int verified;  /* checksum already checked */
    fkv_rec_header h;
} found;

/* Find key's entry. buf (buflen >= 16 + FKV_KEY_MAX_BYTES) receives the first
 * bytes of its record. A hash hit counts only when the key read back from
 * disk is the same. FKV_OK, FKV_ENOTFOUND, FKV_ECORRUPT or FKV_EIO. */
static int lookup_ex(fkv_store *s, const char *key, size_t klen, uint32_t hash, uint8_t *buf,
                     size_t buflen, int nowait, found *f)
{
    const fkv_index *ix = &s->ix;
    for (uint64_t pos = fkv_index_home(ix, hash);; pos = fkv_index_next(ix, pos)) {
        fkv_slot slot = ix->slots[pos];
        if (slot.loc == FKV_LOC_EMPTY)
            return FKV_ENOTFOUND;
        if (FKV_SLOT_HASH(slot.hash) != hash || !FKV_LOC_IS_ENTRY(slot.loc))
            continue;
        uint64_t off = FKV_LOC_OFFSET(slot.loc);
        if (off >= s->end)
            return corrupt_at(off);
        /* The size class covers the whole record: one pread fetches it. */
        size_t want = fkv_class_bytes(FKV_SLOT_CLASS(slot.hash));
        if (want > buflen)
            want = buflen;
        if (off + want > s->end)
            want = (size_t)(s->end - off);
        size_t got;
        int rc = nowait ? read_at_nowait(s->fd, buf, want, off, &got)
                        : read_at(s->fd, buf, want, off, &got);
        if (rc != FKV_OK)
            return rc;
        if (got < FKV_REC_HEADER_SIZE || fkv_record_header_decode(buf, &f->h) != FKV_OK ||
            f->h.kind != FKV_KIND_PUT || got < FKV_REC_HEADER_SIZE + f->h.klen ||
            off + fkv_record_size(&f->h) > s->end)
            return corrupt_at(off);
        if (f->h.klen == klen && memcmp(buf + FKV_REC_HEADER_SIZE, key, klen) == 0) {
            /* Small records are whole in buf: check them here, so no caller
             * acts on a damaged deadline. read() checks larger ones. */
            f->verified = got >= fkv_record_size(&f->h);
            if (f->verified && !fkv_record_checksum_ok(buf, &f->h))
                return corrupt_at(off);
            f->pos = pos;
            f->off = off;
            f->got = got;
            return FKV_OK;
        }
    }
}

static inline int lookup(fkv_store *s, const char *key, size_t klen, uint32_t hash,
                         uint8_t *buf, size_t buflen, found *f)
{
    return lookup_ex(s, key, klen, hash, buf, buflen, 0, f);
}

/* ---- live-key count ------------------------------------------------------ */

/* Live keys at `now`. Exact and free while no deadline has passed since the
 * last count; otherwise reads the header of each entry that has a deadline. */
static int count_live(fkv_store *s, uint64_t now, uint64_t *out)
{
    if (s->n_ttl == 0) {
        s->live_cache = s->ix.live;
        s->cache_until = UINT64_MAX;
    } else if (now >= s->cache_until) {
        uint64_t live = 0, next = UINT64_MAX;
        uint8_t hdr[FKV_REC_HEADER_SIZE];
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
            int rc = read_at(s->fd, hdr, sizeof hdr, FKV_LOC_OFFSET(loc), &got);
            if (rc != FKV_OK)
                return rc;
            if (got < sizeof hdr || fkv_record_header_decode(hdr, &h) != FKV_OK)
                return corrupt_at(FKV_LOC_OFFSET(loc));
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

/* ---- compaction ---------------------------------------------------------- */

/* Make sure the window [*wstart, *wstart + *wlen) of the file covers
 * [off, off + n); reads a fresh window starting at off if not. */
static int window_cover(int fd, uint8_t *win, uint64_t limit, uint64_t off, size_t n,
                        uint64_t *wstart, size_t *wlen)
{
    if (off >= *wstart && off + n <= *wstart + *wlen)
        return FKV_OK;
    size_t want = SCAN_BUF;
    if (off + want > limit)
        want = (size_t)(limit - off);
    int rc = read_at(fd, win, want, off, wlen);
    *wstart = off;
    if (rc != FKV_OK)
        return rc;
    return *wlen >= n ? FKV_OK : FKV_ENOTFOUND; /* ENOTFOUND: file ends first */
}

/* Slot of the entry pointing at the record at off, or UINT64_MAX. */
static uint64_t slot_of_offset(const fkv_index *ix, uint32_t hash, uint64_t off)
{
    for (uint64_t pos = fkv_index_home(ix, hash);; pos = fkv_index_next(ix, pos)) {
        fkv_slot slot = ix->slots[pos];
        if (slot.loc == FKV_LOC_EMPTY)
            return UINT64_MAX;
        if (FKV_LOC_IS_ENTRY(slot.loc) && FKV_SLOT_HASH(slot.hash) == hash &&
            FKV_LOC_OFFSET(slot.loc) == off)
            return pos;
    }
}

/* Copy the live records into a new file, then rename it over the data file.
 * The entry in slot skip_pos (or none: UINT64_MAX) is left out, which is how
 * a delete at the size cap needs no tombstone. Expired records are dropped.
 * The new file is locked before the rename, so no other opener gets in; a
 * crash leaves either the old file or the new one whole. */
static int compact_locked(fkv_store *s, uint64_t skip_pos)
{
    int rc = FKV_OK, tfd = -1;
    char *tmp = path_with_suffix(s->path, COMPACT_SUFFIX);
    uint32_t *newloc = (uint32_t *)calloc(s->ix.cap, sizeof(uint32_t));
    uint8_t *win = (uint8_t *)malloc(SCAN_BUF);
    uint8_t *out = (uint8_t *)malloc(SCAN_BUF);
    if (!tmp || !newloc || !win || !out) {
        rc = FKV_ENOMEM;
        goto done;
    }

    struct stat st;
    if (fstat(s->fd, &st) != 0) {
        rc = io_error();
        goto done;
    }
    tfd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
    if (tfd < 0) {
        rc = io_error();
        goto done;
    }
    if (flock(tfd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? FKV_ELOCKED : io_error();
        goto fail;
    }

    uint64_t now = fkv_now_ms();
    fkv_file_header_encode(out, now);
    size_t olen = FKV_FILE_HEADER_SIZE; /* bytes buffered in out */
    uint64_t oflushed = 0;              /* bytes already in the new file */
    uint64_t wstart = 0, off = FKV_FILE_HEADER_SIZE;
    size_t wlen = 0;
    progress_total(s, s->end);
    while (off < s->end) {
        fkv_rec_header h;
        progress_done(s, off);
        rc = window_cover(s->fd, win, s->end, off, FKV_REC_HEADER_SIZE, &wstart, &wlen);
        if (rc == FKV_OK && fkv_record_header_decode(win + (off - wstart), &h) != FKV_OK)
            rc = FKV_ECORRUPT;
        if (rc == FKV_OK)
            rc = window_cover(s->fd, win, s->end, off, fkv_record_size(&h), &wstart, &wlen);
        if (rc != FKV_OK) {
            if (rc != FKV_EIO)
                rc = corrupt_at(off);
            goto fail;
        }
        const uint8_t *rec = win + (off - wstart);
        size_t rl = fkv_record_size(&h);
        if (h.kind == FKV_KIND_PUT) {
            uint32_t hash = fkv_hash(rec + FKV_REC_HEADER_SIZE, h.klen);
            uint64_t pos = slot_of_offset(&s->ix, hash, off);
            if (pos != UINT64_MAX && pos != skip_pos && !is_expired(&h, now)) {
                if (!fkv_record_checksum_ok(rec, &h)) {
                    rc = corrupt_at(off);
                    goto fail;
                }
                if (olen + rl > SCAN_BUF) {
                    rc = write_at(tfd, out, olen, oflushed);
                    if (rc != FKV_OK)
                        goto fail;
                    oflushed += olen;
                    olen = 0;
                }
                memcpy(out + olen, rec, rl);
                newloc[pos] = (uint32_t)(oflushed + olen) | (s->ix.slots[pos].loc & FKV_LOC_TTL);
                olen += rl;
            }
        }
        off += rl;
    }
    if ((rc = write_at(tfd, out, olen, oflushed)) != FKV_OK)
        goto fail;
    progress_done(s, s->end);
    uint64_t new_end = oflushed + olen;
    if (fkv_fdatasync(tfd) != 0) {
        rc = io_error();
        goto fail;
    }
    if (rename(tmp, s->path) != 0) {
        rc = io_error();
        goto fail;
    }
    /* The rename is done: from here on the new file is the store. A failed
     * directory sync only weakens the rename against power loss. */
    (void)sync_dir_of(s->path);

    uint64_t n_ttl = 0;
    for (uint64_t pos = 0; pos < s->ix.cap; pos++) {
        if (!FKV_LOC_IS_ENTRY(s->ix.slots[pos].loc))
            continue;
        if (newloc[pos]) {
            s->ix.slots[pos].loc = newloc[pos];
            n_ttl += (newloc[pos] & FKV_LOC_TTL) != 0;
        } else {
            fkv_index_remove(&s->ix, pos);
        }
    }
    /* Wake anyone waiting on the old file: they see it was replaced and retry. */
    flock(s->fd, LOCK_UN);
    close(s->fd);
    s->fd = tfd;
    tfd = -1;
    s->end = new_end;
    s->live_bytes = new_end;
    s->n_ttl = n_ttl;
    s->cache_until = 0;
    s->compactions++;
    rc = FKV_OK;
    goto done;

fail:
    close(tfd);
    tfd = -1;
    unlink(tmp);
done:
    free(tmp);
    free(newloc);
    free(win);
    free(out);
    return rc;
}

/* Room for need more bytes under the cap, compacting if that can make it. */
static int make_room(fkv_store *s, size_t need, uint64_t now)
{
    uint64_t live;
    int rc = count_live(s, now, &live);
    if (rc != FKV_OK)
        return rc;
    int has_expired = live < s->ix.live;
    if (!has_expired && s->live_bytes + need > s->max_file_size)
        return FKV_EFULL; /* compaction could not free enough */
    rc = compact_locked(s, UINT64_MAX);
    if (rc != FKV_OK)
        return rc;
    return s->end + need <= s->max_file_size ? FKV_OK : FKV_EFULL;
}

/* Compact on its own once dead records are over half of a file of at least
 * AUTO_COMPACT_MIN bytes (half the cap, if that is smaller). Rewriting costs
 * about as much as the writes that left the dead bytes, so the cost per
 * write stays bounded. A failure is not the caller's: its write is done. */
static void maybe_compact(fkv_store *s)
{
    uint64_t floor = AUTO_COMPACT_MIN;
    if (floor > s->max_file_size / 2)
        floor = s->max_file_size / 2;
    if (s->end < floor || (s->end - s->live_bytes) * 2 <= s->end || s->end < s->auto_retry_at)
        return;
    if (compact_locked(s, UINT64_MAX) != FKV_OK)
        s->auto_retry_at = s->end + floor; /* do not retry on every write */
}

/* ---- open ---------------------------------------------------------------- */

/* In microseconds: whole milliseconds would let a wait end up to 1 ms
 * short of its timeout (found by test_lock_timeout_gives_up). */
static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Open path and take its exclusive lock, waiting up to timeout_ms. */
static int open_locked(const char *path, int create, uint64_t timeout_ms, int *out_fd)
{
    uint64_t start = monotonic_us();
    for (;;) {
        int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
        int fd = open(path, flags | FKV_O_NOATIME, 0644);
        if (fd < 0 && errno == EPERM && FKV_O_NOATIME) /* only the owner may skip atime */
            fd = open(path, flags, 0644);
        if (fd < 0)
            return errno == EISDIR ? FKV_EISDIR : io_error();
        struct stat st;
        if (fstat(fd, &st) != 0) {
            int rc = io_error();
            close(fd);
            return rc;
        }
        if (!S_ISREG(st.st_mode)) {
            close(fd);
            return S_ISDIR(st.st_mode) ? FKV_EISDIR : FKV_ENOTSTORE;
        }
        while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno == EINTR)
                continue;
            if (errno != EWOULDBLOCK) {
                int rc = io_error();
                close(fd);
                return rc;
            }
            if (monotonic_us() - start >= timeout_ms * 1000u) {
                close(fd);
                return FKV_ELOCKED;
            }
            struct timespec pause = {0, 5 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
        /* A compaction by the previous holder renames a new file over the
         * path; a lock won on the old, unlinked file guards nothing. */
        struct stat now_at_path;
        if (stat(path, &now_at_path) == 0 && now_at_path.st_ino == st.st_ino &&
            now_at_path.st_dev == st.st_dev) {
            *out_fd = fd;
            return FKV_OK;
        }
        flock(fd, LOCK_UN);
        close(fd);
    }
}

/* 1 if an intact record (header in range, checksum right) starts at off,
 * 0 if not, or a negative status. Fills h. */
static int intact_at(int fd, uint8_t *win, uint64_t size, uint64_t off, uint64_t *wstart,
                     size_t *wlen, fkv_rec_header *h)
{
    int rc = window_cover(fd, win, size, off, FKV_REC_HEADER_SIZE, wstart, wlen);
    if (rc != FKV_OK)
        return rc == FKV_ENOTFOUND ? 0 : rc;
    if (fkv_record_header_decode(win + (off - *wstart), h) != FKV_OK ||
        off + fkv_record_size(h) > size)
        return 0;
    rc = window_cover(fd, win, size, off, fkv_record_size(h), wstart, wlen);
    if (rc != FKV_OK)
        return rc == FKV_ENOTFOUND ? 0 : rc;
    return fkv_record_checksum_ok(win + (off - *wstart), h);
}

/* The first offset after off where an intact record starts, or size. The
 * window holds SCAN_CHUNK + FKV_REC_MAX bytes, so it is refilled about once
 * per SCAN_CHUNK of offsets tried. */
static int next_intact(int fd, uint8_t *win, uint64_t size, uint64_t off, uint64_t *wstart,
                       size_t *wlen, uint64_t *next)
{
    for (uint64_t p = off + 1; p + FKV_REC_HEADER_SIZE <= size; p++) {
        fkv_rec_header h;
        int r = intact_at(fd, win, size, p, wstart, wlen, &h);
        if (r < 0)
            return r;
        if (r) {
            *next = p;
            return FKV_OK;
        }
    }
    *next = size;
    return FKV_OK;
}

/* Apply one intact record to the index while scanning. */
static int scan_apply(fkv_store *s, const uint8_t *rec, const fkv_rec_header *h, uint64_t off,
                      uint32_t hash)
{
    const char *key = (const char *)rec + FKV_REC_HEADER_SIZE;
    int rc; /* room in the index was reserved by scan() for the whole batch */
    uint8_t buf[FKV_REC_HEADER_SIZE + FKV_KEY_MAX_BYTES];
    found f;
    rc = lookup(s, key, h->klen, hash, buf, sizeof buf, &f);
    if (rc != FKV_OK && rc != FKV_ENOTFOUND)
        return rc;
    if (rc == FKV_OK) {
        s->live_bytes -= fkv_record_size(&f.h);
        if (s->ix.slots[f.pos].loc & FKV_LOC_TTL)
            s->n_ttl--;
    }
    if (h->kind == FKV_KIND_PUT) {
        uint32_t loc = (uint32_t)off | (h->deadline_ms ? FKV_LOC_TTL : 0);
        uint32_t word = fkv_slot_word(hash, fkv_record_size(h));
        if (rc == FKV_OK) {
            s->ix.slots[f.pos].hash = word;
            s->ix.slots[f.pos].loc = loc;
        } else {
            fkv_index_put(&s->ix, fkv_index_free_slot(&s->ix, hash), word, loc);
        }
        s->live_bytes += fkv_record_size(h);
        s->n_ttl += h->deadline_ms != 0;
    } else if (rc == FKV_OK) {
        fkv_index_remove(&s->ix, f.pos);
    }
    return FKV_OK;
}

#define SCAN_BATCH 16

typedef struct scan_item {
    uint64_t off;
    fkv_rec_header h;
    uint32_t hash;
} scan_item;

/* 1 if an intact record starts at off and lies wholly inside the window
 * (no read needed), else 0: the caller goes the slow way. */
static int intact_in_window(const uint8_t *win, uint64_t wstart, size_t wlen, uint64_t off,
                            uint64_t size, fkv_rec_header *h)
{
    if (off < wstart || off + FKV_REC_HEADER_SIZE > wstart + wlen)
        return 0;
    const uint8_t *rec = win + (off - wstart);
    if (fkv_record_header_decode(rec, h) != FKV_OK)
        return 0;
    uint64_t end = off + fkv_record_size(h);
    if (end > size || end > wstart + wlen)
        return 0;
    return fkv_record_checksum_ok(rec, h);
}

/* Rebuild the index from the log. Opening (rep == NULL) cuts a torn tail
 * and refuses any other damage; salvaging (rep != NULL) writes nothing,
 * skips damaged bytes to the next intact record and counts everything. */
static int scan(fkv_store *s, uint64_t size, fkv_verify_report *rep)
{
    uint8_t *win = (uint8_t *)malloc(SCAN_BUF);
    if (!win)
        return FKV_ENOMEM;
    uint64_t wstart = 0, off = FKV_FILE_HEADER_SIZE;
    size_t wlen = 0;
    int rc = FKV_OK;
    s->end = off;
    progress_total(s, size);
    while (off < size) {
        fkv_rec_header h;
        progress_done(s, off);
        int r = intact_at(s->fd, win, size, off, &wstart, &wlen, &h);
        if (r < 0) {
            rc = r;
            break;
        }
        if (r == 0) {
            /* A crash mid-append leaves at most one record's bytes, with no
             * intact record after them: only that is a torn tail. */
            uint64_t next = size;
            if ((rep || size - off <= FKV_REC_MAX) &&
                (rc = next_intact(s->fd, win, size, off, &wstart, &wlen, &next)) != FKV_OK)
                break;
            if (next == size && size - off <= FKV_REC_MAX) {
                if (rep) {
                    rep->torn_tail_bytes = size - off;
                } else {
                    if (ftruncate(s->fd, (off_t)off) != 0) {
                        rc = io_error();
                        break;
                    }
                    s->torn_dropped = size - off;
                }
                break;
            }
            if (!rep) {
                rc = corrupt_at(off);
                break;
            }
            if (rep->damaged_regions++ == 0)
                rep->first_damage_offset = off;
            rep->damaged_bytes += next - off;
            off = next;
            s->end = off;
            continue;
        }
        /* Take this record and the intact ones after it that are already in
         * the window, hash them all and prefetch their index slots, then
         * apply them: the slot loads (cache misses in a large table) then
         * overlap instead of coming one after another. */
        scan_item batch[SCAN_BATCH];
        size_t nb = 0;
        if ((rc = fkv_index_reserve(&s->ix, SCAN_BATCH)) != FKV_OK)
            break;
        for (;;) {
            const uint8_t *rec = win + (off - wstart);
            batch[nb].off = off;
            batch[nb].h = h;
            batch[nb].hash = fkv_hash(rec + FKV_REC_HEADER_SIZE, h.klen);
            FKV_PREFETCH(&s->ix.slots[fkv_index_home(&s->ix, batch[nb].hash)]);
            off += fkv_record_size(&h);
            if (++nb == SCAN_BATCH || off >= size || !intact_in_window(win, wstart, wlen, off, size, &h))
                break;
        }
        for (size_t i = 0; i < nb && rc == FKV_OK; i++) {
            rc = scan_apply(s, win + (batch[i].off - wstart), &batch[i].h, batch[i].off,
                            batch[i].hash);
            if (rep) {
                rep->intact_records++;
                if (batch[i].h.kind == FKV_KIND_PUT)
                    rep->puts++;
                else
                    rep->tombstones++;
            }
            s->end = batch[i].off + fkv_record_size(&batch[i].h);
        }
        if (rc != FKV_OK)
            break;
    }
    free(win);
    if (rc == FKV_OK)
        progress_done(s, size);
    return rc;
}

/* Open a store. With rep == NULL: the normal open (create if missing,
 * initialise an empty file, drop a torn tail, refuse damage). With rep:
 * salvage mode for verify/repair, which never writes to the file, reads
 * past a damaged header checksum and damaged records, and reports. */
static int open_store(const char *path, const fkv_options *opt, fkv_verify_report *rep,
                      fkv_progress *progress, fkv_store **out)
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
    s->fd = -1;
    s->path = strdup(path);
    if (!s->path || pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s->path);
        free(s);
        return FKV_ENOMEM;
    }
    s->max_file_size = opt->max_file_size;
    s->durability = opt->durability;
    s->progress = progress;
    s->fork_gen = __atomic_load_n(&fork_generation, __ATOMIC_RELAXED);

    int rc = open_locked(path, rep == NULL, opt->lock_timeout_ms, &s->fd);
    if (rc != FKV_OK)
        goto fail;
    if (!rep) {
        /* We hold the lock, so no compaction is running: a leftover is junk. */
        static const char *const leftovers[] = {COMPACT_SUFFIX, REPAIR_SUFFIX};
        for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++) {
            char *tmp = path_with_suffix(path, leftovers[i]);
            if (tmp)
                unlink(tmp);
            free(tmp);
        }
    }
    struct stat st;
    if (fstat(s->fd, &st) != 0) {
        rc = io_error();
        goto fail;
    }
    uint64_t size = (uint64_t)st.st_size;
    uint8_t header[FKV_FILE_HEADER_SIZE];
    if (rep)
        rep->file_bytes = size;
    if (size == 0 && !rep) {
        fkv_file_header_encode(header, fkv_now_ms());
        rc = write_at(s->fd, header, sizeof header, 0);
        if (rc == FKV_OK && s->durability == FKV_DURABLE_FSYNC && fkv_fdatasync(s->fd) != 0)
            rc = io_error();
        if (rc != FKV_OK)
            goto fail;
        size = FKV_FILE_HEADER_SIZE;
    } else if (size > 0) {
        size_t got;
        if (size < FKV_FILE_HEADER_SIZE) {
            rc = FKV_ENOTSTORE;
            goto fail;
        }
        if ((rc = read_at(s->fd, header, sizeof header, 0, &got)) != FKV_OK)
            goto fail;
        if (got < sizeof header) {
            rc = FKV_ENOTSTORE;
            goto fail;
        }
        rc = fkv_file_header_check(header);
        if (rc == FKV_ECORRUPT && rep) {
            rep->header_ok = 0; /* the magic is ours: salvage what follows */
            rc = FKV_OK;
        }
        if (rc != FKV_OK) {
            if (rc == FKV_ECORRUPT)
                fkv_set_offset(0);
            goto fail;
        }
        if (size > FKV_MAX_FILE_SIZE) { /* offsets would not fit the index */
            rc = corrupt_at(FKV_MAX_FILE_SIZE);
            goto fail;
        }
    }
    if ((rc = fkv_index_init(&s->ix, 0)) != FKV_OK)
        goto fail;
    s->live_bytes = FKV_FILE_HEADER_SIZE;
    if (size > 0 && (rc = scan(s, size, rep)) != FKV_OK)
        goto fail;
    s->progress = NULL;
    *out = s;
    return FKV_OK;

fail:
    if (s->fd >= 0) {
        flock(s->fd, LOCK_UN);
        close(s->fd);
    }
    fkv_index_free(&s->ix);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
    return rc;
}

int fkv_open(const char *path, const fkv_options *opt, fkv_store **out)
{
    return open_store(path, opt, NULL, NULL, out);
}

/* ---- verify and repair --------------------------------------------------- */

static int salvage_open(const char *path, fkv_verify_report *rep, fkv_progress *progress,
                        fkv_store **out)
{
    fkv_options opt = {FKV_MAX_FILE_SIZE, FKV_DURABLE_PROCESS, 0};
    memset(rep, 0, sizeof *rep);
    rep->header_ok = 1;
    rep->first_damage_offset = UINT64_MAX;
    int rc = open_store(path, &opt, rep, progress, out);
    if (rc == FKV_OK && (rc = count_live(*out, fkv_now_ms(), &rep->live_keys)) != FKV_OK) {
        fkv_free(*out);
        *out = NULL;
    }
    return rc;
}

int fkv_verify(const char *path, fkv_verify_report *rep, fkv_progress *progress)
{
    fkv_store *s;
    int rc = salvage_open(path, rep, progress, &s);
    if (rc == FKV_OK)
        fkv_free(s);
    return rc;
}

/* Write every live record the index of s points to into the open file tfd,
 * as a complete store. */
static int write_live_records(fkv_store *s, int tfd, uint64_t *written)
{
    uint8_t *out = (uint8_t *)malloc(SCAN_BUF);
    uint8_t *rec = (uint8_t *)malloc(FKV_REC_MAX);
    int rc = FKV_OK;
    if (!out || !rec) {
        rc = FKV_ENOMEM;
        goto done;
    }
    uint64_t now = fkv_now_ms(), flushed = 0;
    size_t olen = FKV_FILE_HEADER_SIZE;
    fkv_file_header_encode(out, now);
    *written = 0;
    for (uint64_t pos = 0; pos < s->ix.cap; pos++) {
        uint32_t loc = s->ix.slots[pos].loc;
        if (!FKV_LOC_IS_ENTRY(loc))
            continue;
        uint64_t off = FKV_LOC_OFFSET(loc);
        fkv_rec_header h;
        size_t got;
        if ((rc = read_at(s->fd, rec, FKV_REC_HEADER_SIZE, off, &got)) != FKV_OK)
            goto done;
        if (got < FKV_REC_HEADER_SIZE || fkv_record_header_decode(rec, &h) != FKV_OK) {
            rc = corrupt_at(off);
            goto done;
        }
        size_t rl = fkv_record_size(&h);
        if ((rc = read_at(s->fd, rec, rl, off, &got)) != FKV_OK)
            goto done;
        if (got < rl || !fkv_record_checksum_ok(rec, &h)) {
            rc = corrupt_at(off);
            goto done;
        }
        if (is_expired(&h, now))
            continue;
        if (olen + rl > SCAN_BUF) {
            if ((rc = write_at(tfd, out, olen, flushed)) != FKV_OK)
                goto done;
            flushed += olen;
            olen = 0;
        }
        memcpy(out + olen, rec, rl);
        olen += rl;
        (*written)++;
    }
    if ((rc = write_at(tfd, out, olen, flushed)) == FKV_OK && fkv_fdatasync(tfd) != 0)
        rc = io_error();
done:
    free(out);
    free(rec);
    return rc;
}

int fkv_repair(const char *path, const char *backup_path, fkv_verify_report *rep,
               fkv_progress *progress)
{
    fkv_store *s;
    int rc = salvage_open(path, rep, progress, &s);
    if (rc != FKV_OK)
        return rc;
    char *tmp = path_with_suffix(path, REPAIR_SUFFIX);
    int tfd = -1;
    struct stat st;
    if (!tmp) {
        rc = FKV_ENOMEM;
        goto done;
    }
    if (fstat(s->fd, &st) != 0) {
        rc = io_error();
        goto done;
    }
    tfd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
    if (tfd < 0) {
        rc = io_error();
        goto done;
    }
    /* Locked before it takes the store's name, like a compacted file. */
    if (flock(tfd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? FKV_ELOCKED : io_error();
        goto done;
    }
    if ((rc = write_live_records(s, tfd, &rep->salvaged_keys)) != FKV_OK)
        goto done;
    /* A hard link keeps the damaged file under the store's name until the
     * rename swaps the new one in: no opener ever finds the name missing. */
    if (backup_path && link(path, backup_path) != 0) {
        rc = io_error();
        goto done;
    }
    if (rename(tmp, path) != 0) {
        rc = io_error();
        if (backup_path)
            unlink(backup_path);
        goto done;
    }
    (void)sync_dir_of(path);
done:
    if (tfd >= 0) {
        if (rc != FKV_OK)
            unlink(tmp);
        flock(tfd, LOCK_UN);
        close(tfd);
    }
    free(tmp);
    fkv_free(s);
    return rc;
}

/* ---- close --------------------------------------------------------------- */

int fkv_close(fkv_store *s)
{
    if (in_forked_child(s)) {
        /* Only our copy of the descriptor goes; the parent keeps its lock. */
        if (s->fd >= 0)
            close(s->fd);
        s->fd = -1;
        s->closed = 1;
        return FKV_OK;
    }
    pthread_mutex_lock(&s->mu);
    if (!s->closed) {
        s->closed = 1;
        /* Explicit unlock: a forked child may still hold a copy of the fd. */
        flock(s->fd, LOCK_UN);
        close(s->fd);
        s->fd = -1;
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
    if (!in_forked_child(s)) /* a child's copy of the mutex may be locked */
        pthread_mutex_destroy(&s->mu);
    fkv_index_free(&s->ix);
    free(s->path);
    free(s);
}

/* ---- operations ---------------------------------------------------------- */

/* deadline_ms is absolute (0: none), or with relative set, seconds from now. */
static int create_locked(fkv_store *s, const char *key, size_t klen, const uint8_t *val,
                         size_t vlen, uint64_t deadline_ms, int relative)
{
    uint8_t buf[READ_HINT];
    uint32_t hash = fkv_hash(key, klen);
    /* Grow the index before writing: after the write nothing may fail. */
    int rc = fkv_index_reserve(&s->ix, 1);
    if (rc != FKV_OK)
        return rc;
    uint64_t now = fkv_now_ms();
    uint64_t deadline = relative && deadline_ms ? now + deadline_ms * 1000u : deadline_ms;
    if (!relative && deadline) {
        if (deadline <= now)
            return FKV_EEXPIRED;
        if (deadline - now > FKV_TTL_MAX_S * 1000u)
            return FKV_ETTL;
    }
    found f;
    rc = lookup(s, key, klen, hash, buf, sizeof buf, &f);
    if (rc == FKV_OK && !is_expired(&f.h, now))
        return FKV_EEXISTS;
    if (rc != FKV_OK && rc != FKV_ENOTFOUND)
        return rc;
    size_t need = FKV_REC_HEADER_SIZE + klen + vlen;
    if (s->end + need > s->max_file_size) {
        if ((rc = make_room(s, need, now)) != FKV_OK)
            return rc;
        /* Compaction dropped expired records and moved the rest. */
        rc = lookup(s, key, klen, hash, buf, sizeof buf, &f);
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
    maybe_compact(s);
    return FKV_OK;
}

static int create_entry(fkv_store *s, const char *key, size_t klen, const uint8_t *val,
                        size_t vlen, uint64_t deadline_ms, int relative)
{
    if (klen == 0 || klen > FKV_KEY_MAX_BYTES)
        return FKV_EKEY;
    if (vlen > FKV_VALUE_MAX)
        return FKV_EVALUE;
    if (relative && deadline_ms > FKV_TTL_MAX_S)
        return FKV_ETTL;
    int rc = enter(s);
    if (rc != FKV_OK)
        return rc;
    rc = create_locked(s, key, klen, val, vlen, deadline_ms, relative);
    leave(s);
    return rc;
}

int fkv_create(fkv_store *s, const char *key, size_t klen, const uint8_t *val, size_t vlen,
               uint64_t ttl_s)
{
    return create_entry(s, key, klen, val, vlen, ttl_s, 1);
}

int fkv_create_until(fkv_store *s, const char *key, size_t klen, const uint8_t *val,
                     size_t vlen, uint64_t deadline_ms)
{
    return create_entry(s, key, klen, val, vlen, deadline_ms, 0);
}

static int read_locked(fkv_store *s, const char *key, size_t klen, uint8_t *buf, size_t *voff,
                       size_t *vlen, int nowait)
{
    found f;
    int rc = lookup_ex(s, key, klen, fkv_hash(key, klen), buf, FKV_REC_MAX, nowait, &f);
    if (rc != FKV_OK)
        return rc;
    size_t total = fkv_record_size(&f.h);
    if (f.got < total) {
        size_t got, rest = total - f.got;
        rc = nowait ? read_at_nowait(s->fd, buf + f.got, rest, f.off + f.got, &got)
                    : read_at(s->fd, buf + f.got, rest, f.off + f.got, &got);
        if (rc != FKV_OK)
            return rc;
        if (got < rest)
            return corrupt_at(f.off);
    }
    /* Checksum before the deadline: the deadline is part of what it guards. */
    if (!f.verified && !fkv_record_checksum_ok(buf, &f.h))
        return corrupt_at(f.off);
    if (expired_now(&f.h))
        return FKV_EEXPIRED;
    *voff = FKV_REC_HEADER_SIZE + klen;
    *vlen = f.h.vlen;
    return FKV_OK;
}

/* enter() that gives up instead of waiting for the mutex. */
static inline int try_enter(fkv_store *s)
{
    if (FKV_UNLIKELY(in_forked_child(s)))
        return FKV_EFORKED;
    if (pthread_mutex_trylock(&s->mu) != 0)
        return FKV_EAGAIN;
    if (FKV_UNLIKELY(s->closed)) {
        pthread_mutex_unlock(&s->mu);
        return FKV_ECLOSED;
    }
    return FKV_OK;
}

static int read_entry(fkv_store *s, const char *key, size_t klen, uint8_t *buf, size_t *voff,
                      size_t *vlen, int nowait)
{
    if (klen == 0 || klen > FKV_KEY_MAX_BYTES)
        return FKV_EKEY;
    int rc = nowait ? try_enter(s) : enter(s);
    if (rc != FKV_OK)
        return rc;
    rc = read_locked(s, key, klen, buf, voff, vlen, nowait);
    leave(s);
    return rc;
}

int fkv_read(fkv_store *s, const char *key, size_t klen, uint8_t *buf, size_t *voff,
             size_t *vlen)
{
    return read_entry(s, key, klen, buf, voff, vlen, 0);
}

int fkv_try_read(fkv_store *s, const char *key, size_t klen, uint8_t *buf, size_t *voff,
                 size_t *vlen)
{
    return read_entry(s, key, klen, buf, voff, vlen, 1);
}

static int delete_locked(fkv_store *s, const char *key, size_t klen)
{
    uint8_t buf[READ_HINT];
    found f;
    int rc = lookup(s, key, klen, fkv_hash(key, klen), buf, sizeof buf, &f);
    if (rc != FKV_OK)
        return rc;
    if (expired_now(&f.h))
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
    maybe_compact(s);
    return FKV_OK;
}

int fkv_delete(fkv_store *s, const char *key, size_t klen)
{
    if (klen == 0 || klen > FKV_KEY_MAX_BYTES)
        return FKV_EKEY;
    int rc = enter(s);
    if (rc != FKV_OK)
        return rc;
    rc = delete_locked(s, key, klen);
    leave(s);
    return rc;
}

static int contains_locked(fkv_store *s, const char *key, size_t klen, int nowait,
                           int *found_out)
{
    uint8_t buf[READ_HINT];
    found f;
    int rc = lookup_ex(s, key, klen, fkv_hash(key, klen), buf, sizeof buf, nowait, &f);
    if (rc == FKV_OK)
        *found_out = !expired_now(&f.h);
    else if (rc == FKV_ENOTFOUND)
        rc = FKV_OK;
    return rc;
}

static int contains_entry(fkv_store *s, const char *key, size_t klen, int *found_out,
                          int nowait)
{
    *found_out = 0;
    if (klen == 0 || klen > FKV_KEY_MAX_BYTES)
        return FKV_OK;
    int rc = nowait ? try_enter(s) : enter(s);
    if (rc != FKV_OK)
        return rc;
    rc = contains_locked(s, key, klen, nowait, found_out);
    leave(s);
    return rc;
}

int fkv_contains(fkv_store *s, const char *key, size_t klen, int *found_out)
{
    return contains_entry(s, key, klen, found_out, 0);
}

int fkv_try_contains(fkv_store *s, const char *key, size_t klen, int *found_out)
{
    return contains_entry(s, key, klen, found_out, 1);
}

int fkv_count(fkv_store *s, uint64_t *n)
{
    int rc = enter(s);
    if (rc != FKV_OK)
        return rc;
    rc = count_live(s, fkv_now_ms(), n);
    leave(s);
    return rc;
}

int fkv_iter_keys(fkv_store *s, uint64_t *pos, uint64_t *gen, uint8_t *buf, size_t bufsize,
                  size_t *used, size_t *nkeys)
{
    *used = 0;
    *nkeys = 0;
    int rc = enter(s);
    if (rc != FKV_OK)
        return rc;
    if (*gen == UINT64_MAX) {
        *gen = s->ix.gen;
    } else if (*gen != s->ix.gen) {
        leave(s);
        return FKV_ECHANGED;
    }
    uint64_t now = fkv_now_ms();
    uint8_t rec[FKV_REC_HEADER_SIZE + FKV_KEY_MAX_BYTES];
    uint64_t p = *pos;
    size_t u = 0, k = 0;
    for (; p < s->ix.cap && u + 1 + FKV_KEY_MAX_BYTES <= bufsize; p++) {
        uint32_t loc = s->ix.slots[p].loc;
        if (!FKV_LOC_IS_ENTRY(loc))
            continue;
        uint64_t off = FKV_LOC_OFFSET(loc);
        size_t want = sizeof rec, got;
        fkv_rec_header h;
        if (off + want > s->end)
            want = (size_t)(s->end - off);
        if ((rc = read_at(s->fd, rec, want, off, &got)) != FKV_OK)
            break;
        if (got < FKV_REC_HEADER_SIZE || fkv_record_header_decode(rec, &h) != FKV_OK ||
            got < FKV_REC_HEADER_SIZE + h.klen) {
            rc = corrupt_at(off);
            break;
        }
        if (is_expired(&h, now))
            continue;
        buf[u] = h.klen;
        memcpy(buf + u + 1, rec + FKV_REC_HEADER_SIZE, h.klen);
        u += 1 + (size_t)h.klen;
        k++;
    }
    *pos = p;
    *used = u;
    *nkeys = k;
    leave(s);
    return rc;
}

int fkv_compact(fkv_store *s, fkv_progress *progress)
{
    int rc = enter(s);
    if (rc != FKV_OK)
        return rc;
    s->progress = progress;
    rc = compact_locked(s, UINT64_MAX);
    s->progress = NULL;
    leave(s);
    return rc;
}

int fkv_sync(fkv_store *s)
{
    int rc = enter(s);
    if (rc != FKV_OK)
        return rc;
    if (fkv_fdatasync(s->fd) != 0)
        rc = io_error();
    leave(s);
    return rc;
}

int fkv_get_stats(fkv_store *s, fkv_stats *st)
{
    int rc = enter(s);
    if (rc != FKV_OK)
        return rc;
    rc = count_live(s, fkv_now_ms(), &st->live_keys);
    st->held_keys = s->ix.live;
    st->file_bytes = s->end;
    st->live_bytes = s->live_bytes;
    st->dead_bytes = s->end - s->live_bytes;
    st->index_bytes = fkv_index_bytes(&s->ix);
    st->index_slots = s->ix.cap;
    st->max_file_size = s->max_file_size;
    st->torn_bytes_dropped = s->torn_dropped;
    st->compactions = s->compactions;
    leave(s);
    return rc;
}

int fkv_debug_hold(fkv_store *s, uint64_t ms)
{
    int rc = enter(s);
    if (rc != FKV_OK)
        return rc;
    struct timespec pause = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
    leave(s);
    return FKV_OK;
}
