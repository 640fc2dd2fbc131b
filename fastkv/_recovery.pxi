# verify and repair of a store file, with progress counters.
# Included by _core.pyx (one module: these share its C declarations).

# ---- verify and repair -------------------------------------------------------

cdef class Progress:
    """Bytes done of a compact, verify or repair that is running in another
    thread; the C core updates it without the GIL, readers poll it."""

    cdef fkv_progress _p

    @property
    def done(self):
        cdef uint64_t done, total
        fkv_progress_read(&self._p, &done, &total)
        return done

    @property
    def total(self):
        cdef uint64_t done, total
        fkv_progress_read(&self._p, &done, &total)
        return total


cdef dict _report(fkv_verify_report *rep):
    return {
        "ok": bool(rep.header_ok) and rep.damaged_regions == 0,
        "file_bytes": rep.file_bytes,
        "header_ok": bool(rep.header_ok),
        "intact_records": rep.intact_records,
        "puts": rep.puts,
        "tombstones": rep.tombstones,
        "groups": rep.groups,
        "damaged_regions": rep.damaged_regions,
        "damaged_bytes": rep.damaged_bytes,
        "first_damage_offset": (None if rep.first_damage_offset == <uint64_t>-1
                                else rep.first_damage_offset),
        "torn_tail_bytes": rep.torn_tail_bytes,
        "live_keys": rep.live_keys,
    }


cdef int _raise_path(int rc, str path) except -1:
    cdef Store where = Store.__new__(Store)
    where._where = path
    return _raise(where, rc, None)


def verify(str path, Progress progress=None):
    """Report on every record of the store file at path (see fastkv.verify)."""
    cdef fkv_verify_report rep
    cdef int rc
    cdef fkv_progress *pr = NULL if progress is None else &progress._p
    encoded = _os.fsencode(path)
    cdef const char *p = encoded
    with nogil:
        rc = fkv_verify(p, &rep, pr)
    if rc != FKV_OK:
        _raise_path(rc, path)
    return _report(&rep)


def repair(str path, backup, Progress progress=None):
    """Salvage the intact records of path into a fresh store (see fastkv.repair)."""
    cdef fkv_verify_report rep
    cdef int rc
    cdef fkv_progress *pr = NULL if progress is None else &progress._p
    encoded = _os.fsencode(path)
    encoded_backup = _os.fsencode(backup) if backup is not None else None
    cdef const char *p = encoded
    cdef const char *b = NULL
    if encoded_backup is not None:
        b = encoded_backup
    with nogil:
        rc = fkv_repair(p, b, &rep, pr)
    if rc != FKV_OK:
        _raise_path(rc, path)
    report = _report(&rep)
    report["salvaged_keys"] = rep.salvaged_keys
    return report
