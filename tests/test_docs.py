"""The documentation (docs/, mkdocs.yml and the README):

- every Python example in docs/ and the README runs, in page order, against
  the installed package (sybil reads the pages; a page that talks to a
  server says so in its first line, `<!-- examples: serve -->` or
  `<!-- examples: redis -->`, and gets a real one, whose address replaces
  the page's 127.0.0.1:8765, 6380 or 6379);
- the site builds with MkDocs in strict mode (warnings, broken internal
  links and anchors are errors);
- the reference names every public name of the package (each module's
  `__all__` against the site's objects.inv);
- the RESP reference lists every command the server takes, and the command
  line reference every subcommand;
- the built site renders in a real browser (Debian's chromium, headless):
  the landing page, a tutorial page and the API reference show their
  headings and load every asset; a screenshot of each is kept.
"""

from __future__ import annotations

import functools
import http.server
import importlib
import os
import re
import shutil
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import RedisServer, start_server

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [p for p in sorted(DOCS.rglob("*.md")) + [ROOT / "README.md"]
         if "```python" in p.read_text(encoding="utf-8")]
PUBLIC_MODULES = ("fastkv", "fastkv.aio", "fastkv.errors")
BROWSER_REQUIRED = os.environ.get("FASTKV_REQUIRE_BROWSER") == "1"
DOCS_REQUIRED = os.environ.get("FASTKV_REQUIRE_DOCS") == "1"


def _need(module: str) -> Any:
    """The module, or a skip (a failure where CI promised it is installed)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        why = f"{module} is not installed (pip install '.[docs]')"
        if DOCS_REQUIRED:
            pytest.fail(why + ", and FASTKV_REQUIRE_DOCS=1")
        pytest.skip(why)


def _page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


# ---- the examples -----------------------------------------------------------------


def _needs(text: str) -> list[str]:
    """What the page's examples need: its first line's `<!-- examples: ... -->`."""
    first = text.split("\n", 1)[0]
    m = re.fullmatch(r"<!-- examples: (.+) -->", first.strip())
    return m.group(1).split() if m else [""]


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_example_runs(page: Path, tmp_path: Path,
                            request: pytest.FixtureRequest) -> None:
    _need("sybil")
    from sybil.document import Document
    from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

    text = page.read_text(encoding="utf-8")
    needs, *args = _needs(text)
    if needs == "serve":  # args: more options of fastkv serve
        token = args[args.index("--token") + 1] if "--token" in args else None
        served = start_server(tmp_path / "served.fkv", "--resp-port", "0", token=token)
        request.addfinalizer(served.stop)
        assert served.resp_url is not None
        http_addr = served.url.split("//", 1)[1]
        resp_port = served.resp_url.rsplit(":", 1)[1].split("/")[0]
        text = text.replace("127.0.0.1:8765", http_addr).replace("6380", resp_port)
    elif needs == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        text = text.replace("127.0.0.1:6379", f"127.0.0.1:{server.port}")
    # the same line numbers, so a failure points into the page
    copy = tmp_path / page.name
    copy.write_text(text, encoding="utf-8")
    doc = Document.parse(str(copy), PythonCodeBlockParser(), SkipParser())
    examples = list(doc.examples())
    assert examples, f"{page}: a ```python block sybil did not find"
    try:
        for example in examples:
            example.evaluate()
    finally:
        for value in list(doc.namespace.values()):  # stores the page left open
            close = getattr(value, "close", None)
            if type(value).__name__ in ("DataStore", "RedisStore", "Client") and close:
                close()


# ---- the site -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built once, as `mkdocs build --strict` builds it."""
    _need("mkdocs")
    _need("mkdocstrings")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "FASTKV_DOCS_CHARTS": str(out.parent / "charts")}
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                          str(ROOT / "mkdocs.yml"), "-d", str(out)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-6000:]
    return out


def test_the_site_builds_in_strict_mode(site: Path) -> None:
    for page in ("index.html", "tutorial/first-store/index.html", "reference/api/index.html",
                 "reference/cli/index.html", "reference/http/index.html",
                 "benchmarks/index.html"):
        assert (site / page).is_file(), page
    for chart in ("peers", "scale", "reopen", "memory", "serving"):
        assert (site / "benchmarks" / "charts" / f"{chart}.png").stat().st_size > 1000


def _inventory(site: Path) -> set[str]:
    """The names in the site's objects.inv (Sphinx's format, version 2)."""
    raw = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = raw.index(b"\n", header_end) + 1
    body = zlib.decompress(raw[header_end:]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines() if line.strip()}


def test_the_reference_names_every_public_name(site: Path) -> None:
    names = _inventory(site)
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            where = {f"{module_name}.{name}"}
            if hasattr(obj, "__module__") and hasattr(obj, "__qualname__"):
                where.add(f"{obj.__module__}.{obj.__qualname__}")
            if not where & names:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"not in the reference: {missing}"


