/*
 * append.h - the bytes of a write put at the end of the log.
 *
 * On a VM the pwrite of a small record costs about as much as everything
 * else a create or a delete does (half of their time, measured). So where
 * it is safe, a small record is copied into a writable mapping of the
 * file instead: room is made ahead first (the file allocated up to
 * APPEND_ROOM bytes past the log), so the copy is a plain memory copy that
 * cannot fault for want of disk space; once it returns, the bytes are in
 * the file's pages, where a kill -9 of the process cannot take them. The
 * pages written are let go from the process every megabyte, so its
 * resident size does not grow with the log.
 *
 * Room ahead means that while a store is open its file is longer than its
 * log: zeros past the last record, cut at close, and after a crash cut at
 * the next open (log.c takes zeros past the last record as never written).
 *
 * pwrite stays for everything else: systems without the mapping (Windows
 * among them), fsync mode (where the flush is the cost), records larger
 * than a page, a process under a file size limit (room ahead could pass
 * it), a file system that cannot allocate ahead, and a copy that faulted
 * (the file cut short behind the store's back).
 */
#ifndef FKV_APPEND_H
#define FKV_APPEND_H

#include "platform.h" /* first: sets the feature macros */
#include "file_io.h"

/* Bytes of room made ahead at a time: a zero tail up to this long is left
 * by a crash. */
#define APPEND_ROOM (64u << 10)

/* Write rec[0..len) at end, the end of f's log, never making the file
 * longer than cap; through the mapping if mapped allows it. On an error
 * nothing past end is kept (FKV_EIO, FKV_EFULL... as fkv_write_at). */
int fkv_append(fkv_file *f, const uint8_t *rec, size_t len, uint64_t end, uint64_t cap,
               int mapped);

/* Cut the room made ahead of a log that ends at end (a clean close). */
void fkv_append_cut_room(fkv_file *f, uint64_t end);

#endif /* FKV_APPEND_H */
