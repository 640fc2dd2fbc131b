/* append.c - records appended through the file's writable mapping, or by
 * pwrite (see append.h). */
#include "append.h"
#include "file_map.h"
#include "status.h"

#include <errno.h>

#if defined(__linux__)
#include <fcntl.h>
#include <sys/resource.h>
#define APPEND_MAPPED 1 /* fallocate makes the room */
#else
#define APPEND_MAPPED 0
#endif

/* Larger records go by pwrite: the call's cost is spread over them. */
#define APPEND_MAPPED_MAX 4096u

/* The pages written are let go once this many bytes have been. */
#define APPEND_LET_GO (1u << 20)

/* 1 if f has its writable mapping, opening it at the first append. */
static int wmap_ready(fkv_file *f)
{
    if (FKV_LIKELY(f->wmap != NULL))
        return 1;
    if (f->wmap_tried)
        return 0;
    f->wmap_tried = 1;
#if APPEND_MAPPED
    /* Under a file size limit, room ahead could pass it where the write
     * itself would not (and send SIGXFSZ): such a process uses pwrite. */
    struct rlimit lim;
    if (getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur == RLIM_INFINITY)
        f->wmap = fkv_map_open_writable(f->fd);
#endif
    return f->wmap != NULL;
}

/* Allocate the file up to APPEND_ROOM past end (at most to cap), which
 * must take it to end + len at least: 1 when done, 0 to use pwrite. */
static int make_room(fkv_file *f, uint64_t end, size_t len, uint64_t cap)
{
#if APPEND_MAPPED
    uint64_t want = end + APPEND_ROOM < cap ? end + APPEND_ROOM : cap;
    if (want < end + len)
        return 0;
    int rc;
    while ((rc = fallocate(f->fd, 0, (off_t)end, (off_t)(want - end))) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
        /* A file system that cannot allocate ahead never will: pwrite from
         * now on. Any other failure (disk full) is pwrite's to report. */
        if (errno == EOPNOTSUPP || errno == ENOSYS) {
            fkv_map_close(f->wmap);
            f->wmap = NULL;
        }
        return 0;
    }
    f->room_end = want;
    return 1;
#else
    (void)f, (void)end, (void)len, (void)cap;
    return 0;
#endif
}

int fkv_append(fkv_file *f, const uint8_t *rec, size_t len, uint64_t end, uint64_t cap,
               int mapped)
{
    if (mapped && len <= APPEND_MAPPED_MAX && wmap_ready(f) &&
        (end + len <= f->room_end || make_room(f, end, len, cap))) {
        if (FKV_LIKELY(fkv_map_write(f->wmap, end, rec, len) == FKV_OK)) {
            if (end + len - f->let_go >= APPEND_LET_GO)
                f->let_go = fkv_map_let_go(f->wmap, f->let_go, end + len);
            return FKV_OK;
        }
        /* A fault: the file is shorter than the room made (cut behind the
         * store's back). pwrite writes the record and finds out. */
        f->room_end = 0;
    }
    int rc = fkv_write_at(f->fd, rec, len, end);
    if (rc != FKV_OK) {
        int saved = fkv_last_errno();
        while (ftruncate(f->fd, (off_t)end) != 0 && errno == EINTR) {
        }
        f->room_end = 0;
        fkv_set_errno(saved);
    }
    return rc;
}

void fkv_append_cut_room(fkv_file *f, uint64_t end)
{
    if (f->room_end <= end)
        return;
    while (ftruncate(f->fd, (off_t)end) != 0 && errno == EINTR) {
    }
    f->room_end = 0;
}
