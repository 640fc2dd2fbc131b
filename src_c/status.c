/* status.c - status phrases and per-thread failure details. */
#include "platform.h" /* first: sets the feature macros */
#include "status.h"

static FKV_THREAD_LOCAL int last_errno;
static FKV_THREAD_LOCAL uint64_t last_offset;

const char *fkv_strerror(int status)
{
    switch (status) {
    case FKV_OK: return "ok";
    case FKV_ENOTFOUND: return "key not found";
    case FKV_EEXPIRED: return "key expired";
    case FKV_EEXISTS: return "key already exists";
    case FKV_EFULL: return "store is full";
    case FKV_ELOCKED: return "store is locked by another opener";
    case FKV_ECLOSED: return "store is closed";
    case FKV_EFORKED: return "store was opened in another process (fork)";
    case FKV_ECORRUPT: return "store file is damaged";
    case FKV_ENOTSTORE: return "file is not a fastkv store";
    case FKV_EIO: return "input/output error";
    case FKV_ENOMEM: return "out of memory";
    case FKV_EKEY: return "key length out of range";
    case FKV_EVALUE: return "value length out of range";
    case FKV_ETTL: return "ttl out of range";
    case FKV_EISDIR: return "path is a directory";
    case FKV_ECONFIG: return "option out of range";
    case FKV_EFLUSH: return "a flush to stable storage failed";
    case FKV_EAGAIN: return "the call would have to wait";
    case FKV_EPATHEXISTS: return "path exists";
    case FKV_ETXN: return "transaction misused";
    case FKV_EDUPLICATE: return "key named twice in one group";
    case FKV_ESNAPSHOT: return "the index snapshot failed a check";
    default: return "unknown status";
    }
}

int fkv_last_errno(void) { return last_errno; }
uint64_t fkv_last_offset(void) { return last_offset; }
void fkv_set_errno(int err) { last_errno = err; }
void fkv_set_offset(uint64_t offset) { last_offset = offset; }
