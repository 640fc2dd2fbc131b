/*
 * compact.c - rewrite the data file with only the records the index points
 * to, in log order, dropping expired ones.
 *
 * The new file (path + ".compact") is locked before anything is written to
 * it and renamed over the data file once it is whole and flushed, so a
 * crash leaves either the old file or the new one, and no other opener can
 * get in between. The index is updated slot by slot only after the rename:
 * until then a failure leaves the store exactly as it was.
 */
#include "compact.h"
#include "snapshot.h"

#include <stdlib.h>

#define AUTO_COMPACT_MIN (4u << 20)

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

/* Walk the log and copy each record that an index entry (other than
 * skip_pos) points to and that has not expired into w; newloc[pos] receives
 * the entry's location in the new file. */
static int copy_live(fkv_store *s, uint64_t skip_pos, uint64_t now, fkv_bufwriter *w,
                     uint32_t *newloc, uint64_t *tail_off, uint32_t *tail_crc)
{
    fkv_window win;
    if (fkv_window_init(&win, s->file->fd, s->end) != FKV_OK)
        return FKV_ENOMEM;
    int rc = FKV_OK;
    progress_total(s->progress, s->end);
    for (uint64_t off = s->ident.log_start; off < s->end;) {
        fkv_rec_header h;
        progress_done(s->progress, off);
        rc = fkv_window_cover(&win, off, FKV_REC_HEADER_SIZE);
        if (rc == FKV_OK && fkv_record_header_decode(fkv_window_at(&win, off), &h) != FKV_OK)
            rc = FKV_ECORRUPT;
        if (rc == FKV_OK)
            rc = fkv_window_cover(&win, off, fkv_record_size(&h));
        if (rc != FKV_OK) {
            if (rc != FKV_EIO)
                rc = fkv_corrupt_at(off);
            break;
        }
        const uint8_t *rec = fkv_window_at(&win, off);
        size_t rl = fkv_record_size(&h);
        if (h.kind == FKV_KIND_PUT) {
            uint32_t hash = fkv_hash(rec + FKV_REC_HEADER_SIZE, h.klen);
            uint64_t pos = slot_of_offset(&s->ix, hash, off);
            if (pos != UINT64_MAX && pos != skip_pos && !is_expired(&h, now)) {
                if (!fkv_record_checksum_ok(rec, &h)) {
                    rc = fkv_corrupt_at(off);
                    break;
                }
                uint64_t at = fkv_bufwriter_offset(w);
                if ((rc = fkv_bufwriter_add(w, rec, rl)) != FKV_OK)
                    break;
                newloc[pos] = (uint32_t)at | (s->ix.slots[pos].loc & FKV_LOC_TTL);
                *tail_off = at;
                *tail_crc = h.crc;
            }
        }
        off += rl;
    }
    fkv_window_free(&win);
    if (rc == FKV_OK)
        progress_done(s->progress, s->end);
    return rc;
}

/* After the rename: point every entry at its new place, or drop it. */
static void repoint_index(fkv_store *s, const uint32_t *newloc)
{
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
    s->n_ttl = n_ttl;
}

int compact_locked(fkv_store *s, uint64_t skip_pos)
{
    fkv_tempfile tmp;
    fkv_bufwriter w = {0};
    uint32_t *newloc = (uint32_t *)calloc(s->ix.cap, sizeof(uint32_t));
    int rc = fkv_temp_create(&tmp, s->path, COMPACT_SUFFIX, s->file->fd);
    if (rc == FKV_OK && !newloc)
        rc = FKV_ENOMEM;
    if (rc == FKV_OK)
        rc = fkv_bufwriter_init(&w, tmp.fd);
    uint64_t now = fkv_now_ms(), tail_off = 0;
    uint32_t tail_crc = 0;
    uint8_t header[FKV_FILE_HEADER_SIZE];
    fkv_file_identity ident;
    fkv_lineage lineage; /* the new file's first session: this store's */
    fkv_file_header_encode(header, now, &ident, &lineage);
    if (rc == FKV_OK)
        rc = fkv_bufwriter_add(&w, header, sizeof header);
    if (rc == FKV_OK)
        rc = copy_live(s, skip_pos, now, &w, newloc, &tail_off, &tail_crc);
    if (rc == FKV_OK)
        rc = fkv_bufwriter_finish(&w);
    fkv_file *fresh = NULL;
    if (rc == FKV_OK && !(fresh = fkv_file_wrap(tmp.fd, -1)))
        rc = FKV_ENOMEM;
    if (rc == FKV_OK && (rc = fkv_temp_install(&tmp, s->path)) != FKV_OK)
        free(fresh); /* its descriptor is still tmp's, discarded below */
    if (rc == FKV_OK) {
        repoint_index(s, newloc);
        /* Wake anyone waiting on the old file: they see it was replaced
         * and retry on the new one, which is locked already. Reads in
         * flight keep the old descriptor until they are done. */
        fkv_file_move_lock(fresh, s->file);
        fkv_file_release(s->file);
        s->file = fresh;
        tmp.fd = -1;
        /* The new file was flushed before the rename: all of it is durable. */
        s->durable_seq = s->write_seq;
        s->end = w.flushed;
        s->live_bytes = w.flushed;
        s->cache_until = 0;
        s->compactions++;
        s->ident = ident;
        s->lineage = lineage;
        s->writing = 1;
        s->tail_off = tail_off;
        s->tail_crc = tail_crc;
        snapshot_log_replaced(s);
    }
    fkv_temp_discard(&tmp);
    fkv_bufwriter_free(&w);
    free(newloc);
    return rc;
}

int compact_make_room(fkv_store *s, size_t need, uint64_t now)
{
    uint64_t live;
    int rc = store_count_live(s, now, &live);
    if (rc != FKV_OK)
        return rc;
    int has_expired = live < s->ix.live;
    if (!has_expired && s->live_bytes + need > s->max_file_size)
        return FKV_EFULL; /* compaction could not free enough */
    rc = compact_locked(s, COMPACT_KEEP_ALL);
    if (rc != FKV_OK)
        return rc;
    return s->end + need <= s->max_file_size ? FKV_OK : FKV_EFULL;
}

/* Compacts once dead records are over half of a file of at least
 * AUTO_COMPACT_MIN bytes (half the cap, if that is smaller). Rewriting costs
 * about as much as the writes that left the dead bytes, so the cost per
 * write stays bounded. A failure is not the caller's: its write is done. */
void compact_maybe(fkv_store *s)
{
    uint64_t floor = AUTO_COMPACT_MIN;
    if (floor > s->max_file_size / 2)
        floor = s->max_file_size / 2;
    if (s->end < floor || (s->end - s->live_bytes) * 2 <= s->end || s->end < s->auto_retry_at)
        return;
    if (compact_locked(s, COMPACT_KEEP_ALL) != FKV_OK)
        s->auto_retry_at = s->end + floor; /* do not retry on every write */
}
