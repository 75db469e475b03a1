"""The notebook agent's tools: what the model sees (JSON schemas) and the reading tools.

Reading tools run without asking and go through the context code, so what they
say is what ``--context`` would send: the live notebook when the bridge is on
(unsaved edits, Markdown cells), else the history; variables summarised by
:func:`~glm_magic.context.vars.summarize_variable` (secret-looking names give
the type only). Every result is masked by the loop before the model sees it.

The two tools that act (``run_python``, ``insert_cell``) are done by an
:class:`Actions` object the surface provides (the kernel's is in
:mod:`glm_magic.ipython.agent`); ``run_python`` always needs approval.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ToolError

if TYPE_CHECKING:
    from ..bridge import Snapshot
    from .agent import ToolResult

__all__ = ["ACTING", "TOOL_SCHEMAS", "Actions", "NotebookTools"]

#: How many cells and variables a listing shows at most.
_MAX_LISTED = 200
_SUMMARY_CHARS = 160


def _tool(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    parameters: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


#: The tools, as the request's ``tools`` list (documented in README's Agent section).
TOOL_SCHEMAS: list[dict[str, Any]] = [
    _tool(
        "notebook_summary",
        "List the notebook's cells: execution count, status (ok or error), and output types.",
        {},
        [],
    ),
    _tool(
        "read_cell",
        "Read one executed cell's source and outputs (text; images are described).",
        {"cell": {"type": ["integer", "string"], "description": "Its execution count, e.g. 3"}},
        ["cell"],
    ),
    _tool(
        "list_variables",
        "List the user's variables: name, type and a one-line summary.",
        {},
        [],
    ),
    _tool(
        "describe_variable",
        "Describe one variable: for a DataFrame its shape, dtypes, first rows and missing "
        "values; otherwise its type, length and a short repr.",
        {"name": {"type": "string", "description": "The variable's name"}},
        ["name"],
    ),
    _tool(
        "run_python",
        "Run Python code in the user's kernel (the user approves each run). Variables you "
        "create stay. Returns printed output, the value of the last expression, or the error.",
        {"code": {"type": "string", "description": "The code to run"}},
        ["code"],
    ),
    _tool(
        "insert_cell",
        "Insert a cell below the agent's cell, for the user to keep (it is not run).",
        {
            "cell_type": {"type": "string", "enum": ["code", "markdown"]},
            "source": {"type": "string", "description": "The cell's text"},
        },
        ["cell_type", "source"],
    ),
]

#: Tools that act on the user's kernel, and so need approval.
ACTING = frozenset({"run_python"})


def _first_line(source: str) -> str:
    return (source.strip().splitlines() or [""])[0][:80]


class Actions(Protocol):
    """The acting tools, done by the surface that owns the kernel and the notebook."""

    def run(self, code: str) -> str | ToolResult:
        """Run approved code; a summary of what it did (raises ``StoppedError`` on interrupt)."""

    def insert(self, cell_type: str, source: str) -> str:
        """Insert a cell below the agent's cell; one line saying where."""


def _string(arguments: Mapping[str, Any], name: str) -> str:
    value = arguments.get(name)
    if not isinstance(value, str):
        raise ToolError(f"the argument {name!r} must be a string")
    return value


