/*
 * core_test.c - the C core alone, no Python: the cases whose code differs
 * between POSIX and Win32 (files, the lock, rename, the clock), so the
 * Windows code path runs for real (under Wine here, natively on Windows).
 *
 *     core_test DIR         run every case in DIR (an existing directory)
 *     core_test open PATH   open PATH and exit: 0 opened, 3 refused (locked)
 *
 * Built and run by tests/core/run.sh, which .ci/run calls.
 */
#include "platform.h" /* first: sets the feature macros */
#include "clock.h"
#include "status.h"
#include "store.h"
#include "file_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static const char *self;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: %s: failed: %s\n", __FILE__, __LINE__, __func__, #cond); \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

#define CHECK_RC(expr, want)                                                             \
    do {                                                                                 \
        int rc_ = (expr);                                                                \
        if (rc_ != (want)) {                                                             \
            fprintf(stderr, "%s:%d: %s: %s gave %s (errno %d), wanted %s\n", __FILE__,   \
                    __LINE__, __func__, #expr, fkv_strerror(rc_), fkv_last_errno(),      \
                    fkv_strerror(want));                                                 \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

static char dir[1024];

static const char *path_of(const char *name)
{
    static char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static fkv_options options(uint64_t cap)
{
    fkv_options o;
    memset(&o, 0, sizeof o);
    o.max_file_size = cap;
    o.durability = FKV_DURABLE_PROCESS;
    return o;
}

static fkv_store *open_ok(const char *path, uint64_t cap)
{
    fkv_options o = options(cap);
    fkv_store *s = NULL;
    CHECK_RC(fkv_open(path, &o, &s), FKV_OK);
    return s;
}

static void shut(fkv_store *s)
{
    if (s) {
        CHECK_RC(fkv_close(s), FKV_OK);
        fkv_free(s);
    }
}

static int put_str(fkv_store *s, const char *k, const char *v, uint64_t ttl, int create)
{
    return create ? fkv_create(s, k, strlen(k), (const uint8_t *)v, strlen(v), ttl)
                  : fkv_put(s, k, strlen(k), (const uint8_t *)v, strlen(v), ttl);
}

/* FKV_OK and the value equals want, or the read's status. */
static int read_is(fkv_store *s, const char *k, const char *want)
{
    static uint8_t buf[FKV_REC_MAX];
    size_t voff = 0, vlen = 0;
    int rc = fkv_read(s, k, strlen(k), buf, &voff, &vlen);
    if (rc == FKV_OK && (vlen != strlen(want) || memcmp(buf + voff, want, vlen) != 0)) {
        fprintf(stderr, "read %s: got %.*s, wanted %s\n", k, (int)vlen, buf + voff, want);
        return -100;
    }
    return rc;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Keys key0..key<n-1> holding {"n":I} (padded to pad bytes if pad), put
 * 50 to a call: Wine makes each system call slow. */
static void put_numbered(fkv_store *s, int n, size_t pad)
{
    static char keys[50][32], vals[50][1000];
    fkv_put_item items[50];
    for (int i = 0; i < n; i += 50) {
        for (int j = 0; j < 50; j++) {
            items[j].key = keys[j];
            items[j].klen = (size_t)snprintf(keys[j], sizeof keys[j], "key%d", i + j);
            int len = snprintf(vals[j], sizeof vals[j], pad ? "{\"n\":%d,\"pad\":\"" : "{\"n\":%d}",
                               i + j);
            if (pad) { /* {"n":I,"pad":"vvv...v"} */
                memset(vals[j] + len, 'v', pad - 2 - (size_t)len);
                memcpy(vals[j] + pad - 2, "\"}", 2);
                len = (int)pad;
            }
            items[j].val = (const uint8_t *)vals[j];
            items[j].vlen = (size_t)len;
        }
        size_t at = 0, done = 0;
        while (at < 50 && fkv_put_batch(s, items + at, 50 - at, &done) == FKV_OK && done > 0)
            at += done;
        CHECK(at == 50);
    }
}

/* ---- the cases ---------------------------------------------------------------- */

static void create_read_delete_reopen(void)
{
    const char *p = path_of("basic.fkv");
    fkv_store *s = open_ok(p, FKV_MAX_FILE_SIZE);
    CHECK_RC(put_str(s, "a", "{\"v\":1}", 0, 1), FKV_OK);
    CHECK_RC(put_str(s, "a", "{\"v\":2}", 0, 1), FKV_EEXISTS);
    CHECK_RC(put_str(s, "b", "{\"v\":3}", 0, 1), FKV_OK);
    CHECK_RC(put_str(s, "b", "{\"v\":4}", 0, 0), FKV_OK);
    CHECK_RC(read_is(s, "a", "{\"v\":1}"), FKV_OK);
    CHECK_RC(read_is(s, "b", "{\"v\":4}"), FKV_OK);
    CHECK_RC(fkv_delete(s, "a", 1), FKV_OK);
    CHECK_RC(read_is(s, "a", ""), FKV_ENOTFOUND);
    char key[40], val[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        snprintf(val, sizeof val, "{\"i\":%d}", i);
        CHECK_RC(put_str(s, key, val, 0, 1), FKV_OK);
    }
    shut(s);
    /* the clean close wrote a snapshot: the reopen loads it */
    s = open_ok(p, FKV_MAX_FILE_SIZE);
    fkv_stats st;
    CHECK_RC(fkv_get_stats(s, &st), FKV_OK);
    CHECK(st.live_keys == 5001);
    CHECK(strcmp(fkv_snapshot_status_name(st.snapshot_status), "loaded") == 0);
    CHECK_RC(read_is(s, "b", "{\"v\":4}"), FKV_OK);
    CHECK_RC(read_is(s, "key:4321", "{\"i\":4321}"), FKV_OK);
    CHECK_RC(read_is(s, "a", ""), FKV_ENOTFOUND);
    shut(s);
}

static void ttl_on_a_pinned_clock(void)
{
    const char *p = path_of("ttl.fkv");
    uint64_t t0 = 1900000000000ull;
    fkv_clock_set(t0);
    fkv_store *s = open_ok(p, FKV_MAX_FILE_SIZE);
    CHECK_RC(put_str(s, "short", "{}", 10, 1), FKV_OK);
    CHECK_RC(put_str(s, "long", "{}", 1000, 1), FKV_OK);
    fkv_clock_set(t0 + 9999);
    CHECK_RC(read_is(s, "short", "{}"), FKV_OK);
    fkv_clock_set(t0 + 10000);
    CHECK_RC(read_is(s, "short", ""), FKV_EEXPIRED);
    CHECK_RC(put_str(s, "short", "{\"again\":1}", 0, 1), FKV_OK); /* an expired key is free */
    CHECK_RC(fkv_touch(s, "long", 4, 1), FKV_OK);                  /* now + 1 s */
    fkv_clock_set(t0 + 11000);
    CHECK_RC(read_is(s, "long", ""), FKV_EEXPIRED);
    shut(s);
    s = open_ok(p, FKV_MAX_FILE_SIZE); /* deadlines survive a reopen */
    CHECK_RC(read_is(s, "long", ""), FKV_EEXPIRED);
    CHECK_RC(read_is(s, "short", "{\"again\":1}"), FKV_OK);
    shut(s);
    fkv_clock_set(0);
}

static void torn_tail_is_dropped(void)
{
    const char *p = path_of("torn.fkv");
    fkv_store *s = open_ok(p, FKV_MAX_FILE_SIZE);
    CHECK_RC(put_str(s, "kept", "{\"ok\":true}", 0, 1), FKV_OK);
    CHECK_RC(put_str(s, "torn", "{\"half\":\"of this record is cut off\"}", 0, 1), FKV_OK);
    shut(s);
    /* cut the last record in half, as a crash mid-append leaves it, and
     * drop the snapshot, which covers the whole record */
    uint64_t size = file_size(p);
    int fd = open(p, O_RDWR);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, (off_t)(size - 20)) == 0);
    close(fd);
    char idx[1300];
    snprintf(idx, sizeof idx, "%s.idx", p);
    unlink(idx);
    s = open_ok(p, FKV_MAX_FILE_SIZE);
    fkv_stats st;
    CHECK_RC(fkv_get_stats(s, &st), FKV_OK);
    CHECK(st.torn_bytes_dropped > 0 && st.live_keys == 1);
    CHECK_RC(read_is(s, "kept", "{\"ok\":true}"), FKV_OK);
    CHECK_RC(read_is(s, "torn", ""), FKV_ENOTFOUND);
    CHECK_RC(put_str(s, "after", "{}", 0, 1), FKV_OK);
    shut(s);
    CHECK(file_size(p) < size);
}

/* Exit status of `core_test open PATH` run as another process. */
static int other_process_opens(const char *path)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "\"%s\" open \"%s\"", self, path);
#if defined(_WIN32)
    /* cmd.exe strips the outer quotes of a line that starts with one */
    char wrapped[4200];
    snprintf(wrapped, sizeof wrapped, "\"%s\"", cmd);
    int status = system(wrapped);
    return status;
#else
    int status = system(cmd);
    return status >= 0 && (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1;
#endif
}

static void one_opener_at_a_time(void)
{
    const char *p = path_of("lock.fkv");
    fkv_store *s = open_ok(p, FKV_MAX_FILE_SIZE);
    fkv_options o = options(FKV_MAX_FILE_SIZE);
    fkv_store *second = NULL;
    CHECK_RC(fkv_open(p, &o, &second), FKV_ELOCKED); /* same process, second handle */
    CHECK(other_process_opens(p) == 3);               /* another process */
    o.lock_timeout_ms = 50;                            /* a timed wait gives up too */
    CHECK_RC(fkv_open(p, &o, &second), FKV_ELOCKED);
    CHECK_RC(put_str(s, "still", "{}", 0, 1), FKV_OK); /* the lock hides no data */
    shut(s);
    CHECK(other_process_opens(p) == 0); /* free once closed */
    s = open_ok(p, FKV_MAX_FILE_SIZE);
    CHECK_RC(read_is(s, "still", "{}"), FKV_OK);
    shut(s);
}

static void compaction_replaces_the_locked_file(void)
{
    const char *p = path_of("compact.fkv");
    fkv_store *s = open_ok(p, FKV_MAX_FILE_SIZE);
    char key[40], val[200];
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < 200; i++) {
            snprintf(key, sizeof key, "k%d", i);
            snprintf(val, sizeof val, "{\"round\":%d,\"pad\":\"%0100d\"}", round, i);
            CHECK_RC(put_str(s, key, val, 0, 0), FKV_OK);
        }
    CHECK_RC(fkv_compact(s, NULL), FKV_OK);
    fkv_stats st;
    CHECK_RC(fkv_get_stats(s, &st), FKV_OK);
    CHECK(st.dead_bytes == 0 && st.live_keys == 200 && st.file_bytes == file_size(p));
    /* the new file is the store now, and it is locked */
    CHECK(other_process_opens(p) == 3);
    fkv_options o = options(FKV_MAX_FILE_SIZE);
    fkv_store *second = NULL;
    CHECK_RC(fkv_open(p, &o, &second), FKV_ELOCKED);
    snprintf(val, sizeof val, "{\"round\":%d,\"pad\":\"%0100d\"}", 19, 123);
    CHECK_RC(read_is(s, "k123", val), FKV_OK);
    CHECK_RC(put_str(s, "new", "{}", 0, 1), FKV_OK);
    shut(s);
    s = open_ok(p, FKV_MAX_FILE_SIZE);
    CHECK_RC(read_is(s, "k123", val), FKV_OK);
    CHECK_RC(read_is(s, "new", "{}"), FKV_OK);
    shut(s);
}

