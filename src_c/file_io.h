/*
 * file_io.h - the file, lock and directory primitives the store is built on.
 *
 * Reads and writes at explicit offsets that finish short transfers, a read
 * that never waits for the disk, opening a data file under an exclusive
 * flock, a temporary file created locked and renamed into place (compaction
 * and repair), a buffered writer for whole new files, and a read window for
 * walking a log in large chunks.
 *
 * Every call that fails returns a status (status.h) and leaves errno in
 * fkv_last_errno(). No locking of its own; never touches Python.
 */
#ifndef FKV_FILE_IO_H
#define FKV_FILE_IO_H

#include "platform.h" /* fkv_atomic_* */

#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* Whether a read may wait for the disk. */
typedef enum fkv_wait { FKV_MAY_WAIT = 0, FKV_NO_WAIT = 1 } fkv_wait;

/* Whether open creates a missing file. */
typedef enum fkv_create_mode { FKV_OPEN_EXISTING = 0, FKV_OPEN_CREATE = 1 } fkv_create_mode;

/* FKV_EIO with the current errno kept for the caller. */
int fkv_io_error(void);

/* FKV_ECORRUPT with the offset of the bad record kept for the caller. */
int fkv_corrupt_at(uint64_t off);

/* Read up to len bytes at off; *got < len only at end of file. With
 * FKV_NO_WAIT: FKV_EAGAIN unless all len bytes are in the page cache. */
int fkv_read_at(int fd, void *buf, size_t len, uint64_t off, size_t *got, fkv_wait wait);

/* Write all len bytes at off. */
int fkv_write_at(int fd, const void *buf, size_t len, uint64_t off);

/* ---- the store's lock and the replace step: per platform ------------------
 * POSIX (file_lock_posix.c): flock on the data file itself; a file that
 * replaces the store is locked before it is renamed over the path.
 * Windows (file_lock_win32.c): a file cannot be renamed over one that is
 * open there, so the data file is moved aside first, and the lock is on a
 * sidecar file (path + ".lock") that is never replaced. lock_fd is that
 * sidecar's descriptor, -1 where the lock is on the data file. */

/* Open path (absolute) for reading and writing and take the store's lock,
 * waiting up to timeout_ms for another holder to let go. FKV_EISDIR,
 * FKV_ENOTSTORE (not a regular file), FKV_ELOCKED or FKV_EIO on failure. */
int fkv_open_locked(const char *path, fkv_create_mode create, uint64_t timeout_ms, int *out_fd,
                    int *out_lock_fd);

/* Drop the lock and close. Not for a forked child's copy (it would drop the
 * parent's lock): close that descriptor only. */
void fkv_close_locked(int fd, int lock_fd);

/* Drop the lock, keeping fd open. */
void fkv_unlock(int fd, int lock_fd);

/* Lock a new file that is to replace the store (nothing to do where the
 * lock is on a sidecar). FKV_ELOCKED if someone else has it. */
int fkv_lock_new_file(int fd);

/* Rename from (whole and flushed) over to, durably (the directory synced
 * where that is needed). At every instant a kill leaves the old file or
 * the new one at to, once fkv_replace_recover(to) has run: where a rename
 * cannot replace an open file it takes several steps (file_lock_win32.c). */
int fkv_replace(const char *from, const char *to);

/* After a kill in a replace of path: the new file put at path if the kill
 * left no file there, what the replace left beside it removed. The
 * caller holds the store's lock. Nothing to do on POSIX, where a replace
 * is one rename. */
void fkv_replace_recover(const char *path);

/* The step a replace ends the process at (0: none): process-wide, set by
 * fkv_debug_kill_at_replace_step (debug.c). */
extern int fkv_replace_kill_step;

/* Called by fkv_replace at each step, numbered from 1: the stop points of
 * fkv_debug_kill_at_replace_step (store.h). */
void fkv_replace_reached(int step);
int fkv_replace_steps(void);

/* Give the file at from the name to, durably, only if no file has that name
 * (FKV_EPATHEXISTS, and nothing changed); from's name is gone on success. */
int fkv_install_new(const char *from, const char *to);

/* Take the exclusive lock of fd without blocking, retrying every 5 ms until
 * timeout_ms after start_us (fkv_monotonic_us). FKV_OK; else FKV_ELOCKED
 * or FKV_EIO, with fd closed (for the files above). */
int fkv_lock_or_close(int fd, uint64_t start_us, uint64_t timeout_ms);

/* Open path, refusing anything but a regular file (for the files above). */
struct stat;
int fkv_open_regular(const char *path, fkv_create_mode create, int *out_fd, struct stat *st);

/* An open data file shared by the store and the reads in flight on it.
 * Reads pin it under the store's mutex and read after letting the mutex go;
 * a compaction that swaps in a new file (or a close) only drops the store's
 * own reference, so the descriptor is closed by whoever lets go last and
 * never while a read still uses it. The bytes a read was pointed at stay
 * as they were: the log is append-only, and a replaced file is unlinked,
 * not changed. */
typedef struct fkv_file {
    int fd;
    int lock_fd;   /* where the store's lock is when not on fd (see above), else -1 */
    uint32_t refs; /* the store's reference plus one per read in flight */
    const uint8_t *map; /* fd mapped read-only (file_map.h), or NULL */
    struct fkv_warm *warm; /* its pages known in memory (warm_pages.h), or NULL */
    /* Appends (append.h), only ever touched by the writer under the
     * store's mutex: */
    uint8_t *wmap;      /* fd mapped read-write, or NULL */
    int wmap_tried;     /* 1 once opening wmap was tried (or ruled out) */
    uint64_t room_end;  /* the file is at least this long: room made ahead */
    uint64_t let_go;    /* wmap's pages before this are let go */
} fkv_file;

