"""The C core compiles with MSVC as well as GCC and clang: compiler
builtins and GCC-only syntax appear only in the platform layer
(src_c/platform.h, src_c/platform_win32.h), which maps them for each
compiler. The wheels for Windows are built with MSVC, which nothing on a
Linux machine runs, so this check is what stands between a GCC-ism and a
broken Windows build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src_c"
PLATFORM = {"platform.h", "platform_win32.h"}

# what MSVC does not know, with the reason printed on a hit
GCC_ONLY = {
    r"\b__atomic_\w+": "GCC atomic builtin (use fkv_atomic_* from platform.h)",
    r"\b__sync_\w+": "GCC legacy atomic builtin",
    r"\b__ATOMIC_\w+": "GCC memory order (use FKV_RELAXED.. from platform.h)",
    r"\b__builtin_\w+": "GCC builtin",
    r"\b__BYTE_ORDER__\b|\b__ORDER_\w+__": "GCC predefined macro (use FKV_LITTLE_ENDIAN)",
    r"\b__attribute__\b": "GCC attribute",
    r"\b(__)?typeof(__)?\s*\(": "typeof (C23; MSVC's C has none before VS 17.9)",
    r"\(\{": "statement expression",
    r"\b__thread\b": "GCC thread-local (use FKV_THREAD_LOCAL)",
    r"\b__int128\b": "128-bit integer",
    r"\b(__)?asm(__)?\b\s*(volatile\s*)?\(": "inline assembly",
    r"\?\s*:": "the elvis operator (GNU)",
    r"\bcase\b[^:\n]*\.\.\.": "case range (GNU)",
}


def without_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(\\.|[^"\\\n])*"', '""', text)  # string literals


def sources() -> list[Path]:
    return sorted(p for p in SRC.iterdir() if p.suffix in (".c", ".h") and p.name not in PLATFORM)


def test_the_sources_are_found() -> None:
    names = {p.name for p in sources()}
    assert {"store.c", "snapshot.c", "read.c", "file_map.c"} <= names


@pytest.mark.parametrize("path", sources(), ids=lambda p: p.name)
def test_no_gcc_only_construct_outside_the_platform_layer(path: Path) -> None:
    code = without_comments(path.read_text(encoding="utf-8"))
    hits = []
    for pattern, why in GCC_ONLY.items():
        for m in re.finditer(pattern, code):
            line = code.count("\n", 0, m.start()) + 1
            hits.append(f"{path.name}:{line}: {m.group(0)!r}: {why}")
    assert not hits, "\n".join(hits)


def test_the_check_finds_what_it_looks_for() -> None:
    sample = "int x = __atomic_load_n(&y, __ATOMIC_RELAXED); /* __builtin_expect */ z = a ?: b;"
    code = without_comments(sample)
    found = [p for p in GCC_ONLY if re.search(p, code)]
    assert len(found) == 3  # the atomic, its order and the elvis; not the comment