static void the_cap_holds(void)
{
    const char *p = path_of("cap.fkv");
    fkv_store *s = open_ok(p, 16384);
    char key[40], val[200];
    int n = 0, rc = FKV_OK;
    memset(val, 'x', 150);
    val[150] = '\0';
    while (rc == FKV_OK && n < 1000) {
        snprintf(key, sizeof key, "cap:%d", n);
        rc = put_str(s, key, val, 0, 1);
        n += rc == FKV_OK;
    }
    CHECK_RC(rc, FKV_EFULL);
    CHECK(n > 50 && file_size(p) <= 16384);
    CHECK_RC(read_is(s, "cap:0", val), FKV_OK); /* the refused write changed nothing */
    for (int i = 0; i < n; i += 2) {
        snprintf(key, sizeof key, "cap:%d", i);
        CHECK_RC(fkv_delete(s, key, strlen(key)), FKV_OK);
    }
    /* room again: the write compacts the deleted records away first */
    CHECK_RC(put_str(s, "room", val, 0, 1), FKV_OK);
    CHECK(file_size(p) <= 16384);
    CHECK_RC(read_is(s, "cap:1", val), FKV_OK);
    shut(s);
}

static void a_path_beyond_ascii(void)
{
    /* UTF-8 in the path (on Windows: turned into UTF-16 for CreateFileW) */
    const char *p = path_of("\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87-caf\xc3\xa9-\xe2\x9c\x93.fkv");
    fkv_store *s = open_ok(p, FKV_MAX_FILE_SIZE);
    CHECK_RC(put_str(s, "k", "{\"path\":\"non-ASCII\"}", 0, 1), FKV_OK);
    CHECK_RC(fkv_compact(s, NULL), FKV_OK); /* the replace step, on such a name */
    shut(s);
    s = open_ok(p, FKV_MAX_FILE_SIZE);
    CHECK_RC(read_is(s, "k", "{\"path\":\"non-ASCII\"}"), FKV_OK);
    shut(s);
    CHECK(file_size(p) > 0);
}

