"""MkDocs hooks: the parts of pages generated from the code, and the charts.

- `<!-- generated: cli -->` becomes the help of the `fastkv` command and of
  each subcommand, from its argparse parser (fastkv/cli/commands.py);
- `<!-- generated: openapi -->` becomes the OpenAPI document `fastkv serve`
  answers at /openapi.json, rendered: one table per operation;
- the benchmark charts are drawn by benchmarks/charts.py from the results
  committed under benchmarks/published/ into build/docs-charts/ (again only
  when a results file is newer) and published as benchmarks/charts/*.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
# $FASTKV_DOCS_CHARTS: where the tests draw them (outside the source tree)
CHARTS_SRC = Path(os.environ.get("FASTKV_DOCS_CHARTS", ROOT / "build" / "docs-charts"))
CHARTS_URL = "benchmarks/charts"


def on_config(config: Any, **kwargs: Any) -> Any:
    """`fastkv` from the installed package, for these hooks and for the
    reference's generator: never from the checkout, which has no compiled
    core unless it was built in place, and is on sys.path when MkDocs runs
    from it (`python -m mkdocs`)."""
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    import fastkv  # noqa: F401
    return config


# ---- the command line -------------------------------------------------------

def _cli_help() -> str:
    from fastkv.cli.commands import build_parser

    # the same text on every machine: the formatter's width, and a default
    # store path under a home that is nobody's
    saved = dict(os.environ)
    os.environ.update(COLUMNS="90", HOME="/home/you")
    for name in ("FASTKV_PATH", "XDG_DATA_HOME"):
        os.environ.pop(name, None)
    try:
        return _cli_help_text(build_parser())
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _cli_help_text(parser: argparse.ArgumentParser) -> str:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = ["### fastkv", "", "```text", parser.format_help().rstrip(), "```", ""]
    names: dict[int, list[str]] = {}  # an alias (stats for info) shares its parser
    for name, command in sub.choices.items():
        names.setdefault(id(command), []).append(name)
    for name, command in sub.choices.items():
        if names[id(command)][0] != name:
            continue
        title = ", ".join(f"fastkv {n}" for n in names[id(command)])
        parts += [f"### {title}", "", "```text", command.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


# ---- the HTTP API -------------------------------------------------------------

def _schema(s: dict[str, Any]) -> str:
    if "$ref" in s:
        return s["$ref"].rsplit("/", 1)[-1]
    kind = s.get("type", "")
    if kind == "array":
        return f"array of {_schema(s.get('items', {}))}"
    return kind or "object"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _openapi() -> str:
    from fastkv._version import __version__
    from fastkv.serving.openapi import document

    doc = document(__version__)
    parts = []
    for path, item in doc["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method == "parameters":
                continue
            parts += [f"### `{method.upper()} {path}`", "", _cell(op.get("summary", "")), ""]
            params = shared + op.get("parameters", [])
            if params:
                parts += ["| parameter | in | type | required | description |",
                          "| --- | --- | --- | --- | --- |"]
                parts += [f"| `{p['name']}` | {p['in']} | {_schema(p.get('schema', {}))} | "
                          f"{'yes' if p.get('required') else 'no'} | "
                          f"{_cell(p.get('description', ''))} |" for p in params]
                parts.append("")
            body = op.get("requestBody", {}).get("content", {})
            for ctype, media in body.items():
                parts += [f"Body: `{ctype}`, {_schema(media.get('schema', {}))}.", ""]
            parts += ["| status | answer |", "| --- | --- |"]
            parts += [f"| {code} | {_cell(r.get('description', ''))} |"
                      for code, r in op.get("responses", {}).items()]
            parts.append("")
    parts += ['??? note "The whole document (GET /openapi.json)"', "",
              "    ```json"]
    parts += ["    " + line for line in json.dumps(doc, indent=2).splitlines()]
    parts += ["    ```", ""]
    return "\n".join(parts)


GENERATED = {"<!-- generated: cli -->": _cli_help, "<!-- generated: openapi -->": _openapi}


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    for marker, make in GENERATED.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown


# ---- the charts ----------------------------------------------------------------

def _charts() -> list[Path]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import charts
    finally:
        sys.path.pop(0)
    newest = max(p.stat().st_mtime for p in charts.inputs() if p.exists())
    drawn = sorted(CHARTS_SRC.glob("*.png")) if CHARTS_SRC.is_dir() else []
    if not drawn or min(p.stat().st_mtime for p in drawn) < newest:
        drawn = charts.draw_all(CHARTS_SRC)
    return drawn


def on_files(files: Files, config: Any, **kwargs: Any) -> Files:
    for png in _charts():
        files.append(File.generated(config, f"{CHARTS_URL}/{png.name}", abs_src_path=str(png)))
    return files
