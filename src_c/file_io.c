/* file_io.c - file primitives every platform shares (see file_io.h); the
 * lock and the replace step differ: file_lock_posix.c, file_lock_win32.c. */
#include "platform.h" /* first: sets the feature macros */
#include "file_io.h"
#include "file_map.h"
#include "clock.h"
#include "status.h"
#include "warm_pages.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int fkv_io_error(void)
{
    fkv_set_errno(errno);
    return FKV_EIO;
}

int fkv_corrupt_at(uint64_t off)
{
    fkv_set_offset(off);
    return FKV_ECORRUPT;
}

int fkv_read_at(int fd, void *buf, size_t len, uint64_t off, size_t *got, fkv_wait wait)
{
    if (wait == FKV_NO_WAIT) {
        ssize_t r = fkv_pread_nowait(fd, buf, len, (off_t)off);
        if (r < 0 || (size_t)r < len)
            return FKV_EAGAIN; /* not cached, or a kernel that cannot tell */
        *got = (size_t)r;
        return FKV_OK;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return fkv_io_error();
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return FKV_OK;
}

int fkv_write_at(int fd, const void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return fkv_io_error();
        }
        done += (size_t)w;
    }
    return FKV_OK;
}

int fkv_flush(int fd)
{
    return fkv_fdatasync(fd) == 0 ? FKV_OK : fkv_io_error();
}

int fkv_copy_range(int from, uint64_t from_off, int to, uint64_t to_off, size_t len)
{
    uint64_t done = 0;
    while (done < len) { /* in the kernel while it copies */
        int64_t n = fkv_kernel_copy(from, from_off + done, to, to_off + done, (size_t)(len - done));
        if (n > 0)
            done += (uint64_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n == 0)
            return fkv_corrupt_at(from_off + done); /* the source ends early */
        else
            break;
    }
    if (done == len)
        return FKV_OK;
    size_t cap = 1u << 20;
    uint8_t *buf = (uint8_t *)malloc(cap);
    if (!buf)
        return FKV_ENOMEM;
    int rc = FKV_OK;
    while (rc == FKV_OK && done < len) {
        size_t want = len - done < cap ? (size_t)(len - done) : cap, got;
        rc = fkv_read_at(from, buf, want, from_off + done, &got, FKV_MAY_WAIT);
        if (rc == FKV_OK && got < want)
            rc = fkv_corrupt_at(from_off + done + got);
        if (rc == FKV_OK)
            rc = fkv_write_at(to, buf, want, to_off + done);
        done += want;
    }
    free(buf);
    return rc;
}

int fkv_open_regular(const char *path, fkv_create_mode create, int *out_fd, struct stat *st)
{
    int flags = O_RDWR | O_CLOEXEC | (create == FKV_OPEN_CREATE ? O_CREAT : 0);
    int fd = open(path, flags | FKV_O_NOATIME, 0644);
    if (fd < 0 && errno == EPERM && FKV_O_NOATIME) /* only the owner may skip atime */
        fd = open(path, flags, 0644);
    if (fd < 0)
        return errno == EISDIR ? FKV_EISDIR : fkv_io_error();
    if (fstat(fd, st) != 0) {
        int rc = fkv_io_error();
        close(fd);
        return rc;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return S_ISDIR(st->st_mode) ? FKV_EISDIR : FKV_ENOTSTORE;
    }
    *out_fd = fd;
    return FKV_OK;
}

int fkv_lock_or_close(int fd, uint64_t start_us, uint64_t timeout_ms)
{
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            int rc = fkv_io_error();
            close(fd);
            return rc;
        }
        /* in microseconds: whole milliseconds would let a wait end up to
         * 1 ms short of its timeout (found by test_lock_timeout_gives_up) */
        if (fkv_monotonic_us() - start_us >= timeout_ms * 1000u) {
            close(fd);
            return FKV_ELOCKED;
        }
        fkv_sleep_ms(5);
    }
    return FKV_OK;
}

char *fkv_path_with_suffix(const char *path, const char *suffix)
{
    size_t plen = strlen(path), slen = strlen(suffix);
    char *p = (char *)malloc(plen + slen + 1);
    if (p) {
        memcpy(p, path, plen);
        memcpy(p + plen, suffix, slen + 1);
    }
    return p;
}

/* ---- shared descriptor ---------------------------------------------------- */

fkv_file *fkv_file_wrap(int fd, int lock_fd)
{
    fkv_file *f = (fkv_file *)malloc(sizeof *f);
    if (f) {
        f->fd = fd;
        f->lock_fd = lock_fd;
        f->refs = 1;
        f->map = fkv_map_open(fd);
        f->warm = f->map ? fkv_warm_new() : NULL;
        f->wmap = NULL;
        f->wmap_tried = 0;
        f->room_end = 0;
        f->let_go = 0;
    }
    return f;
}

