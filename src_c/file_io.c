/* file_io.c - POSIX file, lock and directory primitives (see file_io.h). */
#include "platform.h" /* first: sets the feature macros */
#include "file_io.h"
#include "clock.h"
#include "status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

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

/* A rename is durable only once the directory holding it is synced. */
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
        return fkv_io_error();
    int rc = fsync(dfd) == 0 ? FKV_OK : fkv_io_error();
    close(dfd);
    return rc;
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

/* Open path, refusing anything but a regular file. */
static int open_regular(const char *path, fkv_create_mode create, int *out_fd, struct stat *st)
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

int fkv_open_locked(const char *path, fkv_create_mode create, uint64_t timeout_ms, int *out_fd)
{
    /* In microseconds: whole milliseconds would let a wait end up to 1 ms
     * short of its timeout (found by test_lock_timeout_gives_up). */
    uint64_t start = fkv_monotonic_us();
    for (;;) {
        int fd;
        struct stat st;
        int rc = open_regular(path, create, &fd, &st);
        if (rc != FKV_OK)
            return rc;
        while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno == EINTR)
                continue;
            if (errno != EWOULDBLOCK) {
                rc = fkv_io_error();
                close(fd);
                return rc;
            }
            if (fkv_monotonic_us() - start >= timeout_ms * 1000u) {
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
        fkv_close_locked(fd);
    }
}

void fkv_close_locked(int fd)
{
    /* Explicit unlock: a forked child may still hold a copy of the fd. */
    flock(fd, LOCK_UN);
    close(fd);
}

/* ---- shared descriptor ---------------------------------------------------- */

fkv_file *fkv_file_wrap(int fd)
{
    fkv_file *f = (fkv_file *)malloc(sizeof *f);
    if (f) {
        f->fd = fd;
        f->refs = 1;
    }
    return f;
}

void fkv_file_unpin(fkv_file *f)
{
    if (__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        close(f->fd);
        free(f);
    }
}

void fkv_file_release(fkv_file *f)
{
    flock(f->fd, LOCK_UN);
    fkv_file_unpin(f);
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
    if (flock(t->fd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK ? FKV_ELOCKED : fkv_io_error();
    return FKV_OK;
}

int fkv_temp_install(fkv_tempfile *t, const char *store_path)
{
    if (rename(t->path, store_path) != 0)
        return fkv_io_error();
    free(t->path);
    t->path = NULL;
    /* The rename is done: from here on the new file is the store. A failed
     * directory sync only weakens the rename against power loss. */
    (void)sync_dir_of(store_path);
    return FKV_OK;
}

void fkv_temp_discard(fkv_tempfile *t)
{
    if (t->fd >= 0 && t->path) /* not installed: nobody else may see it */
        unlink(t->path);
    if (t->fd >= 0)
        fkv_close_locked(t->fd);
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
    w->buf = (uint8_t *)malloc(FKV_SCAN_BUF);
    return w->buf ? FKV_OK : FKV_ENOMEM;
}

int fkv_bufwriter_add(fkv_bufwriter *w, const void *bytes, size_t n)
{
    if (w->len + n > FKV_SCAN_BUF) {
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
    w->buf = (uint8_t *)malloc(FKV_SCAN_BUF);
    return w->buf ? FKV_OK : FKV_ENOMEM;
}

void fkv_window_free(fkv_window *w)
{
    free(w->buf);
    w->buf = NULL;
}

int fkv_window_cover(fkv_window *w, uint64_t off, size_t n)
{
    if (fkv_window_holds(w, off, n))
        return FKV_OK;
    size_t want = FKV_SCAN_BUF;
    if (off + want > w->limit)
        want = (size_t)(w->limit - off);
    int rc = fkv_read_at(w->fd, w->buf, want, off, &w->len, FKV_MAY_WAIT);
    w->start = off;
    if (rc != FKV_OK) {
        w->len = 0;
        return rc;
    }
    return w->len >= n ? FKV_OK : FKV_ENOTFOUND;
}
