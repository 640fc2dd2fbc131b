/*
 * write.c - the calls that append records: create, put, touch, delete.
 *
 * A writer holds the store's mutex from its lookup to its index update, so
 * writes are serialized; the record is appended before the index points at
 * it, so a reader or a crash sees the old state or the new one. In fsync
 * mode the writer then waits for a flush that covers its record (commit.c).
 */
#include "write.h"
#include "append.h"
#include "recover.h"
#include "commit.h"
#include "compact.h"

#include <stdlib.h>

/* How a write's deadline argument is meant. */
typedef enum deadline_kind { DEADLINE_TTL_S, DEADLINE_ABS_MS } deadline_kind;

/* Whether a write may replace a live key (put) or is refused on one (create). */
typedef enum write_kind { WRITE_CREATE, WRITE_PUT } write_kind;

/* Before this store's first record in its data file: its session at the
 * head of the file's list of writing sessions (lineage.h), written in
 * place before any record of the session can be, so that no record of it
 * lies in a file whose list does not name it. Formats 1 and 2 have no list. */
static int begin_session(fkv_store *s)
{
    if (s->ident.version == FKV_FORMAT_VERSION) {
        fkv_lineage next = s->lineage;
        uint8_t list[FKV_LINEAGE_BYTES];
        fkv_lineage_begin(&next, s->end);
        fkv_lineage_encode(list, &next);
        int rc = fkv_write_at(s->file->fd, list, sizeof list, FKV_LINEAGE_AT);
        if (rc != FKV_OK)
            return rc;
        s->lineage = next;
    }
    s->writing = 1;
    return FKV_OK;
}

int write_append(fkv_store *s, const uint8_t *rec, size_t len, size_t last)
{
    int rc;
    if (FKV_UNLIKELY(!s->writing) && (rc = begin_session(s)) != FKV_OK)
        return rc;
    rc = fkv_append(s->file, rec, len, s->end, s->max_file_size,
                    s->durability == FKV_DURABLE_PROCESS);
    if (rc != FKV_OK)
        return rc;
    s->tail_off = s->end + last;
    s->tail_crc = fkv_load32(rec + last);
    snapshot_appended(s, rec, len, s->end);
    s->end += len;
    s->write_seq++;
    commit_appended(s);
    return FKV_OK;
}

int write_ready(fkv_store *s)
{
    int rc = store_writer_turn(s);
    return rc == FKV_OK ? commit_writable(s) : rc;
}

int write_finish(fkv_store *s, int rc)
{
    if (rc == FKV_OK)
        snapshot_written(s);
    if (rc == FKV_OK && s->durability == FKV_DURABLE_FSYNC)
        rc = commit_wait_durable(s, s->write_seq);
    store_leave(s);
    return rc;
}

/* One record for key holding val: a create (refused on a live key) or a
 * put (replacing the live record, which becomes dead bytes). Either way the
 * index moves to the new record only after it is written, so a reader or a
 * crash sees the old record or the new one, never neither. */
/* The record a write replaces, if any (buf holds READ_HINT bytes): a
 * create expects none, so it reads what it meets without the mapping
 * (store_lookup_absent). */
static int find_old(fkv_store *s, write_kind wk, const char *key, size_t klen, uint32_t hash,
                    uint8_t *buf, found *f)
{
    if (wk == WRITE_CREATE)
        return store_lookup_absent(s, key, klen, hash, buf, READ_HINT, f);
    return store_lookup(s, key, klen, hash, buf, READ_HINT, FKV_MAY_WAIT, f);
}

