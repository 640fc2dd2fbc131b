/*
 * file_lock_win32.c - the store's lock and the replace step on Windows.
 *
 * Windows refuses to rename a file over one that is open (Wine too; only
 * Windows 10 1709+ with POSIX semantics on NTFS allows it), and the store's
 * data file is open while it compacts. An open file may itself be renamed,
 * though (it is opened with FILE_SHARE_DELETE), so the replace step moves
 * the old file aside, renames the new one into place and deletes the old
 * one (gone once its last handle closes); the new file is first given a
 * name that says it is whole, so an open after a kill between the renames
 * puts it in place (fkv_replace). For that moment the path names no file,
 * so the lock cannot live on the data file:
 * it is LockFileEx on a sidecar, path + ".lock", which is never replaced and
 * is left in place at close (deleting it could let two openers lock two
 * different files). Every opener takes the sidecar's lock before it touches
 * the data file.
 */
#include "platform.h" /* first: sets the feature macros */

#if defined(_WIN32)

#include "file_io.h"
#include "clock.h"
#include "status.h"

#include <stdio.h>

#define LOCK_SUFFIX ".lock"
#define ASIDE_SUFFIX ".replaced"
#define INCOMING_SUFFIX ".incoming" /* a whole new file, waiting to take the path */
#define ASIDE_NAMES 10 /* .replaced, .replaced-1 .. -9: one may still be open */

static char *aside_name(const char *path, int i)
{
    char suffix[32];
    if (i == 0)
        snprintf(suffix, sizeof suffix, "%s", ASIDE_SUFFIX);
    else
        snprintf(suffix, sizeof suffix, "%s-%d", ASIDE_SUFFIX, i);
    return fkv_path_with_suffix(path, suffix);
}

/* Old files moved aside by a replace whose handles were still open then. */
static void remove_asides(const char *path)
{
    for (int i = 0; i < ASIDE_NAMES; i++) {
        char *p = aside_name(path, i);
        if (p)
            unlink(p);
        free(p);
    }
}

/* A whole new file left by a replace that was stopped (errno kept). */
static int incoming_exists(const char *path)
{
    int saved = errno;
    char *incoming = fkv_path_with_suffix(path, INCOMING_SUFFIX);
    struct stat st;
    int there = incoming && stat(incoming, &st) == 0;
    free(incoming);
    errno = saved;
    return there;
}

/* A file that is there and surely not a store is refused before its
 * sidecar is made: verify, repair or an open of some other file leave
 * nothing beside it. Reading its first bytes needs no lock. */
static int refuse_other_file(const char *path, const struct stat *st)
{
    uint8_t head[8];
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return FKV_OK; /* the open under the lock says why */
    int rc = fkv_read_at(fd, head, sizeof head, 0, &got, FKV_MAY_WAIT);
    close(fd);
    if (rc == FKV_OK && !fkv_file_may_be_store(head, got, (uint64_t)st->st_size))
        return FKV_ENOTSTORE;
    return FKV_OK;
}

/* The sidecar's descriptor, locked; or a negative status. */
static int take_lock(const char *path, uint64_t timeout_ms)
{
    char *lock_path = fkv_path_with_suffix(path, LOCK_SUFFIX);
    if (!lock_path)
        return FKV_ENOMEM;
    int fd = open(lock_path, O_RDWR | O_CREAT, 0644);
    free(lock_path);
    if (fd < 0)
        return errno == EISDIR ? FKV_EISDIR : fkv_io_error();
    int rc = fkv_lock_or_close(fd, fkv_monotonic_us(), timeout_ms);
    return rc == FKV_OK ? fd : rc;
}

int fkv_open_locked(const char *path, fkv_create_mode create, uint64_t timeout_ms, int *out_fd,
                    int *out_lock_fd)
{
    /* Refuse a directory, or a store that is not there, before a sidecar
     * is made beside it. */
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return S_ISDIR(st.st_mode) ? FKV_EISDIR : FKV_ENOTSTORE;
        int rc = refuse_other_file(path, &st);
        if (rc != FKV_OK)
            return rc;
    } else if (create == FKV_OPEN_EXISTING && !incoming_exists(path)) {
        return fkv_io_error();
    }
    int lock_fd = take_lock(path, timeout_ms);
    if (lock_fd < 0)
        return lock_fd;
    fkv_replace_recover(path); /* we hold the lock: nobody else replaces the store */
    int fd = -1;
    int rc = fkv_open_regular(path, create, &fd, &st);
    if (rc != FKV_OK) {
        fkv_unlock(-1, lock_fd);
        return rc;
    }
    *out_fd = fd;
    *out_lock_fd = lock_fd;
    return FKV_OK;
}

