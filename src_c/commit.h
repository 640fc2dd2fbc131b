/*
 * commit.h - flushing to stable storage (commit.c): group commit, sync, and
 * a failed flush refusing every later write.
 */
#ifndef FKV_COMMIT_H
#define FKV_COMMIT_H

#include "store_core.h"

/* Set up and tear down the group-commit state (commit.c). */
int commit_init(fkv_store *s);
void commit_destroy(fkv_store *s);

/* After each append: wakes a leader gathering writers for its flush. */
void commit_appended(fkv_store *s);

/* FKV_EFLUSH (errno kept) once a flush has failed: no more writes. */
int commit_writable(const fkv_store *s);

/* Wait until a flush covers record seq, flushing as the leader if no flush
 * is running. Lets s->mu go while flushing or waiting. */
int commit_wait_durable(fkv_store *s, uint64_t seq);

/* At close: wait for a running flush, then flush what is left in fsync
 * mode, so no writer waiting on a flush is left without one. */
void commit_close(fkv_store *s);

#endif /* FKV_COMMIT_H */
