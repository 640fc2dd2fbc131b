/*
 * repair.c - verify and repair a data file that may be damaged.
 *
 * Both open the file in salvage mode (recover.c): the lock is taken, nothing
 * is written to the file, and the log walk (log.c) steps over damaged bytes to the next
 * intact record, counting what it finds. Repair then writes every live key
 * the intact records leave into a new file, locked before it is renamed over
 * the damaged one, which is kept as a backup (a hard link) if asked.
 */
#include "store_private.h"
#include "compact.h"

#include <stdlib.h>

static int salvage_open(const char *path, fkv_verify_report *rep, fkv_progress *progress,
                        fkv_store **out)
{
    fkv_options opt = {FKV_MAX_FILE_SIZE, FKV_DURABLE_PROCESS, 0};
    memset(rep, 0, sizeof *rep);
    rep->header_ok = 1;
    rep->first_damage_offset = UINT64_MAX;
    int rc = store_open(path, &opt, OPEN_SALVAGE, rep, progress, out);
    if (rc == FKV_OK && (rc = store_count_live(*out, fkv_now_ms(), &rep->live_keys)) != FKV_OK) {
        fkv_free(*out);
        *out = NULL;
    }
    return rc;
}

int fkv_verify(const char *path, fkv_verify_report *rep, fkv_progress *progress)
{
    fkv_store *s;
    int rc = salvage_open(path, rep, progress, &s);
    if (rc == FKV_OK)
        fkv_free(s);
    return rc;
}

/* Write every live record the index of s points to into the file behind w,
 * as a complete store, and flush it. */
static int write_live_records(fkv_store *s, fkv_bufwriter *w, uint64_t *written)
{
    uint8_t *rec = (uint8_t *)malloc(FKV_REC_MAX);
    if (!rec)
        return FKV_ENOMEM;
    uint64_t now = fkv_now_ms();
    uint8_t header[FKV_FILE_HEADER_SIZE];
    fkv_file_identity ident; /* a new file: an old snapshot no longer fits it */
    fkv_lineage lineage;
    fkv_file_header_encode(header, now, &ident, &lineage);
    int rc = fkv_bufwriter_add(w, header, sizeof header);
    *written = 0;
    for (uint64_t pos = 0; pos < s->ix.cap && rc == FKV_OK; pos++) {
        fkv_slot slot = s->ix.slots[pos];
        if (!FKV_LOC_IS_ENTRY(slot.loc))
            continue;
        uint64_t off = FKV_LOC_OFFSET(slot.loc);
        size_t want = slot_read_size(slot, FKV_REC_MAX), got;
        fkv_rec_header h;
        rc = read_record_at(s->file->fd, NULL, s->end, off, rec, want, FKV_MAY_WAIT, &h, &got);
        if (rc != FKV_OK)
            break;
        if (got < fkv_record_size(&h) || !fkv_record_checksum_ok(rec, &h)) {
            rc = fkv_corrupt_at(off);
            break;
        }
        if (is_expired(&h, now))
            continue;
        if ((rc = fkv_bufwriter_add(w, rec, fkv_record_size(&h))) == FKV_OK)
            (*written)++;
    }
    if (rc == FKV_OK)
        rc = fkv_bufwriter_finish(w);
    free(rec);
    return rc;
}

int fkv_repair(const char *path, const char *backup_path, fkv_verify_report *rep,
               fkv_progress *progress)
{
    fkv_store *s;
    int rc = salvage_open(path, rep, progress, &s);
    if (rc != FKV_OK)
        return rc;
    fkv_tempfile tmp;
    fkv_bufwriter w = {0};
    rc = fkv_temp_create(&tmp, path, REPAIR_SUFFIX, s->file->fd);
    if (rc == FKV_OK)
        rc = fkv_bufwriter_init(&w, tmp.fd);
    if (rc == FKV_OK)
        rc = write_live_records(s, &w, &rep->salvaged_keys);
    /* A hard link keeps the damaged file under the store's name until the
     * rename swaps the new one in: no opener ever finds the name missing. */
    if (rc == FKV_OK && backup_path && link(path, backup_path) != 0)
        rc = fkv_io_error();
    if (rc == FKV_OK && (rc = fkv_temp_install(&tmp, path)) != FKV_OK && backup_path)
        unlink(backup_path);
    if (rc == FKV_OK) /* it described the damaged file: the next open scans */
        snapshot_forget(path);
    fkv_temp_discard(&tmp);
    fkv_bufwriter_free(&w);
    fkv_free(s);
    return rc;
}
