# Part of _core.pyx: the core's result codes (FKV_*, src_c/status.h) turned
# into the exceptions SPEC.md names, in one table for every call.

cdef int _raise(Store store, int rc, object key) except -1:
    """Raise the SPEC's exception for a C status. One table for all calls."""
    cdef str where = store._where if store is not None else "?"
    # (key, path): the message is formatted only when printed (errors.py)
    if rc == FKV_ENOTFOUND:
        raise KeyNotFoundError(key, where)
    if rc == FKV_EEXPIRED:
        raise KeyExpiredError(key, where)
    if rc == FKV_EEXISTS:
        raise KeyExistsError(key, where)
    k = _show(key)
    if rc == FKV_EFULL:
        raise StoreFullError(
            f"store {where} is full: writing {k} would pass max_file_size "
            f"{store._max_file_size:,} bytes even after compaction")
    if rc == FKV_ELOCKED:
        raise StoreLockedError(
            f"store {where} is locked by another opener (another process, or "
            f"another DataStore in this one)")
    if rc == FKV_ECLOSED:
        raise StoreClosedError(f"store {where} is closed")
    if rc == FKV_EFORKED:
        raise StoreClosedError(
            f"store {where} was opened before a fork; a child process cannot "
            f"share it: open the store again in the child")
    if rc == FKV_ECORRUPT:
        raise CorruptionError(
            f"store {where} is damaged at byte offset {fkv_last_offset():,} "
            f"(checksum or framing failed)")
    if rc == FKV_ENOTSTORE:
        raise CorruptionError(f"{where} is not a fastkv store (the file was left untouched)")
    if rc == FKV_EIO:
        err = fkv_last_errno()
        raise StoreIOError(err, f"{_os.strerror(err)} on {where}; the store is unchanged")
    if rc == FKV_EFLUSH:
        err = fkv_last_errno()
        raise StoreIOError(
            err, f"a flush to stable storage failed on {where} ({_os.strerror(err)}): "
            f"writes since the last good flush may not be on disk, so every write is "
            f"refused until the store is reopened")
    if rc == FKV_ENOMEM:
        raise MemoryError(f"out of memory in store {where}")
    if rc == FKV_EKEY:
        raise InvalidKeyError(f"key {k} is over {FKV_KEY_MAX_BYTES} bytes of UTF-8")
    if rc == FKV_EVALUE:
        raise ValueTooLargeError(f"value for {k} is over {FKV_VALUE_MAX:,} bytes")
    if rc == FKV_ETTL:
        raise InvalidTTLError(f"ttl for {k} is over {FKV_TTL_MAX_S:,} seconds")
    if rc == FKV_EISDIR:
        raise InvalidPathError(f"{where} is a directory, not a store file")
    if rc == FKV_ECONFIG:
        raise ConfigError(f"an option for {where} is out of range")
    if rc == FKV_ETXN:
        raise TransactionError(
            f"this thread holds an open transaction on store {where}: write through it "
            f"(tx.put, tx.delete, ...) or end it first; this write would wait for it forever")
    if rc == FKV_EDUPLICATE:
        raise InvalidKeyError(f"key {k} is named twice in one group of changes")
    if rc == FKV_EPATHEXISTS:
        raise InvalidPathError(f"{key} exists already; it was left untouched")
    raise RuntimeError(f"fastkv: unexpected status {rc} ({fkv_strerror(rc).decode()})")