class NotebookTools:
    """The six tools over one shell (used by duck typing; IPython is never imported)."""

    def __init__(self, shell: Any, actions: Actions) -> None:
        self.shell = shell
        self.actions = actions

    def schemas(self) -> list[dict[str, Any]]:
        """The function tools as the request's ``tools`` list."""
        return TOOL_SCHEMAS

    def names(self) -> list[str]:
        """The tool names, in the order of :meth:`schemas`."""
        return [t["function"]["name"] for t in TOOL_SCHEMAS]

    def needs_approval(self, name: str) -> bool:
        """True for ``run_python``."""
        return name in ACTING

    def call(self, name: str, arguments: dict[str, Any]) -> str | ToolResult:
        """Run one tool; raises :class:`ToolError` with one line for the model."""
        if name == "run_python":
            code = _string(arguments, "code")
            if not code.strip():
                raise ToolError("the code is empty")
            return self.actions.run(code)
        if name == "insert_cell":
            kind = _string(arguments, "cell_type")
            if kind not in ("code", "markdown"):
                raise ToolError("cell_type must be 'code' or 'markdown'")
            return self.actions.insert(kind, _string(arguments, "source"))
        if name == "notebook_summary":
            return self._summary()
        if name == "read_cell":
            return self._read_cell(arguments.get("cell"))
        if name == "list_variables":
            return self._variables()
        if name == "describe_variable":
            return self._describe(_string(arguments, "name"))
        raise ToolError(f"there is no tool named {name!r}")

    # -- reading -----------------------------------------------------------------------

    def _cells(self) -> dict[int, Any]:
        from ..context.cells import cells_from_shell
        from ..context.live import live_cells

        live = live_cells(self.shell)
        if live is not None:
            return live
        records, _ = cells_from_shell(self.shell)
        running = getattr(self.shell, "execution_count", None)
        return {n: r for n, r in records.items() if n != running}

    def _snapshot(self) -> Snapshot | None:
        """The live notebook from the bridge (``None``: no bridge, or no snapshot yet)."""
        from ..bridge import endpoint

        found = endpoint(self.shell)
        return found.live_snapshot() if found is not None else None

    def _summary(self) -> str:
        snap = self._snapshot()
        lines = []
        if snap is not None:
            lines.append(f"notebook {snap.path or '(unsaved)'}: {len(snap.cells)} cells")
            for cell in snap.cells[:_MAX_LISTED]:
                count = cell.execution_count if cell.execution_count is not None else " "
                kinds = sorted({str(o.get("output_type", "?")) for o in cell.outputs})
                status = "error" if "error" in kinds else "ok"
                first = _first_line(cell.source)
                mark = " (the agent's cell)" if cell.id == snap.running_cell else ""
                lines.append(
                    f"- id {cell.id} [{count}] {cell.cell_type}, {status}, "
                    f"outputs: {', '.join(kinds) or 'none'}{mark}: {first}"
                )
            return "\n".join(lines)
        cells = self._cells()
        lines.append(f"{len(cells)} executed cells (from the kernel's history; no cell ids)")
        for n, record in list(cells.items())[-_MAX_LISTED:]:
            status = "error" if record.error else "ok"
            first = _first_line(record.source)
            lines.append(f"- [{n}] code, {status}, {len(record.outputs)} outputs: {first}")
        return "\n".join(lines)

    def _read_cell(self, which: object) -> str:
        from ..context.cells import shorten

        if isinstance(which, str):
            digits = which.strip().lstrip("[").rstrip("]")  # "[3]", as a model may write it
            if not digits.isdigit():
                found = self._by_id(which)
                if found is None:
                    raise ToolError(f"no cell has the id {which!r}; see notebook_summary")
                return found
            which = int(digits)
        if not isinstance(which, int) or isinstance(which, bool):
            raise ToolError("cell must be an execution count (integer) or a cell id")
        cells = self._cells()  # only now: reading by id needs no history
        record = cells.get(which)
        if record is None:
            known = ", ".join(str(n) for n in list(cells)[-20:]) or "none"
            raise ToolError(f"no executed cell [{which}]; executed cells: {known}")
        parts = [f"cell [{which}] source:\n{record.source}"]
        for i, text in enumerate(record.outputs, 1):
            parts.append(f"output {i}:\n{shorten(text, 2000)}")
        if record.error:
            parts.append(f"error:\n{shorten(record.error, 2000)}")
        return "\n\n".join(parts)

    def _by_id(self, cell_id: str) -> str | None:
        from ..context.cells import render_output, shorten

        snap = self._snapshot()
        for cell in snap.cells if snap is not None else ():
            if cell.id == cell_id:
                parts = [f"cell {cell_id} ({cell.cell_type}) source:\n{cell.source}"]
                for i, output in enumerate(cell.outputs, 1):
                    text, _ = render_output(output)
                    parts.append(f"output {i}:\n{shorten(text, 2000)}")
                return "\n\n".join(parts)
        return None

    def _user_variables(self) -> dict[str, object]:
        ns: Mapping[str, object] = getattr(self.shell, "user_ns", {}) or {}
        hidden: Mapping[str, object] = getattr(self.shell, "user_ns_hidden", {}) or {}
        found = {}
        for name, value in ns.items():
            if name.startswith("_") or name in hidden or inspect.ismodule(value):
                continue
            if name in ("In", "Out", "exit", "quit", "get_ipython"):
                continue
            found[name] = value
        return found

    def _variables(self) -> str:
        from ..context.vars import summarize_variable

        names = self._user_variables()
        if not names:
            return "no user variables yet"
        lines = [f"{len(names)} variables:"]
        for name, value in list(names.items())[:_MAX_LISTED]:
            summary = summarize_variable(name, value, max_chars=_SUMMARY_CHARS)
            lines.append(f"- {name}: {summary.splitlines()[0] if summary else ''}")
        return "\n".join(lines)

    def _describe(self, name: str) -> str:
        from ..context.vars import summarize_variable

        variables = self._user_variables()
        if name not in variables:
            raise ToolError(f"there is no variable named {name!r}; see list_variables")
        return f"{name}: {summarize_variable(name, variables[name], max_chars=3000)}"
