# Declarations of the C core, header by header: only what _core.pyx calls.
# Every function runs without the GIL and never calls back into Python.
from libc.stdint cimport uint8_t, uint32_t, uint64_t


cdef extern from "status.h" nogil:
    enum:
        FKV_OK
        FKV_ENOTFOUND
        FKV_EEXPIRED
        FKV_EEXISTS
        FKV_EFULL
        FKV_ELOCKED
        FKV_ECLOSED
        FKV_EFORKED
        FKV_ECORRUPT
        FKV_ENOTSTORE
        FKV_EIO
        FKV_ENOMEM
        FKV_EKEY
        FKV_EVALUE
        FKV_ETTL
        FKV_EISDIR
        FKV_ECONFIG
        FKV_EFLUSH
        FKV_EAGAIN
        FKV_EPATHEXISTS
        FKV_ETXN
        FKV_EDUPLICATE
    const char *fkv_strerror(int status)
    int fkv_last_errno()
    uint64_t fkv_last_offset()


cdef extern from "record.h" nogil:
    enum:
        FKV_KEY_MAX_CHARS
        FKV_KEY_MAX_BYTES
        FKV_VALUE_MAX
        FKV_REC_MAX
        FKV_REC_HEADER_SIZE

    ctypedef struct fkv_rec_header:
        uint64_t deadline_ms

    int fkv_record_header_decode(const uint8_t *buf, fkv_rec_header *h)


cdef extern from "crc32c.h" nogil:
    uint32_t fkv_crc32c(uint32_t crc, const void *buf, size_t len)


cdef extern from "json_compact.h" nogil:
    int fkv_json_is_compact(const uint8_t *text, size_t len, size_t max_bytes)


cdef extern from "clock.h" nogil:
    uint64_t fkv_now_ms()
    void fkv_clock_set(uint64_t ms)


cdef extern from "store.h" nogil:
    const uint64_t FKV_MAX_FILE_SIZE
    const uint64_t FKV_MIN_FILE_SIZE
    const uint64_t FKV_TTL_MAX_S
    enum:
        FKV_DURABLE_PROCESS
        FKV_DURABLE_FSYNC

    ctypedef struct fkv_store:
        pass

    ctypedef struct fkv_options:
        uint64_t max_file_size
        int durability
        uint64_t lock_timeout_ms

    ctypedef struct fkv_stats:
        uint64_t live_keys
        uint64_t held_keys
        uint64_t file_bytes
        uint64_t live_bytes
        uint64_t dead_bytes
        uint64_t index_bytes
        uint64_t index_slots
        uint64_t max_file_size
        uint64_t torn_bytes_dropped
        uint64_t compactions
        uint64_t flushes
        int flush_errno
        int snapshot_status
        uint64_t open_scanned_bytes
        uint64_t open_hinted_records
        uint64_t snapshots_written
        uint64_t snapshot_table_bytes

    ctypedef struct fkv_verify_report:
        uint64_t file_bytes
        int header_ok
        uint64_t intact_records
        uint64_t puts
        uint64_t tombstones
        uint64_t groups
        uint64_t damaged_regions
        uint64_t damaged_bytes
        uint64_t first_damage_offset
        uint64_t torn_tail_bytes
        uint64_t live_keys
        uint64_t salvaged_keys

    ctypedef struct fkv_progress:
        uint64_t done
        uint64_t total

    const char *fkv_snapshot_status_name(int status)
    void fkv_progress_read(const fkv_progress *p, uint64_t *done, uint64_t *total)
    int fkv_verify(const char *path, fkv_verify_report *rep, fkv_progress *progress)
    int fkv_repair(const char *path, const char *backup_path, fkv_verify_report *rep,
                   fkv_progress *progress)
    int fkv_open(const char *path, const fkv_options *opt, fkv_store **out)
    int fkv_close(fkv_store *s)
    void fkv_free(fkv_store *s)
    int fkv_create(fkv_store *s, const char *key, size_t klen, const uint8_t *val,
                   size_t vlen, uint64_t ttl_s)
    int fkv_create_until(fkv_store *s, const char *key, size_t klen, const uint8_t *val,
                         size_t vlen, uint64_t deadline_ms)
    int fkv_put(fkv_store *s, const char *key, size_t klen, const uint8_t *val,
                size_t vlen, uint64_t ttl_s)
    int fkv_put_until(fkv_store *s, const char *key, size_t klen, const uint8_t *val,
                      size_t vlen, uint64_t deadline_ms)
    ctypedef struct fkv_put_item:
        const char *key
        size_t klen
        const uint8_t *val
        size_t vlen
    enum: FKV_BATCH_MAX
    int fkv_put_batch(fkv_store *s, const fkv_put_item *items, size_t n, size_t *done)

    ctypedef struct fkv_many:
        const char *key
        size_t klen
        int status
        size_t voff
        size_t vlen
        uint64_t at
    int fkv_read_many(fkv_store *s, fkv_many *k, size_t n, uint8_t *buf, size_t cap,
                      size_t *need)
    int fkv_try_read_many(fkv_store *s, fkv_many *k, size_t n, uint8_t *buf, size_t cap,
                          size_t *need)
    int fkv_versions(fkv_store *s, fkv_many *k, size_t n, uint64_t *epoch)

    ctypedef struct fkv_change:
        const char *key
        size_t klen
        const uint8_t *val
        size_t vlen
        uint64_t deadline_ms
        int op
    enum:
        FKV_CHANGE_PUT
        FKV_CHANGE_DELETE
    int fkv_write_group(fkv_store *s, const fkv_change *c, size_t n, size_t *deleted)
    int fkv_txn_begin(fkv_store *s, uint64_t token)
    int fkv_txn_end(fkv_store *s, uint64_t token, int commit, const fkv_change *c, size_t n,
                    size_t *deleted)
    int fkv_touch(fkv_store *s, const char *key, size_t klen, uint64_t ttl_s)
    int fkv_read(fkv_store *s, const char *key, size_t klen, uint8_t *buf,
                 size_t *voff, size_t *vlen)
    int fkv_try_read(fkv_store *s, const char *key, size_t klen, uint8_t *buf,
                     size_t *voff, size_t *vlen)
    int fkv_try_contains(fkv_store *s, const char *key, size_t klen, int *found)
    int fkv_delete(fkv_store *s, const char *key, size_t klen)
    int fkv_contains(fkv_store *s, const char *key, size_t klen, int *found)
    int fkv_count(fkv_store *s, uint64_t *n)
    ctypedef struct fkv_key_batch:
        uint8_t *data
        size_t used
        size_t count
    enum:
        FKV_ITER_START
        FKV_ITER_END
    int fkv_iter_next(fkv_store *s, uint64_t *cursor, const char *prefix, size_t plen,
                      fkv_key_batch *out)
    void fkv_key_batch_free(fkv_key_batch *b)
    int fkv_compact(fkv_store *s, fkv_progress *progress)
    int fkv_backup(fkv_store *s, const char *dest, fkv_progress *progress)
    int fkv_sync(fkv_store *s)
    int fkv_get_stats(fkv_store *s, fkv_stats *st)
    int fkv_debug_hold(fkv_store *s, uint64_t ms)
    int fkv_debug_fail_next_flush(fkv_store *s, int err)
    int fkv_debug_pause_next_read(fkv_store *s, uint64_t ms)
    int fkv_debug_reads_paused(fkv_store *s)
    int fkv_debug_snapshot_blocks(fkv_store *s, uint64_t *checked, uint64_t *total)