static void a_batch_of_puts(void)
{
    const char *p = path_of("batch.fkv");
    fkv_store *s = open_ok(p, FKV_MAX_FILE_SIZE);
    const char *keys[] = {"a", "b", "c", "a", "d"};
    const char *vals[] = {"{\"n\":1}", "{\"n\":2}", "{\"n\":3}", "{\"n\":4}", "{\"n\":5}"};
    fkv_put_item items[5];
    for (int i = 0; i < 5; i++) {
        items[i].key = keys[i];
        items[i].klen = strlen(keys[i]);
        items[i].val = (const uint8_t *)vals[i];
        items[i].vlen = strlen(vals[i]);
    }
    size_t done = 0, at = 0;
    while (at < 5) { /* as a server would: the rest after each batch */
        CHECK_RC(fkv_put_batch(s, items + at, 5 - at, &done), FKV_OK);
        CHECK(done > 0);
        at += done;
    }
    CHECK_RC(read_is(s, "a", "{\"n\":4}"), FKV_OK);
    CHECK_RC(read_is(s, "d", "{\"n\":5}"), FKV_OK);
    shut(s);
    s = open_ok(p, FKV_MAX_FILE_SIZE);
    CHECK_RC(read_is(s, "a", "{\"n\":4}"), FKV_OK);
    CHECK_RC(read_is(s, "c", "{\"n\":3}"), FKV_OK);
    shut(s);
}

