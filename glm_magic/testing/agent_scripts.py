"""Scripted tool calling for the bundled endpoint: what the "model" does on each agent turn.

A request with a non-empty ``tools`` list is answered as an agent. Everything
here is a pure function of the request messages, so a conversation replayed
with the same tool results gets the same turns, ids aside.

* **Turn number** ``i``: the number of ``assistant`` messages that carry
  ``tool_calls`` (:func:`turn_number`).
* **Explicit script**: a line ``agent-script: <JSON>`` in the *first* ``user``
  message (the JSON runs to the end of that line) is a list of turns. Turn ``i``
  is a string (the final answer, no calls) or ``{"text": "...", "calls": [CALL,
  ...]}`` with CALL ``{"name": ..., "arguments": {...}}`` (sent as compact JSON)
  or ``{"name": ..., "raw_arguments": "..."}`` (sent verbatim, so it may be
  invalid JSON). Past the end the answer is :data:`DONE_TEXT`. In every text
  (not in arguments) ``{last_result}`` becomes the content of the last ``tool``
  message, verbatim (``""`` when there is none). A malformed script raises
  :class:`ScriptError`; the endpoint answers 400 with its one-line message.
* **Built-in demo** (no script line): an analysis that adapts to the tool
  results. With a ``sales`` variable (rows like :func:`demo_sales`) it reads
  the notebook and the variables, describes ``sales``, runs :data:`BUGGY_CODE`
  (``KeyError: 'revenue'``), reads the exception line from the result, runs
  :data:`FIXED_CODE` (revenue = units * price per region, printed as a table)
  and answers in Markdown quoting the printed output. A last result starting
  with ``Declined by the user:`` ends it at once with an answer that says so;
  a result starting with ``Error:`` (a tool error) ends it with that line
  quoted. Without ``sales`` it lists the variables, describes one, runs a small
  ``print(...)`` and answers. Every demo text says it is scripted.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .scripts import message_text

__all__ = [
    "BUGGY_CODE",
    "DECLINED",
    "DONE_TEXT",
    "FIXED_CODE",
    "AgentTurn",
    "ScriptError",
    "ScriptedCall",
    "agent_turn",
    "demo_sales",
    "last_tool_result",
    "turn_number",
]

#: The final answer once an explicit script has no turns left.
DONE_TEXT = "Done (scripted)."
#: How a declined run's tool result starts (the agent plan's wording).
DECLINED = "Declined by the user:"
#: The demo's first attempt: assumes a ``revenue`` key the rows do not have.
BUGGY_CODE = """totals = {}
for row in sales:
    totals[row["region"]] = totals.get(row["region"], 0.0) + row["revenue"]
print(totals)
"""
#: The demo's fix: revenue is units * price, summed per region, printed as a table.
FIXED_CODE = """revenue = {}
for row in sales:
    revenue[row["region"]] = revenue.get(row["region"], 0.0) + row["units"] * row["price"]
print(f"{'region':<8}{'revenue':>12}")
for region, total in sorted(revenue.items(), key=lambda item: -item[1]):
    print(f"{region:<8}{total:>12,.2f}")
