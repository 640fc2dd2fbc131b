/*
 * warm_pages.h - which pages of a data file were in memory a moment ago.
 *
 * A read that holds Python's GIL must not wait for the disk (every Python
 * thread would wait with it), so it cannot copy from the file's mapping
 * blindly: a page not in memory would be read in by a fault, GIL held. It
 * asks the page cache with preadv2(RWF_NOWAIT) instead, a system call each
 * time, which costs about as much as the rest of the read. This table lets
 * it skip the call: each 4 KiB page of the file keeps the tick (about a
 * second) when a read last found it in memory. A page found this tick or
 * the one before is copied from the mapping. Writes note nothing: a page
 * written and flushed may be dropped at once (the page cache's choice, or
 * a program's posix_fadvise), while one just read is the last the page
 * cache lets go. If it did let it go within that second or two (memory
 * pressure), that read waits for the disk with the GIL held, as any Python
 * code touching a page would: slower, never wrong.
 *
 * The table is made in 4 KiB chunks, each for 4 MiB of file, on the first
 * note there: 1 byte of memory per KiB of data file read, 2 KiB at open. A
 * race between threads noting one page only blurs when it was noted.
 */
#ifndef FKV_WARM_PAGES_H
#define FKV_WARM_PAGES_H

#include <stddef.h>
#include <stdint.h>

typedef struct fkv_warm fkv_warm;

/* A table where no page is known yet, or NULL (out of memory: then none
 * ever is, and reads take the system call). */
fkv_warm *fkv_warm_new(void);

void fkv_warm_free(fkv_warm *w);

/* The pages holding [off, off + n) are in memory now. */
void fkv_warm_note(fkv_warm *w, uint64_t off, uint64_t n);

/* 1 if every page holding [off, off + n) was known in memory a moment ago. */
int fkv_warm_all(const fkv_warm *w, uint64_t off, uint64_t n);

#endif /* FKV_WARM_PAGES_H */
