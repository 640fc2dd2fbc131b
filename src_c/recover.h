/*
 * recover.h - the open path and the way back from a snapshot that fails
 * (recover.c).
 */
#ifndef FKV_RECOVER_H
#define FKV_RECOVER_H

#include "store_core.h"
#include "snapshot.h"

/* How an open treats the file: a normal open creates a missing file, drops a
 * torn tail and refuses other damage; a salvage open (verify, repair) never
 * writes, reads past damage and reports it. */
typedef enum open_mode { OPEN_NORMAL, OPEN_SALVAGE } open_mode;

/* Recovery (recover.c): the file header read (or written into an empty
 * file when opening normally), the snapshot tried, the log walked. */
int recover_open(fkv_store *s, open_mode mode, fkv_verify_report *rep);

/* After the snapshot failed a check (FKV_ESNAPSHOT): the index rebuilt by
 * a walk of the whole log and the snapshot dropped. On failure the store
 * is as it was and the next call tries again. */
int recover_rebuild(fkv_store *s);

/* store_enter for every call but a read's lookup: those may touch any slot,
 * so a snapshot's table still loading block by block is loaded whole
 * (recover.c: a failure there is a rebuild). */
int store_enter_all(fkv_store *s);

int store_ready_path(fkv_store *s, uint32_t hash, fkv_wait wait);


/* Before a read probes for hash under the mutex: snapshot_ready, and a
 * rebuild when the snapshot failed. */
static inline int store_ready(fkv_store *s, uint32_t hash, fkv_wait wait)
{
    return FKV_LIKELY(!s->snap.lazy) ? FKV_OK : store_ready_path(s, hash, wait);
}

#endif /* FKV_RECOVER_H */