/* A writer's lookup reads the record at an index slot (from the file's
 * mapping on POSIX). With the file cut short behind the store's back, that
 * read fails with an error the caller can report: the process lives on. */
static void a_file_cut_short_while_open(void)
{
    const char *p = path_of("cut.fkv");
    fkv_store *s = open_ok(p, FKV_MAX_FILE_SIZE);
    char key[32], val[300];
    for (int i = 0; i < 200; i++) { /* about 60 KiB: many pages */
        snprintf(key, sizeof key, "k%d", i);
        snprintf(val, sizeof val, "{\"i\":%d,\"pad\":\"%0250d\"}", i, 0);
        CHECK_RC(put_str(s, key, val, 0, 1), FKV_OK);
    }
    int fd = open(p, O_RDWR);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, 8192) == 0);
    close(fd);
#if defined(_WIN32)
    CHECK_RC(put_str(s, "k199", "{}", 0, 0), FKV_ECORRUPT); /* a short pread */
#else
    CHECK_RC(put_str(s, "k199", "{}", 0, 0), FKV_EIO); /* a fault in the mapping */
#endif
    CHECK_RC(put_str(s, "k1", "{\"still\":\"here\"}", 0, 0), FKV_OK);
    CHECK_RC(read_is(s, "k1", "{\"still\":\"here\"}"), FKV_OK);
    fkv_close(s); /* its status is not the point: the file was damaged */
    fkv_free(s);
}

#if !defined(_WIN32)
/* What a guarded walk of a mapping reads: one good byte by a guarded copy
 * (which must hand the guard back), then one past where the file now ends. */
typedef struct guarded_read {
    const uint8_t *map;
    uint64_t good, gone;
    int copied;
} guarded_read;

static int read_past_the_end(void *arg)
{
    guarded_read *g = (guarded_read *)arg;
    uint8_t b = 0;
    g->copied = fkv_map_copy(&b, g->map, g->good, 1) == FKV_OK;
    volatile uint8_t past = g->map[g->gone]; /* faults: the page is gone */
    (void)past;
    return FKV_OK;
}
#endif

