#!/usr/bin/env bash
# Build the C core's own test (core_test.c) and run it:
#   native    with the machine's cc
#   sanitize  the same under AddressSanitizer and UBSan
#   wine      cross-built with mingw-w64 (the Win32 code path) and run under Wine
# Usage: tests/core/run.sh [native|sanitize|wine]... (default: all three).
# A missing compiler or Wine is an error (exit 3) that names the package.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/../../src_c"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
flags=(-std=c11 -Wall -Wextra -Wno-unused-parameter -Werror -I"$src")
posix_sources=()
for f in "$src"/*.c; do
    case "$f" in *_win32.c) ;; *) posix_sources+=("$f") ;; esac
done

need() {
    command -v "$1" > /dev/null || { echo "core test: $1 not found ($2)" >&2; exit 3; }
}

run_native() {
    need "${CC:-cc}" "a C compiler"
    "${CC:-cc}" -O2 -D_GNU_SOURCE "${flags[@]}" -o "$work/core_test" \
        "$here/core_test.c" "${posix_sources[@]}" -pthread
    mkdir -p "$work/native" && "$work/core_test" "$work/native"
}

run_sanitize() {
    need "${CC:-cc}" "a C compiler"
    "${CC:-cc}" -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
        -fno-sanitize-recover=undefined -D_GNU_SOURCE "${flags[@]}" \
        -o "$work/core_test_asan" "$here/core_test.c" "${posix_sources[@]}" -pthread
    mkdir -p "$work/asan" && ASAN_OPTIONS=detect_leaks=1 "$work/core_test_asan" "$work/asan"
}

run_wine() {
    need x86_64-w64-mingw32-gcc "apt-get install gcc-mingw-w64-x86-64"
    local wine=/usr/lib/wine/wine64
    [ -x "$wine" ] || wine="$(command -v wine64 || true)"
    [ -n "$wine" ] && [ -x "$wine" ] || { echo "core test: wine64 not found (apt-get install wine64)" >&2; exit 3; }
    x86_64-w64-mingw32-gcc -O2 "${flags[@]}" -o "$work/core_test.exe" \
        "$here/core_test.c" "$src"/*.c
    mkdir -p "$work/wine"
    # a prefix of our own, made on first use; no debug chatter
    export WINEPREFIX="${FASTKV_WINEPREFIX:-$work/prefix}" WINEDEBUG=-all
    local rc=0
    "$wine" "$work/core_test.exe" "$work/wine" || rc=$?
    # let the prefix's server save and go before the prefix is removed
    "$(dirname "$wine")/wineserver" -w 2> /dev/null || wineserver -w 2> /dev/null || true
    return $rc
}

modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(native sanitize wine)
for mode in "${modes[@]}"; do
    echo "== core test: $mode"
    "run_$mode"
done