static int write_locked(fkv_store *s, const char *key, size_t klen, const uint8_t *val,
                        size_t vlen, uint64_t when, deadline_kind kind, write_kind wk)
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
    rc = find_old(s, wk, key, klen, hash, buf, &f);
    int was_live = rc == FKV_OK && !is_expired(&f.h, now);
    if (was_live && wk == WRITE_CREATE)
        return FKV_EEXISTS;
    if (rc != FKV_OK && rc != FKV_ENOTFOUND)
        return rc;
    size_t need = FKV_REC_HEADER_SIZE + klen + vlen;
    if (s->end + need > s->max_file_size) {
        if ((rc = compact_make_room(s, need, now)) != FKV_OK)
            return rc;
        /* Compaction dropped expired records and moved the rest. */
        rc = find_old(s, wk, key, klen, hash, buf, &f);
        if (rc != FKV_OK && rc != FKV_ENOTFOUND)
            return rc;
    }
    const found *old = rc == FKV_OK ? &f : NULL;
    size_t n = fkv_record_encode(s->wbuf, FKV_KIND_PUT, key, klen, val, vlen, deadline);
    if ((rc = write_append(s, s->wbuf, n, 0)) != FKV_OK)
        return rc;
    store_point(s, hash, s->end - n, n, deadline, old, was_live);
    compact_maybe(s);
    return FKV_OK;
}

static int write_entry(fkv_store *s, const char *key, size_t klen, const uint8_t *val,
                       size_t vlen, uint64_t when, deadline_kind kind, write_kind wk)
{
    if (!key_len_ok(klen))
        return FKV_EKEY;
    if (vlen > FKV_VALUE_MAX)
        return FKV_EVALUE;
    if (kind == DEADLINE_TTL_S && when > FKV_TTL_MAX_S)
        return FKV_ETTL;
    int rc = store_enter_all(s);
    if (rc != FKV_OK)
        return rc;
    if ((rc = write_ready(s)) == FKV_OK)
        rc = write_locked(s, key, klen, val, vlen, when, kind, wk);
    return write_finish(s, rc);
}

int fkv_create(fkv_store *s, const char *key, size_t klen, const uint8_t *val, size_t vlen,
               uint64_t ttl_s)
{
    return write_entry(s, key, klen, val, vlen, ttl_s, DEADLINE_TTL_S, WRITE_CREATE);
}

int fkv_create_until(fkv_store *s, const char *key, size_t klen, const uint8_t *val,
                     size_t vlen, uint64_t deadline_ms)
{
    return write_entry(s, key, klen, val, vlen, deadline_ms, DEADLINE_ABS_MS, WRITE_CREATE);
}

int fkv_put(fkv_store *s, const char *key, size_t klen, const uint8_t *val, size_t vlen,
            uint64_t ttl_s)
{
    return write_entry(s, key, klen, val, vlen, ttl_s, DEADLINE_TTL_S, WRITE_PUT);
}

int fkv_put_until(fkv_store *s, const char *key, size_t klen, const uint8_t *val, size_t vlen,
                  uint64_t deadline_ms)
{
    return write_entry(s, key, klen, val, vlen, deadline_ms, DEADLINE_ABS_MS, WRITE_PUT);
}

/* A new record with the live key's value and a deadline ttl_s from now (0:
 * none). The value is copied from the old record under the mutex, so the
 * touch is one step like a put. */
static int touch_locked(fkv_store *s, const char *key, size_t klen, uint64_t ttl_s)
{
    uint8_t *buf = (uint8_t *)malloc(FKV_REC_MAX);
    if (!buf)
        return FKV_ENOMEM;
    found f;
    int rc = store_lookup(s, key, klen, fkv_hash(key, klen), buf, FKV_REC_MAX, FKV_MAY_WAIT, &f);
    if (rc == FKV_OK)
        rc = store_finish_record(s->file->fd, buf, &f, FKV_MAY_WAIT);
    uint64_t now = fkv_now_ms();
    if (rc == FKV_OK && is_expired(&f.h, now))
        rc = FKV_EEXPIRED;
    if (rc == FKV_OK) {
        /* The value is copied out of buf into the store's record buffer. */
        uint64_t deadline = ttl_s ? now + ttl_s * 1000u : 0;
        rc = write_locked(s, key, klen, buf + FKV_REC_HEADER_SIZE + klen, f.h.vlen, deadline,
                          DEADLINE_ABS_MS, WRITE_PUT);
    }
    free(buf);
    return rc;
}

