"""Explain and fix failing cells: finding the cells that matter, and the prompts.

Shared by ``%glm explain`` / ``%glm fix``, the panel's buttons and the
``glm-magic`` command line. The root cause of a failure often sits in an
earlier cell (a misspelt column created three cells up), so besides the
failing source and its cleaned traceback we send the earlier cells that
*define* the names the failing code and the traceback use, most recent
definition first, within the budget.

Pure functions of strings and :class:`~glm_magic.failures.Failure`; no I/O.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..failures import Failure
from ..markdown import fenced
from ..masking import mask_secrets
from ..masking_names import SecretText
from ..models import ModelInfo, estimate_tokens

__all__ = [
    "EXPLAIN_SYSTEM",
    "FIX_SYSTEM",
    "AssistPrompt",
    "build_assist_prompt",
    "defined_names",
    "defining_cells",
    "used_names",
]

EXPLAIN_SYSTEM = (
    "You explain Python errors in Jupyter notebooks. Start with the root cause in one or two "
    "plain sentences, naming the exact line (quote it) and, when the cause is in an earlier "
    "cell, which cell. Then say briefly how to fix it. Do not repeat the whole traceback. "
    "Answer in Markdown."
)

FIX_SYSTEM = (
    "You fix failing Python cells in Jupyter notebooks. First give a short diagnosis (one to "
    "three sentences) naming the root cause. Then give exactly ONE fenced ```python block "
    "holding the whole corrected cell, runnable as is (not a diff, no placeholders). If the "
    "real fix belongs in an earlier cell, still give a corrected version of the failing cell "
    "that runs, and say what to change earlier. Answer in Markdown."
)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUOTED_NAME = re.compile(r"""['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")
_BUILTINS = frozenset(dir(builtins))


def _parse(source: str) -> ast.Module | None:
    # Cells may contain IPython syntax (%magics, !shell); blank those lines out.
    cleaned = "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
    )
    try:
        return ast.parse(cleaned)
    except SyntaxError:
        return None


def defined_names(source: str) -> set[str]:
    """Names a cell binds: assignments, defs, classes, imports, for/with/walrus targets."""
    tree = _parse(source)
    if tree is None:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            # df["total"] = ... defines a column the failing cell may read.
            if isinstance(node.value, ast.Name):
                names.add(node.value.id)
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                names.add(node.slice.value)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return names


def used_names(failure: Failure) -> list[str]:
    """Names the failing code and the error message mention, most telling first."""
    ordered: list[str] = []
    # Names quoted in the message first: NameError 'x', KeyError 'col', attribute 'foo'.
    for name in _QUOTED_NAME.findall(failure.evalue):
        if name not in ordered:
            ordered.append(name)
    tree = _parse(failure.source)
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                candidates = [node.id]
            elif isinstance(node, ast.Attribute):
                candidates = [node.attr]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                candidates = [node.value] if _IDENT.fullmatch(node.value) else []
            else:
                continue
            for name in candidates:
                if name not in ordered:
                    ordered.append(name)
    else:
        for name in _IDENT.findall(failure.source):
            if name not in ordered:
                ordered.append(name)
    return [n for n in ordered if n not in _BUILTINS or n in failure.evalue]


def defining_cells(failure: Failure, cells: Mapping[int, str], *, limit: int = 6) -> list[int]:
    """Execution counts of earlier cells defining names the failure uses (newest definition).

    For each used name, the most recent earlier cell that binds it; cells are
    returned in notebook order, at most ``limit`` of them.
    """
    before = failure.execution_count if failure.execution_count is not None else 10**9
    earlier = sorted((n for n in cells if n < before), reverse=True)
    defs = {n: defined_names(cells[n]) for n in earlier}
    chosen: list[int] = []
    every = set().union(*defs.values()) if defs else set()
    wanted = used_names(failure)
    # A name quoted in the error that no cell defines is usually a typo of one
    # that some cell does ("valuez" for "values"): that cell holds the answer.
    for name in _QUOTED_NAME.findall(failure.evalue):
        if name not in every:
            wanted[:0] = difflib.get_close_matches(name, sorted(every), n=1, cutoff=0.75)
    for name in wanted:
        for n in earlier:
            if name in defs[n]:
                if n not in chosen:
                    chosen.append(n)
                break
        if len(chosen) >= limit:
            break
    return sorted(chosen)


@dataclass
class AssistPrompt:
    """What to send for an explain or fix request, and what to tell the user."""

    system: str
    user: str
    related: list[int]
    notes: list[str]
    #: The failure's one-line summary with secrets masked, for notes and history.
    summary: str = ""

    def messages(self) -> list[dict[str, str]]:
        """The chat messages: system, then the user prompt."""
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]


def build_assist_prompt(
    kind: str,
    failure: Failure,
    cells: Mapping[int, str],
    info: ModelInfo,
    *,
    mask: bool = True,
    secrets: Iterable[SecretText] = (),
    reserve: int | None = None,
) -> AssistPrompt:
    """The prompt for ``kind`` ("explain" or "fix") about ``failure``, fitted to ``info``.

    The failing source and traceback always go in; related earlier cells
    are added newest-relevant first while they fit the budget.
    """
    if kind not in ("explain", "fix"):
        raise ValueError(f"kind must be 'explain' or 'fix', not {kind!r}")
    secrets = list(secrets)
    system = EXPLAIN_SYSTEM if kind == "explain" else FIX_SYSTEM
    budget = info.context_window - info.reply_reserve(reserve)
    ask = (
        "Explain why this cell failed."
        if kind == "explain"
        else "Fix this cell: diagnose briefly, then give the whole corrected cell."
    )
    head = (
        f"{ask}\n\n### Failing cell ({failure.label})\n{fenced(failure.source, 'python')}\n\n"
        f"### Traceback\n{fenced(failure.traceback or failure.summary)}\n"
    )
    used = estimate_tokens(system) + estimate_tokens(head)
    notes: list[str] = []
    related: list[int] = []
    sections: list[str] = []
    wanted = defining_cells(failure, cells)
    for n in reversed(wanted):
        section = f"\n### Earlier cell In [{n}]\n{fenced(cells[n], 'python')}\n"
        cost = estimate_tokens(section)
        if used + cost > budget:
            notes.append(f"In [{n}] left out to fit the model's context window")
            continue
        used += cost
        related.append(n)
        sections.append(section)
    related.sort()
    sections.sort(key=lambda s: int(s.split("In [", 1)[1].split("]", 1)[0]))
    if sections:
        head += "\nEarlier cells that define names used above:\n" + "".join(sections)
    user = head
    if mask:
        masked = mask_secrets(user, list(secrets))
        user = masked.text
        if masked.count:
            notes.append(f"{masked.count} secret{'s' if masked.count > 1 else ''} masked")
    # The summary is shown and remembered even when masking is off for what is sent:
    # an error message can quote a secret (the configured key among them).
    summary = mask_secrets(failure.summary, secrets).text
    return AssistPrompt(system, user, related, notes, summary)


def describe(prompt: AssistPrompt, failure: Failure) -> str:
    """One line for the user: what is being sent."""
    extra = (
        f" with earlier cell{'s' if len(prompt.related) > 1 else ''} "
        + ", ".join(f"In [{n}]" for n in prompt.related)
        if prompt.related
        else ""
    )
    return f"{prompt.summary or failure.summary} in {failure.label}{extra}"


def related_sources(cells: Mapping[int, str], numbers: Sequence[int]) -> dict[int, str]:
    """The sources of ``numbers`` that exist in ``cells``."""
    return {n: cells[n] for n in numbers if n in cells}
