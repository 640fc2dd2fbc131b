/*
 * write.h - what the calls that append share (write.c): the start and end
 * of every write call, and the append itself. transaction.c writes groups
 * through them.
 */
#ifndef FKV_WRITE_H
#define FKV_WRITE_H

#include "store_core.h"

/* After store_enter_all, before a write: its turn at the writer slot
 * (store_writer_turn), and no failed flush (FKV_EFLUSH). */
int write_ready(fkv_store *s);

/* Append encoded records (len bytes, the last one starting at last) at the
 * end of the log. On failure the file is cut back, so no partial record is
 * ever visible after a reopen (nothing past s->end was acknowledged:
 * writers are serialized by the mutex and the writer slot). */
int write_append(fkv_store *s, const uint8_t *rec, size_t len, size_t last);

/* The end of every write call, given its result: a background snapshot
 * started if one is due, in fsync mode a wait for a flush that covers what
 * it appended (commit.c), and the mutex let go. */
int write_finish(fkv_store *s, int rc);

#endif /* FKV_WRITE_H */