/* A file holding one reference (the store's), mapped where it can be, or NULL. */
fkv_file *fkv_file_wrap(int fd, int lock_fd);

static inline void fkv_file_pin(fkv_file *f)
{
    fkv_atomic_add(&f->refs, 1, FKV_RELAXED);
}

/* Drop a reference; the last one unmaps and closes the descriptor. */
void fkv_file_unpin(fkv_file *f);

/* Drop the store's reference to a locked file: the lock goes now (another
 * opener may wait for it), the descriptor when the last read is done. */
void fkv_file_release(fkv_file *f);

/* A file that replaced from as the store's takes over its lock where the
 * lock is a sidecar's (from's release then leaves it held). */
void fkv_file_move_lock(fkv_file *to, fkv_file *from);

/* path + suffix in fresh memory, or NULL. */
char *fkv_path_with_suffix(const char *path, const char *suffix);

/* A new file beside a store (path + suffix), created empty with the mode of
 * the store's file and locked before anything is written to it, so that once
 * it is renamed over the store no other opener can have got in. */
typedef struct fkv_tempfile {
    int fd;
    char *path;
} fkv_tempfile;

/* Create and lock it; like_fd is the store's descriptor (for the mode). */
int fkv_temp_create(fkv_tempfile *t, const char *store_path, const char *suffix, int like_fd);

/* Put it in store_path's place (fkv_replace). The descriptor stays open
 * (and locked where the lock is on the data file): it now is the store's.
 * Its path is freed. */
int fkv_temp_install(fkv_tempfile *t, const char *store_path);

/* Give it up: closed, unlocked, unlinked, freed. Safe on a zeroed struct
 * (fd -1) and after fkv_temp_install (then it only closes the fd). */
void fkv_temp_discard(fkv_tempfile *t);

/* Fills a new file front to back through one large buffer. */
typedef struct fkv_bufwriter {
    int fd;
    uint8_t *buf;
    size_t len;         /* bytes waiting in buf */
    uint64_t flushed;   /* bytes already written to the file */
} fkv_bufwriter;

int fkv_bufwriter_init(fkv_bufwriter *w, int fd);

/* Offset in the file where the next added bytes will land. */
static inline uint64_t fkv_bufwriter_offset(const fkv_bufwriter *w)
{
    return w->flushed + w->len;
}

/* Add n bytes (n at most FKV_WRITE_BUF). */
int fkv_bufwriter_add(fkv_bufwriter *w, const void *bytes, size_t n);

/* Write what is buffered and flush the file to stable storage. */
int fkv_bufwriter_finish(fkv_bufwriter *w);

void fkv_bufwriter_free(fkv_bufwriter *w);

/* The buffered writer's buffer: one write per megabyte. */
#define FKV_WRITE_BUF (1u << 20)

/* A read window for walking a log front to back. 128 KiB a read: a full
 * scan is no slower than with a megabyte, and the scan of a short log
 * past a snapshot in a fresh process touches 8 times fewer fresh pages
 * (a reopen after a crash: 0.8 ms instead of 1.25 at a million keys). */
#define FKV_SCAN_CHUNK (1u << 17)
/* A chunk plus the largest record, so a record that starts in a chunk is
 * whole in the window. */
#define FKV_SCAN_BUF (FKV_SCAN_CHUNK + FKV_REC_MAX)

typedef struct fkv_window {
    int fd;
    uint64_t limit;  /* bytes of the file that may be read */
    const uint8_t *buf; /* FKV_SCAN_BUF bytes, or the file's mapping */
    uint64_t start;  /* file offset of buf[0] */
    size_t len;      /* valid bytes in buf */
    int mapped;      /* buf is the mapping: it holds the whole file */
} fkv_window;

int fkv_window_init(fkv_window *w, int fd, uint64_t limit);
/* A window that is the file's read-only mapping (file_map.h), for a walk
 * under fkv_map_guarded: nothing is copied, a fault ends the walk. */
void fkv_window_over_map(fkv_window *w, const uint8_t *map, uint64_t limit);
void fkv_window_free(fkv_window *w);

/* Make the window cover [off, off + n), reading a fresh window at off if
 * needed. FKV_ENOTFOUND if the file (its limit) ends first. */
int fkv_window_cover(fkv_window *w, uint64_t off, size_t n);

/* Pointer to the byte at file offset off (covered by the window). */
static inline const uint8_t *fkv_window_at(const fkv_window *w, uint64_t off)
{
    return w->buf + (off - w->start);
}

/* 1 if [off, off + n) lies wholly inside the window. */
static inline int fkv_window_holds(const fkv_window *w, uint64_t off, size_t n)
{
    return off >= w->start && off + n <= w->start + w->len;
}

/* Flush written data of fd to stable storage: FKV_OK or FKV_EIO. */
int fkv_flush(int fd);

/* Copy len bytes of file from at from_off to file to at to_off: in the
 * kernel where the system can, else through a buffer. */
int fkv_copy_range(int from, uint64_t from_off, int to, uint64_t to_off, size_t len);

#endif /* FKV_FILE_IO_H */
