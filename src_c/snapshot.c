/*
 * snapshot.c - the snapshot's events, the one door the store's layer uses
 * (snapshot.h tells the life they make up): open, walked, drop, a save
 * now, a replaced log, close and release. Each calls down into the parts:
 * snapshot_load.c, snapshot_blocks.c, snapshot_hints.c,
 * snapshot_background.c, snapshot_save.c.
 */
#include "snapshot_parts.h"

#include <stdlib.h>

const char *fkv_snapshot_status_name(int status)
{
    switch (status) {
    case SNAP_NOT_TRIED: return "not tried";
    case SNAP_LOADED: return "loaded";
    case SNAP_MISSING: return "missing";
    case SNAP_OLD_FORMAT: return "data file of an older format: rewritten in the current one at its next compaction or close";
    case SNAP_OTHER_HISTORY: return "made for another history of the data file";
    case SNAP_UNREADABLE: return "unreadable";
    case SNAP_BAD_HEADER: return "bad header";
    case SNAP_BAD_SIZE: return "size does not match its slot count";
    case SNAP_BAD_CHECKSUM: return "checksum failed";
    case SNAP_OTHER_FILE: return "made for another data file";
    case SNAP_BAD_END: return "covers more than the data file holds";
    case SNAP_TAIL_MISMATCH: return "the last record it covers differs in the data file";
    case SNAP_BAD_TABLE: return "table failed its checks";
    case SNAP_NO_MEMORY: return "out of memory";
    case SNAP_UNFINISHED_SAVE: return "its save was cut short";
    case SNAP_BAD_HINT: return "a record its hints named was not as they said";
    default: return "unknown";
    }
}

/* ---- writing ---------------------------------------------------------------- */

/* ---- events --------------------------------------------------------------- */

int snapshot_save_now(fkv_store *s)
{
    if (s->ident.version != FKV_FORMAT_VERSION || s->ix.cap == 0)
        return FKV_OK; /* an older format: no history to bind a snapshot to */
    if (s->snap.lazy)
        return FKV_OK; /* the table is not all in memory: the one on disk stays */
    snapshot_join(s, FKV_MAY_WAIT); /* the one running in the background is older */
    hints_stop(s); /* they hold for the snapshot being replaced */
    uint8_t header[SNAP_HEADER];
    snapshot_header(s, header);
    int rc = snapshot_save(s->path, s->file->fd, header, &s->ix);
    if (rc == FKV_OK) {
        s->snap.written++;
        s->snap.seq = s->write_seq;
        snapshot_covers(s, s->end);
    }
    return rc;
}

void snapshot_release(fkv_store *s)
{
    hints_stop(s);
    snapshot_lazy_free(s->snap.lazy);
    s->snap.lazy = NULL;
}

void snapshot_close(fkv_store *s, int save)
{
    snapshot_join(s, FKV_MAY_WAIT);
    /* unless the one on disk is current; with a table still loading
     * lazily, only reads happened since open: nothing to save */
    if (save && s->snap.seq != s->write_seq)
        (void)snapshot_save_now(s);
    snapshot_release(s);
}

void snapshot_log_replaced(fkv_store *s)
{
    hints_stop(s); /* the log they name is gone */
    /* The new file has a new identity: the snapshot on disk no longer fits
     * it. fkv_compact saves one at once; after a compaction inside a write
     * the next write starts one in the background. */
    s->snap.seq = UINT64_MAX;
    snapshot_covers(s, 0);
}

uint64_t snapshot_open(fkv_store *s, uint64_t size)
{
    snapshot_lazy *L = NULL;
    fkv_index table;
    s->snap.reason = snapshot_load_front(s, size, &L, &table);
    /* the walk of the log past E keeps its records by block */
    if (s->snap.reason == SNAP_LOADED && L->end < size &&
        snapshot_keep_start(L, size - L->end, table.cap) != FKV_OK) {
        s->snap.reason = SNAP_NO_MEMORY;
        fkv_index_free(&table);
        snapshot_lazy_free(L);
    }
    if (s->snap.reason != SNAP_LOADED)
        return s->ident.log_start;
    fkv_index_free(&s->ix);
    s->ix = table;
    s->end = L->end;
    s->live_bytes = L->live_bytes;
    s->n_ttl = L->n_ttl;
    s->tail_off = L->tail_off;
    s->tail_crc = L->tail_crc;
    s->snap.lazy = L;
    return L->end;
}

int snapshot_walked(fkv_store *s, uint64_t covered)
{
    snapshot_lazy *L = s->snap.lazy;
    if (L) {
        L->keeping = 0;
        /* Room for them all without growing the table, which would move
         * every block: otherwise the whole table now. */
        if (L->npend > 0 && (s->ix.live + s->ix.deleted + L->npend) * 4 > s->ix.cap * 3) {
            int rc = snapshot_finish(s);
            if (rc != FKV_OK)
                return rc;
        }
    }
    if (s->snap.reason == SNAP_LOADED && s->end == covered) {
        s->snap.seq = s->write_seq; /* nothing past it: the snapshot is current */
        if (s->snap.lazy)
            hints_start(s, s->snap.lazy);
    }
    snapshot_covers(s, s->snap.reason == SNAP_LOADED ? covered : 0);
    return FKV_OK;
}

void snapshot_drop(fkv_store *s)
{
    snapshot_lazy *L = s->snap.lazy;
    s->snap.reason = L && L->failed ? L->failed : SNAP_BAD_TABLE;
    snapshot_release(s);
    s->snap.seq = UINT64_MAX; /* close saves a good one */
    snapshot_covers(s, 0);
}