print(f"{'total':<8}{sum(revenue.values()):>12,.2f}")
"""
_PEEK_CODE = 'print(len([n for n in globals() if not n.startswith("_")]), "public names")\n'

_SCRIPT_LINE = re.compile(r"^[ \t]*agent-script:[ \t]*(.*)$", re.MULTILINE)
_EXCEPTION = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt))\b:?.*$", re.MULTILINE)
_SALES = re.compile(r"\bsales\b")
# A run's result may label its parts ("stdout:", then "error:" ...; see core.agent_tools).
_STDOUT = re.compile(r"^stdout:\n(.*?)(?:\n\n\w+:[\n ]|\Z)", re.MULTILINE | re.DOTALL)
_ROW = re.compile(r"^(\w+)\s+([\d,]+\.\d\d)\s*$", re.MULTILINE)
_FIRST_NAME = re.compile(r"^[\s|*`>-]*([A-Za-z_]\w*)", re.MULTILINE)
_NOT_NAMES = frozenset({"name", "names", "variable", "variables", "no", "none", "the", "type"})
_STEP = "_(scripted agent step)_"
_FOOTER = "_This is a scripted reply from the offline glm-magic test endpoint: no model ran._"


class ScriptError(ValueError):
    """An ``agent-script:`` line that is not a valid script (the message is one line)."""


@dataclass(frozen=True)
class ScriptedCall:
    """One tool call the scripted model makes: its name and the arguments string sent."""

    name: str
    arguments: str


@dataclass(frozen=True)
class AgentTurn:
    """One scripted agent reply: text (may be empty), tool calls (none: final), reasoning."""

    text: str
    calls: tuple[ScriptedCall, ...] = ()
    reasoning: str = ""


@dataclass
class _Step:
    name: str
    args: dict[str, Any]
    result: str = ""
    code: str = field(init=False)

    def __post_init__(self) -> None:
        code = self.args.get("code")
        self.code = code if isinstance(code, str) else ""


def demo_sales() -> list[dict[str, Any]]:
    """The example notebook's data set: 48 seeded rows of ``region, month, units, price``.

    Recipe (the notebook builds the same list): ``rng = random.Random(7)``; per
    row, in this order, ``region = rng.choice(["north", "south", "east", "west"])``,
    ``month = rng.randint(1, 6)``, ``units = rng.randint(1, 40)``,
    ``price = round(rng.uniform(2.5, 20.0), 2)``.
    """
    rng = random.Random(7)
    rows: list[dict[str, Any]] = []
    for _ in range(48):
        region = rng.choice(["north", "south", "east", "west"])
        month = rng.randint(1, 6)
        units = rng.randint(1, 40)
        price = round(rng.uniform(2.5, 20.0), 2)
        rows.append({"region": region, "month": month, "units": units, "price": price})
    return rows


def turn_number(messages: Sequence[Mapping[str, Any]]) -> int:
    """The number of ``assistant`` messages in *messages* that carry ``tool_calls``."""
    return sum(1 for m in messages if m.get("role") == "assistant" and m.get("tool_calls"))


def last_tool_result(messages: Sequence[Mapping[str, Any]]) -> str:
    """The content of the last ``tool`` message, verbatim (``""`` when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "tool":
            return message_text(message)
    return ""


def agent_turn(messages: Sequence[Mapping[str, Any]]) -> AgentTurn:
    """The scripted agent's reply to *messages*: the explicit script's turn, or the demo's.

    Raises :class:`ScriptError` for a malformed ``agent-script:`` line.
    """
    first = next((m for m in messages if m.get("role") == "user"), None)
    match = _SCRIPT_LINE.search(message_text(first)) if first is not None else None
    if match is not None:
        return _scripted(match.group(1), messages)
    return _demo(messages)


# -- explicit scripts ----------------------------------------------------------


def _scripted(source: str, messages: Sequence[Mapping[str, Any]]) -> AgentTurn:
    try:
        script = json.loads(source)
    except ValueError as exc:
        raise ScriptError(f"agent-script: not valid JSON ({exc})") from None
    if not isinstance(script, list):
        raise ScriptError("agent-script: the script must be a JSON list of turns")
    i = turn_number(messages)
    result = last_tool_result(messages)
    reasoning = f"Following the agent script, turn {i}."
    if i >= len(script):
        return AgentTurn(DONE_TEXT, (), reasoning)
    turn = script[i]
    if isinstance(turn, str):
        return AgentTurn(turn.replace("{last_result}", result), (), reasoning)
    if not isinstance(turn, dict) or not isinstance(turn.get("calls", []), list):
        raise ScriptError(f"agent-script: turn {i} must be a string or {{text, calls}}")
    text = turn.get("text", "")
    if not isinstance(text, str):
        raise ScriptError(f"agent-script: turn {i}: text must be a string")
    calls = tuple(_call(i, call) for call in turn.get("calls", []))
    return AgentTurn(text.replace("{last_result}", result), calls, reasoning)


def _call(i: int, call: Any) -> ScriptedCall:
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise ScriptError(f"agent-script: turn {i}: each call needs a string name")
    if "raw_arguments" in call:
        raw = call["raw_arguments"]
        if not isinstance(raw, str):
            raise ScriptError(f"agent-script: turn {i}: raw_arguments must be a string")
        return ScriptedCall(call["name"], raw)
    arguments = json.dumps(call.get("arguments", {}), ensure_ascii=False, separators=(",", ":"))
    return ScriptedCall(call["name"], arguments)


# -- the built-in demo ---------------------------------------------------------


def _history(messages: Sequence[Mapping[str, Any]]) -> list[list[_Step]]:
    """The tool calls of each assistant turn so far, with their results (by ``tool_call_id``)."""
    results = {
        m["tool_call_id"]: message_text(m)
        for m in messages
        if m.get("role") == "tool" and isinstance(m.get("tool_call_id"), str)
    }
    turns: list[list[_Step]] = []
    for message in messages:
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        if not isinstance(calls, list) or not calls:
            continue
        steps: list[_Step] = []
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            function = function if isinstance(function, dict) else {}
            try:
                args = json.loads(function.get("arguments") or "{}")
            except (TypeError, ValueError):
                args = {}
            step = _Step(str(function.get("name") or ""), args if isinstance(args, dict) else {})
            cid = call.get("id") if isinstance(call, dict) else None
            step.result = results.get(cid, "") if isinstance(cid, str) else ""
            steps.append(step)
        turns.append(steps)
    return turns


def _run(text: str, code: str, why: str) -> AgentTurn:
    return AgentTurn(f"{text} {_STEP}", (ScriptedCall("run_python", _args(code=code)),), why)


def _args(**values: Any) -> str:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def _fenced(output: str, limit: int = 1500) -> str:
    """*output* (untrusted) in a ``text`` fence longer than any backtick run inside it."""
    body = output.strip("\n")
    body = body if len(body) <= limit else body[:limit] + "\n…"
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{body}\n{fence}"


def _printed(result: str) -> str:
    """What a run printed: the ``stdout:`` section of a run's result when it has one."""
    match = _STDOUT.search(result)
    return match.group(1) if match else result


def _exception_line(result: str) -> str | None:
    if result.startswith("Error:"):
        return result.splitlines()[0]
    lines = [m.group(0).strip() for m in _EXCEPTION.finditer(result)]
    return lines[-1] if lines else None


def _quoted(text: str) -> str:
    """*text* (untrusted) made safe inside inline code: no backticks to end it early."""
    return text.replace("`", "'")


def _final(text: str, why: str) -> AgentTurn:
    return AgentTurn(f"{text}\n\n{_FOOTER}", (), why)


def _demo(messages: Sequence[Mapping[str, Any]]) -> AgentTurn:
    turns = _history(messages)
    if not turns:
        calls = (ScriptedCall("notebook_summary", "{}"), ScriptedCall("list_variables", "{}"))
        text = f"I'll start by looking at the notebook and the variables in your session. {_STEP}"
        return AgentTurn(text, calls, "First see what the notebook and the kernel hold.")
    latest = turns[-1]
    for step in latest:
        # Declined, or not run because nobody could be asked (a headless run).
        if step.result.startswith((DECLINED, "Not run:")):
            return _final(
                "You declined running that step, so I stopped there and ran nothing more. "
                "Run the agent again and approve the step to continue, or run the code "
                "yourself.",
                "The user declined: do not run anything else.",
            )
    step = latest[-1]
    # The last call decides (the first turn's notebook summary may fail outside a notebook).
    if step.result.startswith("Error:"):
        line, tool = _quoted(step.result.splitlines()[0]), _quoted(step.name)
        return _final(f"The `{tool}` tool failed, so I stopped: `{line}`", "A tool failed.")
    if step.name == "list_variables":
        if _SALES.search(step.result):
            text = f"There is a `sales` variable; let me look at its shape and fields. {_STEP}"
            call = ScriptedCall("describe_variable", _args(name="sales"))
            return AgentTurn(text, (call,), "Describe sales before computing anything.")
        name = _first_name(step.result)
        if name is None:
            return _run("No variables to look at, so one small check.", _PEEK_CODE, "Nothing.")
        call = ScriptedCall("describe_variable", _args(name=name))
        return AgentTurn(f"Let me describe `{name}`. {_STEP}", (call,), "Describe one variable.")
    if step.name == "describe_variable":
        if step.args.get("name") == "sales":
            text = "`sales` is a list of rows; I'll total the revenue per region."
            return _run(text, BUGGY_CODE, "Sum revenue per region.")
        return _run("Now a small check in the kernel.", _PEEK_CODE, "Run a harmless print.")
    if step.name == "run_python":
        return _after_run(step)
    return _final(f"Nothing more to do. {DONE_TEXT}", "The script has no step for this.")


def _after_run(step: _Step) -> AgentTurn:
    found = _exception_line(step.result)
    error = _quoted(found) if found is not None else None
    if step.code == BUGGY_CODE and error is not None and error.startswith("KeyError"):
        text = (
            f"That failed with `{error}`: the rows have no `revenue` field. "
            "Revenue is `units * price`, so I'll compute it from those."
        )
        return _run(text, FIXED_CODE, "Read the error; compute revenue from units and price.")
    if error is not None:
        return _final(f"The code failed with `{error}`, so I stopped here.", "The run failed.")
    if step.code != FIXED_CODE:
        return _final(f"The code ran and printed:\n\n{_fenced(_printed(step.result))}", "Report.")
    rows = [(region, total) for region, total in _ROW.findall(step.result) if region != "total"]
    lead = f"**{rows[0][0]}** leads with {rows[0][1]}. " if rows else ""
    return _final(
        "## Revenue per region\n\n"
        f"Revenue is `units * price` summed per region:\n\n{_fenced(_printed(step.result))}\n\n"
        f"{lead}The first attempt failed because the rows have no `revenue` field; "
        "the fixed code computes it from `units` and `price`.",
        "Summarise the printed table.",
    )


def _first_name(listing: str) -> str | None:
    for name in _FIRST_NAME.findall(listing):
        if name.lower() not in _NOT_NAMES and name != "sales":
            return str(name)
    return None