def test_the_resp_reference_lists_every_command() -> None:
    from fastkv.serving.resp_commands import COMMANDS

    page = (DOCS / "reference" / "resp.md").read_text(encoding="utf-8")
    listed = {w.upper() for w in re.findall(r"`([A-Za-z]+)", page)}
    listed |= {w.upper() for w in re.findall(r"\b([A-Z]{3,})\b", page)}
    missing = sorted(c.decode() for c in COMMANDS if c.decode().upper() not in listed)
    assert not missing, f"commands the server takes that resp.md does not list: {missing}"


def test_the_cli_reference_has_every_command(site: Path) -> None:
    import argparse

    from fastkv.cli.commands import build_parser

    html = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in sub.choices:
        assert f"fastkv {name}" in html, name


# ---- a real browser ------------------------------------------------------------------------


class _Logged(http.server.SimpleHTTPRequestHandler):
    seen: list[tuple[str, int]] = []

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        self.seen.append((self.path, int(code)))

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served_site(site: Path) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    handler = functools.partial(_Logged, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Logged.seen
    httpd.shutdown()


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        why = "chromium is not installed (apt-get install chromium)"
        if BROWSER_REQUIRED:
            pytest.fail(why + ", and FASTKV_REQUIRE_BROWSER=1")
        pytest.skip(why)
    return found


BROWSER_PAGES = {
    "landing": ("", ["fastkv", "Install"]),
    "tutorial": ("tutorial/first-store/", ["A first store", "Create, read, delete"]),
    "reference": ("reference/api/", ["fastkv.DataStore", "create", "Limits"]),
}


@pytest.mark.parametrize("which", list(BROWSER_PAGES))
def test_pages_render_in_a_browser(which: str, served_site: tuple[str, list[tuple[str, int]]],
                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    browser = _chromium()
    base, seen = served_site
    path, headings = BROWSER_PAGES[which]
    shots = Path(os.environ.get("FASTKV_SCREENSHOTS") or tmp_path_factory.getbasetemp() /
                 "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / f"{which}.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=1280,1400", "--virtual-time-budget=5000"]
    seen.clear()
    dom = subprocess.run([browser, *flags, "--dump-dom", f"{base}/{path}"],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-3000:]
    requested = list(seen)
    subprocess.run([browser, *flags, f"--screenshot={shot}", f"{base}/{path}"],
                   capture_output=True, text=True, timeout=120, check=True)
    print(f"screenshot of the {which} page: {shot}")
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    for heading in headings:
        assert heading in text, f"{heading!r} not rendered on /{path}"
    assert any(p.endswith(".css") for p, _ in requested), requested  # assets were asked for
    failed = [(p, code) for p, code in requested if code >= 400]
    assert not failed, f"assets that failed to load on /{path}: {failed}"
    assert shot.stat().st_size > 10_000


# ---- the docstrings the reference is made of -------------------------------------------


def _public_classes() -> list[type]:
    import fastkv.aio
    from fastkv.client import Client
    from fastkv.redis.aio import AsyncRedisStore
    from fastkv.redis.store import RedisStore
    from fastkv.store_protocol import KeyValueStore

    return [fastkv.DataStore, fastkv.Transaction, fastkv.aio.AsyncDataStore,
            fastkv.aio.AsyncTransaction, RedisStore, AsyncRedisStore, Client, KeyValueStore]


def test_every_public_name_has_a_docstring() -> None:
    import inspect

    import fastkv

    missing = []
    for cls in _public_classes():
        if not inspect.getdoc(cls):
            missing.append(cls.__name__)
        for name, member in inspect.getmembers(cls):
            if name.startswith("_"):
                continue
            doc = member.__doc__ if isinstance(member, property) else inspect.getdoc(member)
            if callable(member) or isinstance(member, property):
                # Cython puts the signature first (embedsignature): text must follow
                text = re.sub(r"\A[\w.]+\(.*\)(\s*->\s*.*)?\n?", "", (doc or "").strip())
                if not text.strip():
                    missing.append(f"{cls.__name__}.{name}")
    for name in fastkv.__all__:
        obj = getattr(fastkv, name)
        if callable(obj) and not inspect.getdoc(obj):
            missing.append(name)
    assert not missing, f"public names without a docstring: {missing}"


def test_raises_sections_are_in_one_style() -> None:
    """Google style, as the reference's generator reads it: `Name: when`."""
    import inspect

    bad = []
    for cls in _public_classes():
        for name, member in inspect.getmembers(cls):
            doc = inspect.getdoc(member) or ""
            if "Raises:" not in doc:
                continue
            block = doc.split("Raises:", 1)[1].strip("\n").split("\n\n", 1)[0]
            entries = [line for line in block.splitlines() if line and not line.startswith("    ")]
            if not all(re.match(r"[A-Z]\w*Error: \S", line) for line in entries):
                bad.append(f"{cls.__name__}.{name}")
    assert not bad, f"Raises: sections not in `Name: when` form: {bad}"


def test_the_readme_links_to_files_that_exist() -> None:
    """The README is read on the code host too, outside the site: its
    relative links (pages under docs/, the chart, the changelog) must resolve."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"\w+://", t)]
    assert local, "no relative link found: the pattern is wrong"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"