int fkv_touch(fkv_store *s, const char *key, size_t klen, uint64_t ttl_s)
{
    if (!key_len_ok(klen))
        return FKV_EKEY;
    if (ttl_s > FKV_TTL_MAX_S)
        return FKV_ETTL;
    int rc = store_enter_all(s);
    if (rc != FKV_OK)
        return rc;
    if ((rc = write_ready(s)) == FKV_OK)
        rc = touch_locked(s, key, klen, ttl_s);
    return write_finish(s, rc);
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
    if ((rc = write_append(s, s->wbuf, n, 0)) != FKV_OK)
        return rc;
    store_unpoint(s, &f);
    compact_maybe(s);
    return FKV_OK;
}

int fkv_delete(fkv_store *s, const char *key, size_t klen)
{
    if (!key_len_ok(klen))
        return FKV_EKEY;
    int rc = store_enter_all(s);
    if (rc != FKV_OK)
        return rc;
    if ((rc = write_ready(s)) == FKV_OK)
        rc = delete_locked(s, key, klen);
    return write_finish(s, rc);
}

/* ---- a batch of puts, for the pipelined server --------------------------------- */

/* fkv_put_batch, under the mutex. Every lookup happens before anything is
 * written, so the batch ends before a key whose hash is already in it (its
 * lookup could otherwise meet a record not yet on disk). */
static int put_batch_locked(fkv_store *s, const fkv_put_item *items, size_t n, size_t *done)
{
    struct staged {
        uint32_t hash;
        int replacing, was_live;
        found f;
        size_t off, len; /* in the batch buffer */
    } st[FKV_BATCH_MAX];
    uint8_t buf[READ_HINT];
    if (!s->batch_buf && !(s->batch_buf = (uint8_t *)malloc(FKV_BATCH_BYTES)))
        return FKV_ENOMEM;
    if (n > FKV_BATCH_MAX)
        n = FKV_BATCH_MAX;
    int rc = fkv_index_reserve(&s->ix, n); /* after the write nothing may fail */
    if (rc != FKV_OK)
        return rc;
    uint64_t now = fkv_now_ms();
    size_t k, used = 0;
    for (k = 0; k < n; k++) {
        const fkv_put_item *it = &items[k];
        size_t need = FKV_REC_HEADER_SIZE + it->klen + it->vlen;
        if (!key_len_ok(it->klen) || it->vlen > FKV_VALUE_MAX || used + need > FKV_BATCH_BYTES ||
            s->end + used + need > s->max_file_size)
            break; /* the caller's one-by-one put answers or makes room */
        uint32_t hash = fkv_hash(it->key, it->klen);
        size_t j = 0;
        while (j < k && st[j].hash != hash)
            j++;
        if (j < k)
            break;
        rc = store_lookup(s, it->key, it->klen, hash, buf, sizeof buf, FKV_MAY_WAIT, &st[k].f);
        if (rc != FKV_OK && rc != FKV_ENOTFOUND)
            break; /* as above: one by one, the put says what is wrong */
        st[k].hash = hash;
        st[k].replacing = rc == FKV_OK;
        st[k].was_live = rc == FKV_OK && !is_expired(&st[k].f.h, now);
        st[k].off = used;
        st[k].len = fkv_record_encode(s->batch_buf + used, FKV_KIND_PUT, it->key, it->klen,
                                      it->val, it->vlen, 0);
        used += st[k].len;
    }
    *done = 0;
    if (k == 0)
        return FKV_OK;
    uint64_t base = s->end;
    if ((rc = write_append(s, s->batch_buf, used, st[k - 1].off)) != FKV_OK)
        return rc;
    for (size_t i = 0; i < k; i++)
        store_point(s, st[i].hash, base + st[i].off, st[i].len, 0,
                    st[i].replacing ? &st[i].f : NULL, st[i].was_live);
    *done = k;
    compact_maybe(s);
    return FKV_OK;
}

int fkv_put_batch(fkv_store *s, const fkv_put_item *items, size_t n, size_t *done)
{
    *done = 0;
    int rc = store_enter_all(s);
    if (rc != FKV_OK)
        return rc;
    if ((rc = write_ready(s)) == FKV_OK)
        rc = put_batch_locked(s, items, n, done);
    return write_finish(s, rc);
}
