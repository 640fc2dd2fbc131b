#!/bin/sh
# Debian's gdbm module for an interpreter built without it (pyenv builds skip
# _gdbm when libgdbm-dev is absent at build time). The module is CPython's own
# C extension, so the one packaged for the same 3.x loads into any 3.x build.
# It lands in benchmarks/.gdbm (not in git); stores.py puts it on sys.path.
#     sh benchmarks/gdbm_module.sh      (Debian or Ubuntu; needs apt-get)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python}
if "$py" -c "import _gdbm" 2>/dev/null; then echo "this interpreter has _gdbm already"; exit 0; fi
want=$("$py" -c "import sys; print('%d.%d' % sys.version_info[:2])")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download python3-gdbm >/dev/null 2>&1) || {
    echo "apt-get download python3-gdbm failed"; exit 1; }
dpkg -x "$work"/python3-gdbm_*.deb "$work/x"
so=$(find "$work/x" -name "_gdbm.cpython-*.so" | head -n 1)
case "$so" in
    *"/python$want/"*) ;;
    *) echo "Debian's python3-gdbm is not for Python $want: $so"; exit 1 ;;
esac
mkdir -p "$here/.gdbm"
cp "$so" "$here/.gdbm/"
PYTHONPATH="$here/.gdbm" "$py" -c "import dbm.gnu" && echo "gdbm module in $here/.gdbm"