void fkv_file_unpin(fkv_file *f)
{
    if (fkv_atomic_sub(&f->refs, 1, FKV_ACQ_REL) == 0) {
        fkv_map_close(f->map);
        fkv_map_close(f->wmap);
        fkv_warm_free(f->warm);
        close(f->fd);
        free(f);
    }
}

void fkv_file_release(fkv_file *f)
{
    fkv_unlock(f->fd, f->lock_fd);
    f->lock_fd = -1;
    fkv_file_unpin(f);
}

void fkv_file_move_lock(fkv_file *to, fkv_file *from)
{
    to->lock_fd = from->lock_fd;
    from->lock_fd = -1;
}

/* ---- the replace's stop points, for the crash tests ----------------------- */

int fkv_replace_kill_step; /* 0: none; set by a test hook (debug.c) */

void fkv_replace_reached(int step)
{
    if (FKV_UNLIKELY(fkv_atomic_load(&fkv_replace_kill_step, FKV_RELAXED) == step))
        fkv_kill_self();
}

/* ---- temporary file renamed into place ---------------------------------- */

int fkv_temp_create(fkv_tempfile *t, const char *store_path, const char *suffix, int like_fd)
{
    t->fd = -1;
    t->path = fkv_path_with_suffix(store_path, suffix);
    if (!t->path)
        return FKV_ENOMEM;
    struct stat st;
    if (fstat(like_fd, &st) != 0)
        return fkv_io_error();
    t->fd = open(t->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
    if (t->fd < 0)
        return fkv_io_error();
    return fkv_lock_new_file(t->fd);
}

int fkv_temp_install(fkv_tempfile *t, const char *store_path)
{
    int rc = fkv_replace(t->path, store_path);
    if (rc != FKV_OK)
        return rc;
    free(t->path);
    t->path = NULL;
    return FKV_OK;
}

void fkv_temp_discard(fkv_tempfile *t)
{
    if (t->fd >= 0 && t->path) /* not installed: nobody else may see it */
        unlink(t->path);
    if (t->fd >= 0)
        fkv_close_locked(t->fd, -1);
    t->fd = -1;
    free(t->path);
    t->path = NULL;
}

/* ---- buffered writer ----------------------------------------------------- */

int fkv_bufwriter_init(fkv_bufwriter *w, int fd)
{
    w->fd = fd;
    w->len = 0;
    w->flushed = 0;
    w->buf = (uint8_t *)malloc(FKV_WRITE_BUF);
    return w->buf ? FKV_OK : FKV_ENOMEM;
}

int fkv_bufwriter_add(fkv_bufwriter *w, const void *bytes, size_t n)
{
    if (w->len + n > FKV_WRITE_BUF) {
        int rc = fkv_write_at(w->fd, w->buf, w->len, w->flushed);
        if (rc != FKV_OK)
            return rc;
        w->flushed += w->len;
        w->len = 0;
    }
    memcpy(w->buf + w->len, bytes, n);
    w->len += n;
    return FKV_OK;
}

int fkv_bufwriter_finish(fkv_bufwriter *w)
{
    int rc = fkv_write_at(w->fd, w->buf, w->len, w->flushed);
    if (rc != FKV_OK)
        return rc;
    w->flushed += w->len;
    w->len = 0;
    return fkv_flush(w->fd);
}

void fkv_bufwriter_free(fkv_bufwriter *w)
{
    free(w->buf);
    w->buf = NULL;
}

/* ---- read window --------------------------------------------------------- */

int fkv_window_init(fkv_window *w, int fd, uint64_t limit)
{
    w->fd = fd;
    w->limit = limit;
    w->start = 0;
    w->len = 0;
    w->mapped = 0;
    w->buf = (const uint8_t *)malloc(FKV_SCAN_BUF);
    return w->buf ? FKV_OK : FKV_ENOMEM;
}

void fkv_window_over_map(fkv_window *w, const uint8_t *map, uint64_t limit)
{
    w->fd = -1;
    w->limit = limit;
    w->buf = map;
    w->start = 0;
    w->len = (size_t)limit;
    w->mapped = 1;
}

void fkv_window_free(fkv_window *w)
{
    if (!w->mapped)
        free((void *)w->buf);
    w->buf = NULL;
}

int fkv_window_cover(fkv_window *w, uint64_t off, size_t n)
{
    if (fkv_window_holds(w, off, n))
        return FKV_OK;
    if (w->mapped)
        return FKV_ENOTFOUND; /* it holds the whole file: this is past its end */
    size_t want = FKV_SCAN_BUF;
    if (off + want > w->limit)
        want = (size_t)(w->limit - off);
    uint8_t *buf = (uint8_t *)w->buf; /* fkv_window_init's own */
    int rc = fkv_read_at(w->fd, buf, want, off, &w->len, FKV_MAY_WAIT);
    w->start = off;
    if (rc != FKV_OK) {
        w->len = 0;
        return rc;
    }
    return w->len >= n ? FKV_OK : FKV_ENOTFOUND;
}
