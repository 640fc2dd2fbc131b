/*
 * status.h - the status codes every C entry point returns.
 *
 * One enum for the whole core: 0 is success, failures are small negative
 * numbers; no function of the core answers in another scheme. Details that do not fit
 * in the code (the errno of a failed system call, the file offset of a bad
 * record) are kept per thread, so concurrent calls on one store never see each
 * other's details. The Cython layer turns each code into one exception class.
 * Never touches Python.
 */
#ifndef FKV_STATUS_H
#define FKV_STATUS_H

#include <stdint.h>

enum {
    FKV_OK = 0,
    FKV_ENOTFOUND = -1, /* key not in the store */
    FKV_EEXPIRED = -2,  /* key held but its deadline has passed */
    FKV_EEXISTS = -3,   /* create on a live key */
    FKV_EFULL = -4,     /* write would pass max_file_size */
    FKV_ELOCKED = -5,   /* another opener holds the file lock */
    FKV_ECLOSED = -6,   /* store was closed */
    FKV_EFORKED = -7,   /* store used in a forked child */
    FKV_ECORRUPT = -8,  /* checksum or framing failed (offset kept) */
    FKV_ENOTSTORE = -9, /* file exists but is not a fastkv store */
    FKV_EIO = -10,      /* system call failed (errno kept) */
    FKV_ENOMEM = -11,   /* allocation failed */
    FKV_EKEY = -12,     /* key length out of range */
    FKV_EVALUE = -13,   /* value length out of range */
    FKV_ETTL = -14,     /* ttl out of range */
    FKV_EISDIR = -15,   /* path is a directory */
    FKV_ECONFIG = -16,  /* option out of range */
    FKV_EFLUSH = -17,   /* a flush failed: writes refused until reopened (errno kept) */
    FKV_EAGAIN = -18,   /* a fkv_try_ call would have had to wait */
    FKV_EPATHEXISTS = -19, /* a new file's name is taken already */
    FKV_ETXN = -21,     /* a transaction misused: its writer slot held by this thread */
    FKV_EDUPLICATE = -22, /* a key named twice in one group */
    /* Inside the core only, never returned by an fkv_ call: the snapshot
     * failed a check after it was loaded, and the store's layer rebuilds
     * the index from the log (snapshot.h says when). */
    FKV_ESNAPSHOT = -20
};

/* A short English phrase for a status code. */
const char *fkv_strerror(int status);

/* Details of the last failure on this thread. */
int fkv_last_errno(void);
uint64_t fkv_last_offset(void);

/* Record details of a failure (used inside the core). */
void fkv_set_errno(int err);
void fkv_set_offset(uint64_t offset);

#endif /* FKV_STATUS_H */