/* A walk reading a mapping directly (the log past a snapshot, at open)
 * ends with FKV_EIO when the file was cut short under it, and the process
 * goes on, its guarded copies working as before. */
static void a_fault_inside_a_guarded_walk(void)
{
    const char *p = path_of("guarded.bin");
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    static uint8_t bytes[65536];
    memset(bytes, 7, sizeof bytes);
    CHECK(write(fd, bytes, sizeof bytes) == (ssize_t)sizeof bytes);
    const uint8_t *map = fkv_map_open(fd);
#if defined(_WIN32)
    CHECK(map == NULL); /* nothing is mapped there: reads use pread */
#else
    CHECK(map != NULL);
    if (map) {
        CHECK(ftruncate(fd, 4096) == 0);
        guarded_read g = {map, 100, 40000, 0};
        CHECK_RC(fkv_map_guarded(read_past_the_end, &g), FKV_EIO);
        CHECK(g.copied);
        uint8_t b = 0;
        CHECK_RC(fkv_map_copy(&b, map, 100, 1), FKV_OK);
        CHECK(b == 7);
        CHECK_RC(fkv_map_copy(&b, map, 50000, 1), FKV_EIO);
        fkv_map_close(map);
    }
#endif
    close(fd);
}

/* The snapshot's name for why a reopen of path did or did not use it. */
static const char *reopen_status(const char *path)
{
    fkv_store *s = open_ok(path, FKV_MAX_FILE_SIZE);
    fkv_stats st;
    CHECK_RC(fkv_get_stats(s, &st), FKV_OK);
    const char *name = fkv_snapshot_status_name(st.snapshot_status);
    char key[32], want[64];
    for (int i = 1; i < 150000; i += 9973) { /* a few keys, spread out */
        snprintf(key, sizeof key, "key%d", i);
        snprintf(want, sizeof want, "{\"n\":%d}", i);
        CHECK_RC(read_is(s, key, want), FKV_OK);
    }
    shut(s);
    return name;
}

/* A table of a megabyte and more is read by a helper thread ahead of the
 * checks (snapshot.c): its answers must be those of the plain read, for a
 * good snapshot and for one damaged late in the table or cut short. */
static void a_large_snapshot_read_ahead(void)
{
    const char *p = path_of("large.fkv");
    fkv_store *s = open_ok(p, FKV_MAX_FILE_SIZE);
    put_numbered(s, 150000, 0); /* a table of 2 MiB */
    shut(s);
    CHECK(strcmp(reopen_status(p), "loaded") == 0);
    char idx[1300];
    snprintf(idx, sizeof idx, "%s.idx", p);
    uint64_t size = file_size(idx);
    CHECK(size > 2000000);
    int fd = open(idx, O_RDWR);
    CHECK(fd >= 0);
    uint8_t byte = 0;
    CHECK(pread(fd, &byte, 1, (off_t)(size - 1000)) == 1);
    byte ^= 0x10;
    CHECK(pwrite(fd, &byte, 1, (off_t)(size - 1000)) == 1);
    close(fd);
    CHECK(strcmp(reopen_status(p), "loaded") != 0); /* refused, the log scanned */
    CHECK(strcmp(reopen_status(p), "loaded") == 0); /* that close wrote a new one */
    fd = open(idx, O_RDWR);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, (off_t)(size - 300000)) == 0);
    close(fd);
    CHECK(strcmp(reopen_status(p), "loaded") != 0);
}

/* Copy the file at from to to, as it is on disk now (the store stays open). */
static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    CHECK(in && out);
    static char buf[65536];
    size_t n;
    while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0)
        CHECK(fwrite(buf, 1, n, out) == n);
    if (in)
        fclose(in);
    if (out)
        fclose(out);
}

/* Writes past a quarter of the log (at least 4 MiB) since the last snapshot
 * start one that a thread saves (snapshot_background.c): it lands while the
 * store is open, and a copy of the files taken then, as a crash would leave
 * them, opens from it and scans only what came after it. */
