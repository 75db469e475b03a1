"""``glm-magic provenance NB.ipynb``: what in a saved notebook GLM generated, and where from.

Lists every GLM reply output (model, when first answered, cost, replayed or
not, the request's key) and every inserted cell: cells written by ``glm-magic
explain/fix`` or ``%glm insert`` (``metadata["glm_magic"]["generated"]``) and
cells inserted by ``--insert`` / ``%glm fix`` (the ``[glm:KEY/CODE]`` mark in
their first line), saying whether an inserted cell's code was edited since.
Nothing is run or trusted: every entry is read as data, and a malformed one
is reported (exit status 1).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..provenance import SavedOutput, read_mark, saved_outputs
from .report import Console

__all__ = ["cmd_provenance", "describe_notebook"]

OK, MALFORMED, ERROR = 0, 1, 2


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(str(s) for s in source) if isinstance(source, list) else str(source)


def _output_line(found: SavedOutput, raw: Mapping[str, Any]) -> str:
    reply = found.reply
    cost = raw.get("cost_usd")
    shown_cost = f"~${cost:.4f}" if isinstance(cost, (int, float)) else "cost unknown"
    when = raw.get("answered_at") if isinstance(raw.get("answered_at"), str) else "time unknown"
    how = "replayed" if raw.get("replayed") is True else "answered"
    return (
        f"cell {found.cell_index + 1}: output  {reply.model} · {how} {when} · {shown_cost} · "
        f"request {reply.request_id or '?'} · key {found.key[:12]}"
    )


def _inserted_line(index: int, cell: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The cell's line (or ``None``), and a problem line for a malformed marker."""
    meta = cell.get("metadata")
    marker = meta.get("glm_magic") if isinstance(meta, Mapping) else None
    mark = read_mark(_source(cell))
    if marker is None and mark is None:
        return None, None
    if marker is not None and not isinstance(marker, Mapping):
        return None, f"cell {index + 1}: its glm_magic metadata is not an object"
    parts: list[str] = []
    if isinstance(marker, Mapping):
        model = marker.get("model")
        created = marker.get("created")
        if not isinstance(model, str) or (created is not None and not isinstance(created, str)):
            return None, f"cell {index + 1}: its glm_magic metadata is malformed"
        parts += [model, f"inserted {created or 'time unknown'}"]
    if mark is not None:
        parts.append(f"key {mark.key_prefix}")
        parts.append("edited since" if mark.edited else "unedited")
    return f"cell {index + 1}: cell    " + " · ".join(parts), None


def describe_notebook(nb: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The listing's lines and the problems found (malformed entries), in cell order."""
    lines: list[str] = []
    problems: list[str] = []
    found = nb.get("cells")
    cells: list[Any] = found if isinstance(found, list) else []
    metas: dict[tuple[int, str], Mapping[str, Any]] = {}
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []) if isinstance(cell, Mapping) else []:
            meta = output.get("metadata") if isinstance(output, Mapping) else None
            entry = meta.get("glm_magic") if isinstance(meta, Mapping) else None
            if isinstance(entry, Mapping) and isinstance(entry.get("key"), str):
                metas[(index, entry["key"])] = entry
    for item in saved_outputs(nb):
        if isinstance(item, str):
            problems.append(item)
        else:
            lines.append(_output_line(item, metas.get((item.cell_index, item.key), {})))
    for index, cell in enumerate(cells):
        if not isinstance(cell, Mapping):
            continue
        line, problem = _inserted_line(index, cell)
        if line:
            lines.append(line)
        if problem:
            problems.append(problem)
    lines.sort(key=lambda text: int(text.split(":", 1)[0].split()[1]))
    return lines, problems


def cmd_provenance(args: argparse.Namespace, console: Console) -> int:
    """Print the listing; 0 when every entry is well formed, 1 when some is not, 2 on no file."""
    path = Path(args.notebook)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        console.note(f"glm-magic: cannot read {path}: {' '.join(str(exc).split())}")
        return ERROR
    if not isinstance(nb, dict):
        console.note(f"glm-magic: {path} is not a notebook")
        return ERROR
    lines, problems = describe_notebook(nb)
    for line in lines:
        console.result(line)
    if not lines:
        console.note(f"no GLM outputs or inserted cells in {path}")
    for problem in problems:
        console.note(f"glm-magic: malformed: {problem}")
    return MALFORMED if problems else OK
