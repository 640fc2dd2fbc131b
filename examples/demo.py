"""A short tour of fastkv on the default store location.

Run it with:  python examples/demo.py
The store is $FASTKV_PATH, or default.fkv in your per-user data directory.
Safe to run again: it removes its own keys before creating them.
"""

import fastkv
from fastkv import DataStore

DEMO_KEYS = ("demo:user:42", "demo:session:9")

with DataStore() as db:
    print(f"store file: {db.path}")
    for key in DEMO_KEYS:
        if key in db:
            db.delete(key)

    db.create("demo:user:42", {"name": "Ann", "langs": ["en", "fr"], "admin": False})
    db.create("demo:session:9", {"uid": 42}, ttl=3600)  # gone in an hour
    print("read user     ->", db.read("demo:user:42"))
    print("read session  ->", db.read("demo:session:9"))

    try:
        db.create("demo:user:42", {"name": "Bob"})
    except fastkv.KeyExistsError as err:
        print("create again  ->", type(err).__name__ + ":", err)
    try:
        db.create("demo:bad", {"score": float("nan")})
    except fastkv.InvalidValueError as err:
        print("NaN value     ->", type(err).__name__ + ":", err)

    db.delete("demo:session:9")
    try:
        db.read("demo:session:9")
    except fastkv.KeyNotFoundError as err:
        print("after delete  ->", type(err).__name__ + ":", err)

    st = db.stats()
    print(
        f"live keys: {st['live_keys']}, file: {st['file_bytes']:,} bytes "
        f"({st['dead_bytes']:,} reclaimable), index: {st['index_bytes']:,} bytes"
    )
