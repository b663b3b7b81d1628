"""Where results go: file names, the JSON written after every row, and the
README's marked block per device kind.

A complete run of a default mode (``quick``, ``full`` or ``sweep`` with every
op, the mode's sizes, repeats and budget, float32 at ``highest`` precision)
writes ``<platform>-<device>-<mode>.json/.md/.png`` in the results folder: the
committed results. It writes into ``partial/`` while it runs and moves its
files up only when it ends by itself (rows its time budget left out are
listed in its report), so an interrupted run never replaces them. Any other
run (``--ops``, ``--sizes``, ``--repeats``, another ``--budget``, ``--dtype``
or ``--matmul-precision``, ``--smoke``) writes under ``partial/`` with a name
of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def stem(meta: dict) -> str:
    device = meta["device"]
    return f"{device['platform']}-{slug(device['device_kind'])}-{meta['mode']}"


def partial_tag(choices: dict) -> str:
    """A file-name tag for a run that differs from its mode's default, from
    ``choices`` (option -> value, only the options that differ): the options and
    values when short (``budget-60``), else the options and a hash of the values."""
    parts = []
    for option, value in choices.items():
        text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{option}-{text}")
    tag = slug("-".join(parts))
    if len(tag) <= 32:
        return tag
    digest = hashlib.sha1(tag.encode()).hexdigest()[:8]
    return slug("-".join(choices)) + "-" + digest


class Destination:
    """The files of one run: ``working`` paths during it, ``final`` after it."""

    def __init__(self, out: pathlib.Path, name: str, committed: bool):
        self.out = out
        self.name = name
        self.committed = committed
        self.working = out / "partial" / name

    def path(self, suffix: str, final: bool = False) -> pathlib.Path:
        base = self.out / self.name if (final and self.committed) else self.working
        return base.with_name(base.name + suffix)

    def write(self, data: dict, table_md: str) -> None:
        """The JSON first (it holds everything), then the Markdown table; each
        through a temporary file, so a run killed mid-write keeps the last one."""
        self.working.parent.mkdir(parents=True, exist_ok=True)
        _atomic(self.path(".json"), json.dumps(data, indent=1, default=str) + "\n")
        _atomic(self.path(".md"), table_md)

    def finish(self, complete: bool) -> list[pathlib.Path]:
        """Moves a complete committed run's files up; returns the files written."""
        suffixes = [s for s in (".json", ".md", ".png") if self.path(s).exists()]
        if self.committed and complete:
            for s in suffixes:
                os.replace(self.path(s), self.path(s, final=True))
            return [self.path(s, final=True) for s in suffixes]
        return [self.path(s) for s in suffixes]


def _atomic(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def readme_key(meta: dict) -> str:
    platform = meta["device"]["platform"]
    return platform if meta["mode"] in ("quick", "full") else f"{platform}-{meta['mode']}"


def update_readme(
    readme: pathlib.Path, key: str, table_md: str, charts: list[pathlib.Path]
) -> None:
    """Replaces the block between ``<!-- results:<key> -->`` and
    ``<!-- /results:<key> -->`` with this run's report and charts; a missing
    block is added after the last results block (or at the end of the file)."""
    start, end = f"<!-- results:{key} -->", f"<!-- /results:{key} -->"
    text = readme.read_text() if readme.exists() else ""
    links = "".join(
        f"![{c.stem}]({os.path.relpath(c.resolve(), readme.resolve().parent)})\n\n" for c in charts
    )
    block = f"{start}\n{table_md}\n{links}{end}"
    if start in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1] if end in rest else rest
        readme.write_text(f"{before}{block}{after}")
        return
    closings = list(re.finditer(r"<!-- /results:[^>]*-->", text))
    if closings:
        at = closings[-1].end()
        readme.write_text(f"{text[:at]}\n\n{block}{text[at:]}")
    else:
        readme.write_text(f"{text.rstrip()}\n\n## Benchmark results\n\n{block}\n")