void fkv_unlock(int fd, int lock_fd)
{
    (void)fd;
    if (lock_fd >= 0) {
        flock(lock_fd, LOCK_UN);
        close(lock_fd);
    }
}

void fkv_close_locked(int fd, int lock_fd)
{
    if (fd >= 0)
        close(fd);
    fkv_unlock(fd, lock_fd);
}

int fkv_lock_new_file(int fd)
{
    (void)fd; /* the sidecar's lock covers the path, whichever file it names */
    return FKV_OK;
}

/* Where a rename cannot replace an open file, the replace takes four steps,
 * each one rename or delete, and leaves at every instant what the next
 * open needs to find a whole store at the path (fkv_replace_recover):
 *   1. from -> to.incoming  the new file is whole (flushed by the caller):
 *                           its name says so
 *   2. to -> to.replaced    the old file aside; the path names no file
 *   3. .incoming -> to      the new file in place
 *   4. delete .replaced     gone once its last handle closes
 * A kill before 2 leaves the old file at the path (the .incoming is junk);
 * between 2 and 3 no file but a whole .incoming, which open renames into
 * place; after 3 the new file (the .replaced is junk). */
int fkv_replace(const char *from, const char *to)
{
    fkv_replace_reached(1);
    if (rename(from, to) == 0) { /* to was not open (or Windows renames POSIX-style) */
        fkv_replace_reached(fkv_replace_steps());
        return FKV_OK;
    }
    if (errno != EACCES && errno != EBUSY && errno != EEXIST)
        return fkv_io_error();
    char *incoming = fkv_path_with_suffix(to, INCOMING_SUFFIX);
    if (!incoming)
        return FKV_ENOMEM;
    if (rename(from, incoming) != 0) {
        free(incoming);
        return fkv_io_error();
    }
    fkv_replace_reached(2);
    char *aside = NULL;
    for (int i = 0; i < ASIDE_NAMES && !aside; i++) {
        char *p = aside_name(to, i);
        if (!p)
            break;
        unlink(p); /* a leftover, or one still open: then its name stays taken */
        if (rename(to, p) == 0)
            aside = p;
        else
            free(p);
    }
    int rc = FKV_OK;
    if (!aside) {
        rc = errno == ENOMEM ? FKV_ENOMEM : fkv_io_error();
        (void)rename(incoming, from); /* the caller discards it under its own name */
    } else {
        fkv_replace_reached(3);
        if (rename(incoming, to) != 0) {
            rc = fkv_io_error();
            (void)rename(aside, to); /* put the old file back */
            (void)rename(incoming, from);
        } else {
            fkv_replace_reached(4);
            unlink(aside);
            fkv_replace_reached(5);
        }
    }
    free(aside);
    free(incoming);
    return rc;
}

int fkv_replace_steps(void) { return 5; }

void fkv_replace_recover(const char *path)
{
    char *incoming = fkv_path_with_suffix(path, INCOMING_SUFFIX);
    if (incoming) {
        struct stat st;
        if (stat(path, &st) != 0 && errno == ENOENT)
            (void)rename(incoming, path); /* stopped between steps 2 and 3 */
        unlink(incoming); /* stopped before step 2: the old file is in place */
        free(incoming);
    }
    remove_asides(path);
}

int fkv_install_new(const char *from, const char *to)
{
    /* A hard link fails on a name that is taken (NTFS journals it). */
    if (link(from, to) != 0) {
        if (errno == EEXIST)
            return FKV_EPATHEXISTS;
        struct stat st; /* FAT and exFAT have no hard links */
        if (stat(to, &st) == 0)
            return FKV_EPATHEXISTS;
        if (rename(from, to) != 0)
            return fkv_io_error();
        return FKV_OK;
    }
    unlink(from);
    return FKV_OK;
}

#endif /* _WIN32 */
