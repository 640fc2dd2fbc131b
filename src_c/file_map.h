/*
 * file_map.h - the data file mapped read-only, so that a writer confirms
 * the key at an index slot by reading memory instead of making a system
 * call (on a VM a pread costs about as much as the append itself).
 *
 * Only callers that may wait use it (writers under the store's mutex, open
 * walking the log past a snapshot), and reads of pages a read found in
 * memory a moment ago (warm_pages.h): touching a page that is not in
 * memory waits for the disk like a pread would. A read from
 * the mapping can fault (SIGBUS) where a pread would have failed: the file
 * cut short behind the store's back, or an I/O error. fkv_map_copy and
 * fkv_map_guarded catch that fault and return FKV_EIO, so a damaged disk or
 * a meddling process gives an error, never a dead process.
 *
 * POSIX only; elsewhere fkv_map_open gives NULL and callers use pread.
 */
#ifndef FKV_FILE_MAP_H
#define FKV_FILE_MAP_H

#include <stddef.h>
#include <stdint.h>

/* Bytes mapped per file: the largest data file there can be. */
#define FKV_MAP_BYTES (1ull << 30)

/* fd mapped read-only over FKV_MAP_BYTES (pages past its end are never
 * touched), or NULL where mapping is unavailable or fails. */
const uint8_t *fkv_map_open(int fd);

void fkv_map_close(const uint8_t *map);

/* fd mapped read-write over FKV_MAP_BYTES, for appends (append.h), or
 * NULL. Closed with fkv_map_close. */
uint8_t *fkv_map_open_writable(int fd);

/* Copy n bytes from src to off of a writable mapping (the file holds
 * them already: the caller made room), front to back: a kill mid-copy
 * leaves a prefix of them. FKV_OK, or FKV_EIO (errno EIO) if a page
 * faulted, the copy left wherever it was. */
int fkv_map_write(uint8_t *map, uint64_t off, const void *src, size_t n);

/* Unmap from this process the whole pages in [from, to) of a mapping:
 * what was written stays in the file's pages (a dirty page stays dirty),
 * only the process's resident count drops. Returns where the next such
 * range starts (to, down to its page). */
uint64_t fkv_map_let_go(const uint8_t *map, uint64_t from, uint64_t to);

/* Copy n bytes at off (off + n <= FKV_MAP_BYTES, inside the file) to dst.
 * FKV_OK, or FKV_EIO (errno EIO) if the pages could not be read. */
int fkv_map_copy(void *dst, const uint8_t *map, uint64_t off, size_t n);

/* fn(arg), reading mappings directly: a fault in one makes it FKV_EIO
 * (errno EIO) at once, fn left wherever it was. So fn must keep nothing
 * that needs undoing outside what its caller drops on an error. Guarded
 * copies inside it keep their own guard. */
int fkv_map_guarded(int (*fn)(void *), void *arg);

/* Ask for [off, off + n) of the file to be read in ahead of reading it
 * through the mapping (which, for lookups, reads nothing ahead). */
void fkv_map_will_read(const uint8_t *map, uint64_t off, uint64_t n);

#endif
