/*
 * file_lock_posix.c - the store's lock and the replace step on POSIX.
 *
 * The lock is flock(LOCK_EX | LOCK_NB) on the data file itself (store.h
 * says why flock). A file that replaces the store (compaction, repair) is
 * locked before it is renamed over the path, so the lock passes to it with
 * no gap in which another opener could get in.
 */
#include "platform.h" /* first: sets the feature macros */

#if !defined(_WIN32)

#include "file_io.h"
#include "clock.h"
#include "status.h"

#include <stdio.h> /* rename */

int fkv_open_locked(const char *path, fkv_create_mode create, uint64_t timeout_ms, int *out_fd,
                    int *out_lock_fd)
{
    uint64_t start = fkv_monotonic_us();
    *out_lock_fd = -1; /* the lock is on the data file's own descriptor */
    for (;;) {
        int fd = -1;
        struct stat st;
        int rc = fkv_open_regular(path, create, &fd, &st);
        if (rc != FKV_OK)
            return rc;
        if ((rc = fkv_lock_or_close(fd, start, timeout_ms)) != FKV_OK)
            return rc;
        /* A compaction by the previous holder renames a new file over the
         * path; a lock won on the old, unlinked file guards nothing. */
        struct stat now_at_path;
        if (stat(path, &now_at_path) == 0 && now_at_path.st_ino == st.st_ino &&
            now_at_path.st_dev == st.st_dev) {
            *out_fd = fd;
            return FKV_OK;
        }
        fkv_close_locked(fd, -1);
    }
}

void fkv_unlock(int fd, int lock_fd)
{
    (void)lock_fd;
    flock(fd, LOCK_UN);
}

void fkv_close_locked(int fd, int lock_fd)
{
    /* Explicit unlock: a forked child may still hold a copy of the fd. */
    fkv_unlock(fd, lock_fd);
    close(fd);
}

int fkv_lock_new_file(int fd)
{
    if (flock(fd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK ? FKV_ELOCKED : fkv_io_error();
    return FKV_OK;
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

/* One rename replaces the file, open or not: the path names the old file
 * until it names the new one. */
int fkv_replace(const char *from, const char *to)
{
    fkv_replace_reached(1);
    if (rename(from, to) != 0)
        return fkv_io_error();
    fkv_replace_reached(2);
    /* The rename is done: from here on the new file is the store. A failed
     * directory sync only weakens the rename against power loss. */
    (void)sync_dir_of(to);
    fkv_replace_reached(3);
    return FKV_OK;
}

int fkv_replace_steps(void) { return 3; }

void fkv_replace_recover(const char *path) { (void)path; }

int fkv_install_new(const char *from, const char *to)
{
    /* A link fails on a name that is taken, where a rename would replace it. */
    if (link(from, to) != 0) {
        if (errno == EEXIST)
            return FKV_EPATHEXISTS;
        if (errno != EPERM && errno != ENOTSUP && errno != ENOSYS && errno != EOPNOTSUPP)
            return fkv_io_error();
        /* a file system without hard links: check, then rename (a file
         * made in the moment between the two would be replaced) */
        struct stat st;
        if (lstat(to, &st) == 0)
            return FKV_EPATHEXISTS;
        return fkv_replace(from, to);
    }
    unlink(from);
    (void)sync_dir_of(to);
    return FKV_OK;
}

#endif /* !_WIN32 */