static void a_snapshot_saved_in_the_background(void)
{
    char p[1200]; /* path_of's buffer is reused below */
    snprintf(p, sizeof p, "%s", path_of("background.fkv"));
    fkv_store *s = open_ok(p, FKV_MAX_FILE_SIZE);
    put_numbered(s, 6000, 900); /* 5.4 MB of log */
    fkv_stats st;
    for (int waited = 0; waited < 2000; waited++) { /* up to 20 s */
        CHECK_RC(fkv_get_stats(s, &st), FKV_OK);
        if (st.snapshots_written > 0)
            break;
        fkv_sleep_ms(10);
    }
    CHECK(st.snapshots_written == 1);
    char idx[1300], copy[1200], copy_idx[1300];
    snprintf(idx, sizeof idx, "%s.idx", p);
    snprintf(copy, sizeof copy, "%s", path_of("background-copy.fkv"));
    snprintf(copy_idx, sizeof copy_idx, "%s.idx", copy);
    copy_file(p, copy);
    copy_file(idx, copy_idx);
    shut(s);
    uint8_t header[48];
    FILE *f = fopen(copy_idx, "rb");
    CHECK(f && fread(header, 1, sizeof header, f) == sizeof header);
    if (f)
        fclose(f);
    uint64_t covered = 0;
    for (int i = 7; i >= 0; i--)
        covered = covered << 8 | header[40 + i];
    CHECK(covered >= 4u * 1024 * 1024);
    s = open_ok(copy, FKV_MAX_FILE_SIZE);
    CHECK_RC(fkv_get_stats(s, &st), FKV_OK);
    CHECK(strcmp(fkv_snapshot_status_name(st.snapshot_status), "loaded") == 0);
    CHECK(st.open_scanned_bytes == file_size(copy) - covered);
    uint8_t buf[FKV_REC_MAX];
    size_t voff = 0, vlen = 0;
    for (int i = 0; i < 6000; i += 997) {
        char key[32], want[32];
        snprintf(key, sizeof key, "key%d", i);
        int n = snprintf(want, sizeof want, "{\"n\":%d,", i);
        CHECK_RC(fkv_read(s, key, strlen(key), buf, &voff, &vlen), FKV_OK);
        CHECK(vlen == 900 && memcmp(buf + voff, want, (size_t)n) == 0);
    }
    shut(s);
}

/* After a clean reopen every append is noted, 512 to a frame, after the
 * snapshot's slots in its file (snapshot_hints.c): a copy of the files
 * taken while the store is open, as a crash leaves them, opens from the
 * snapshot, takes the records of the whole frames from the hints and scans
 * only the rest; close cuts the frames off again. */
static void hints_after_a_crash(void)
{
    char p[1200], copy[1200], from[1300], to[1300]; /* path_of's buffer is reused */
    snprintf(p, sizeof p, "%s", path_of("hinted.fkv"));
    snprintf(copy, sizeof copy, "%s", path_of("hinted-copy.fkv"));
    fkv_store *s = open_ok(p, FKV_MAX_FILE_SIZE);
    put_numbered(s, 20000, 0); /* a table of 65,536 slots */
    shut(s);
    snprintf(from, sizeof from, "%s.idx", p);
    uint64_t slots_end = file_size(from);
    s = open_ok(p, FKV_MAX_FILE_SIZE); /* the snapshot covers the whole log */
    static char keys[50][32], vals[50][32];
    fkv_put_item items[50];
    for (int i = 0; i < 1100; i += 50) { /* in batches: appends of many records */
        for (int j = 0; j < 50; j++) {
            items[j].key = keys[j];
            items[j].klen = (size_t)snprintf(keys[j], sizeof keys[j], "late%d", i + j);
            items[j].val = (const uint8_t *)vals[j];
            items[j].vlen = (size_t)snprintf(vals[j], sizeof vals[j], "{\"late\":%d}", i + j);
        }
        size_t at = 0, done = 0;
        while (at < 50 && fkv_put_batch(s, items + at, 50 - at, &done) == FKV_OK && done > 0)
            at += done;
        CHECK(at == 50);
    }
    const char *suffixes[] = {"", ".idx"};
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s%s", p, suffixes[i]);
        snprintf(to, sizeof to, "%s%s", copy, suffixes[i]);
        copy_file(from, to);
    }
    CHECK(file_size(to) == slots_end + 2 * (32 + 512 * 8)); /* two whole frames */
    shut(s);
    CHECK(file_size(from) == slots_end); /* saved over in place, the frames cut off */
    s = open_ok(copy, FKV_MAX_FILE_SIZE);
    fkv_stats st;
    CHECK_RC(fkv_get_stats(s, &st), FKV_OK);
    CHECK(strcmp(fkv_snapshot_status_name(st.snapshot_status), "loaded") == 0);
    CHECK(st.open_hinted_records == 1024);
    CHECK(st.open_scanned_bytes > 0 && st.open_scanned_bytes < 76 * 40);
    CHECK_RC(read_is(s, "late0", "{\"late\":0}"), FKV_OK);
    CHECK_RC(read_is(s, "late1023", "{\"late\":1023}"), FKV_OK);
    CHECK_RC(read_is(s, "late1099", "{\"late\":1099}"), FKV_OK);
    CHECK_RC(read_is(s, "key7", "{\"n\":7}"), FKV_OK);
    shut(s);
}

/* A backup while the store stays open: it opens (from its own snapshot) with
 * the store's keys, later writes to the store are not in it, and a second
 * backup to the same name is refused, the first left as it was. On the
 * Win32 path the copy goes through a buffer and the name through a hard
 * link made by CreateHardLinkW. */
static void a_backup_while_open(void)
{
    char p[1200], b[1200], idx[1300];
    snprintf(p, sizeof p, "%s", path_of("backed.fkv"));
    snprintf(b, sizeof b, "%s", path_of("backup.fkv"));
    fkv_store *s = open_ok(p, FKV_MAX_FILE_SIZE);
    put_numbered(s, 3000, 0);
    CHECK_RC(fkv_backup(s, b, NULL), FKV_OK);
    CHECK_RC(put_str(s, "after", "{\"late\":1}", 0, 1), FKV_OK);
    uint64_t size = file_size(b);
    CHECK_RC(fkv_backup(s, b, NULL), FKV_EPATHEXISTS);
    CHECK(file_size(b) == size);
    shut(s);
    s = open_ok(b, FKV_MAX_FILE_SIZE);
    fkv_stats st;
    CHECK_RC(fkv_get_stats(s, &st), FKV_OK);
    CHECK(strcmp(fkv_snapshot_status_name(st.snapshot_status), "loaded") == 0);
    CHECK(st.live_keys == 3000);
    CHECK_RC(read_is(s, "key7", "{\"n\":7}"), FKV_OK);
    CHECK_RC(read_is(s, "after", "{\"late\":1}"), FKV_ENOTFOUND);
    shut(s);
    snprintf(idx, sizeof idx, "%s.idx", b);
    CHECK(file_size(idx) > 0);
}

int main(int argc, char **argv)
{
    self = argv[0];
    if (argc == 3 && strcmp(argv[1], "open") == 0) {
        fkv_options o = options(FKV_MAX_FILE_SIZE);
        fkv_store *s = NULL;
        int rc = fkv_open(argv[2], &o, &s);
        if (rc == FKV_OK) {
            fkv_close(s);
            fkv_free(s);
            return 0;
        }
        return rc == FKV_ELOCKED ? 3 : 1;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR | open PATH\n", argv[0]);
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    struct {
        const char *name;
        void (*run)(void);
    } cases[] = {
        {"create, read, delete, reopen", create_read_delete_reopen},
        {"TTL on a pinned clock", ttl_on_a_pinned_clock},
        {"a torn tail is dropped", torn_tail_is_dropped},
        {"one opener at a time", one_opener_at_a_time},
        {"compaction replaces the locked file", compaction_replaces_the_locked_file},
        {"the file cap holds", the_cap_holds},
        {"a path beyond ASCII", a_path_beyond_ascii},
        {"a batch of puts", a_batch_of_puts},
        {"a file cut short while open", a_file_cut_short_while_open},
        {"a large snapshot, read ahead", a_large_snapshot_read_ahead},
        {"a snapshot saved in the background", a_snapshot_saved_in_the_background},
        {"a fault inside a guarded walk", a_fault_inside_a_guarded_walk},
        {"hints after a crash", hints_after_a_crash},
        {"a backup while the store is open", a_backup_while_open},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int before = failures;
        cases[i].run();
        printf("%s %s\n", failures == before ? "ok  " : "FAIL", cases[i].name);
    }
    printf("%s: %d failure%s\n", failures ? "FAILED" : "passed", failures,
           failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}
