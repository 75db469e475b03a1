"""The reply object, and the builder that assembles it from events.

A :class:`Reply` is what ``%%glm -o NAME`` stores and what the Python API
returns, streamed or not: the answer (``.text``), the thinking kept apart
(``.reasoning``), the fenced code joined (``.code``), token usage, the model,
why it finished, the request id, time taken and estimated cost. It renders as
safe HTML in Jupyter (:mod:`glm_magic.htmlrender`) and has a short plain ``repr``.

A reply cut by an output token limit (``finish_reason`` ``length``) is still
a reply, not an error: it is kept and shown, ``.truncated`` is true,
``.complete`` false, and ``.note`` is the one plain line that says where it
was cut and how to allow more; renderers show that line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .events import (
    Event,
    Finish,
    ReasoningDelta,
    RequestId,
    TextDelta,
    ToolCallDelta,
    Usage,
    Waiting,
)
from .markdown import CodeBlock, code_blocks, join_code
from .models import estimate_cost, format_cost, model_info

__all__ = [
    "CUT_BLOCK_LEFT_OUT",
    "REPLAYED_LABEL",
    "WAITING_NOTE",
    "AgentStep",
    "Reply",
    "ReplyBuilder",
    "ToolCall",
    "answered",
]

#: What every code insertion says when the reply ended inside a code block.
CUT_BLOCK_LEFT_OUT = "the reply was cut inside a code block, which was left out (unfinished)"

#: What a placeholder says while its request waits for a free slot (GlmMagics.max_concurrent).
WAITING_NOTE = "waiting for another GLM reply to finish…"

#: The footer's label of a replayed reply (``{when}``: :func:`answered`).
REPLAYED_LABEL = "replayed · first answered {when} · --refresh for a new answer"


def answered(at: float | None) -> str:
    """``2026-11-30 17:02`` (UTC) for a time in seconds since the epoch; ``?`` when unknown."""
    if at is None:
        return "?"
    from datetime import datetime, timezone

    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M")


@dataclass
class ToolCall:
    """A tool call assembled from its deltas."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class AgentStep:
    """One tool call of an agent task (``%%glm --agent``) and what became of it."""

    #: The tool the model called (as the model spelled it, also when unknown).
    tool: str
    #: The parsed arguments; the raw text when they were not a JSON object.
    arguments: dict[str, object] | str
    #: What the model was told (cut to the result budget, secrets masked).
    result: str
    #: ``ok`` | ``error`` | ``declined`` | ``stopped`` | ``interrupted`` | ``not run``.
    status: str
    #: True / False for a step that needed the user's approval; None for one that did not.
    approved: bool | None = None
    #: Seconds the tool took (the user's approval excluded).
    elapsed: float = 0.0
    #: The model's id for the call.
    call_id: str = ""

    @property
    def code(self) -> str:
        """The Python this step ran (``run_python``), or ""."""
        if self.tool == "run_python" and isinstance(self.arguments, dict):
            code = self.arguments.get("code")
            return code if isinstance(code, str) else ""
        return ""


@dataclass
class Reply:
    """One model reply (possibly partial when an error or a Stop cut it short).

    For an agent task it is the whole task: the text of every turn, the steps,
    and usage summed over all its requests.
    """

    text: str = ""
    reasoning: str = ""
    model: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    request_id: str | None = None
    elapsed: float = 0.0
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: One line saying why the reply is incomplete ("" when it is complete).
    error: str = ""
    #: The output cap the request carried (``max_tokens``); ``None`` when none was sent.
    max_tokens: int | None = None
    #: The reply store's key for the request (a hash; see ``glm_magic.core.store``), or "".
    key: str = ""
    #: When the reply was first answered (seconds since the epoch); ``None``: unknown.
    answered_at: float | None = None
    #: Shown from the reply store or a notebook's saved output, with no request made.
    replayed: bool = False
    #: An agent task's tool calls in order (empty for a plain reply).
    steps: list[AgentStep] = field(default_factory=list)
    #: Requests this reply took (an agent task makes one per turn).
    requests: int = 1

    @property
    def ran_code(self) -> str:
        """The code of an agent task's approved steps that ran without error, as one cell.

        Failed steps are left out: the model's fix of a failing step follows it.
        """
        ran = [s.code.strip("\n") for s in self.steps if s.approved and s.status == "ok"]
        return "\n\n".join(code for code in ran if code)

    @property
    def complete(self) -> bool:
        """True when the model finished normally and nothing went wrong."""
        return not self.error and self.finish_reason in ("stop", "tool_calls")

    @property
    def truncated(self) -> bool:
        """True when an output token limit cut the reply (``finish_reason`` ``length``)."""
        return self.finish_reason == "length" and not self.error

    @property
    def note(self) -> str:
        """One plain line for a cut reply: where it was cut and how to allow more; else ""."""
        if not self.truncated:
            return ""
        n = self.usage.completion_tokens if self.usage is not None else None
        cut = f"Cut at {n:,} tokens" if n else "Cut at the output token limit"
        info = model_info(self.model)
        maximum = f"{info.max_output:,}"
        if self.max_tokens is not None:
            if info.known and self.max_tokens >= info.max_output:
                return (
                    f"{cut}: your max_tokens ({self.max_tokens:,}) is {self.model}'s maximum "
                    "output; ask for a shorter answer, or ask it to continue"
                )
            return (
                f"{cut}: your max_tokens cap ({self.max_tokens:,}) was reached; allow more "
                "with --max-tokens N (or GlmMagics.max_tokens)"
            )
        if info.known and n is not None and n >= info.max_output:
            return (
                f"{cut}: {self.model}'s maximum output ({maximum} tokens in the catalog) was "
                "reached, no max_tokens was set; ask for a shorter answer, or ask it to continue"
            )
        upto = f" (up to {maximum}, {self.model}'s maximum)" if info.known else ""
        return (
            f"{cut}: the server's own output limit (no max_tokens was set); allow more "
            f"with --max-tokens N{upto}"
        )

    @property
    def code_blocks(self) -> list[CodeBlock]:
        """The fenced code blocks of the answer, in order."""
        return code_blocks(self.text)

    @property
    def code(self) -> str:
        """The answer's Python code blocks joined into one runnable cell.

        When the reply was cut short (token limit, stop, error) inside a code
        block, that unfinished block is left out (see :attr:`cut_code`).
        """
        return join_code(self.text, closed_only=not self.complete)

    @property
    def cut_code(self) -> str:
        """The code of the block a cut-short reply ended inside, which ``.code`` leaves out."""
        if self.complete:
            return ""
        blocks = code_blocks(self.text)
        if not blocks or blocks[-1].closed:
            return ""
        last = blocks[-1]
        # Only a block .code would have taken counts (a cut shell sample does not).
        taken = last.is_python or not any(b.is_python for b in blocks)
        return last.code if taken and last.code.strip() else ""

    @property
    def cost(self) -> float | None:
        """Estimated USD cost from the catalog's prices (``None`` when unknown)."""
        if self.usage is None:
            return None
        return estimate_cost(
            model_info(self.model),
            self.usage.prompt_tokens,
            self.usage.completion_tokens,
            self.usage.cached_tokens or 0,
        )

    def footer(self) -> str:
        """The one-line summary: model, tokens, time and estimated cost (a replay says so)."""
        parts = [self.model or "?"]
        if self.steps or self.requests > 1:
            parts.append(f"{len(self.steps)} step{'' if len(self.steps) == 1 else 's'}")
            parts.append(f"{self.requests} request{'' if self.requests == 1 else 's'}")
        if self.usage is not None:
            tokens = f"{self.usage.prompt_tokens:,} in / {self.usage.completion_tokens:,} out"
            if self.usage.cached_tokens:
                tokens += f" ({self.usage.cached_tokens:,} cached)"
            parts.append(tokens)
        cost = self.cost
        if self.replayed:
            cost = None  # it cost nothing now; its original cost is in the provenance
        else:
            parts.append(f"{self.elapsed:.1f} s")
        if cost is not None:
            parts.append(format_cost(cost))
        if self.finish_reason not in (None, "stop", "tool_calls"):
            parts.append(f"finish: {self.finish_reason}")
        if self.error:
            parts.append("incomplete")
        if self.replayed:
            parts.append(REPLAYED_LABEL.format(when=answered(self.answered_at)))
        return " · ".join(parts)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        head = self.text[:60].replace("\n", " ")
        more = "..." if len(self.text) > 60 else ""
        status = "" if self.complete else f", incomplete: {self.error or self.finish_reason}"
        return f"<Reply {self.model} {len(self.text)} chars: {head!r}{more}{status}>"

    def _repr_html_(self) -> str:
        # HTML rendered from the text, never the model's raw Markdown: a notebook
        # renders its own outputs unsanitized (see glm_magic.htmlrender).
        from .htmlrender import REPLY_CSS, reply_html

        inner = reply_html(
            model=self.model,
            text=self.text or "*(empty reply)*",
            reasoning=self.reasoning,
            footer=self.footer(),
            error=self.error or self.note,
            done=True,
        )
        return f'{REPLY_CSS}<div class="glm-reply">{inner}</div>'


class ReplyBuilder:
    """Accumulates events into a :class:`Reply`; cheap to call per token.

    Text pieces are kept in lists and joined on demand (``snapshot``) so a
    long stream does not cost quadratic string building. One builder serves a
    stream: the thread reading HTTP adds, a renderer in another thread reads,
    so adding and joining take a (cheap, uncontended) lock.
    """

    def __init__(self, model: str, *, redact: Callable[[str], str] | None = None) -> None:
        #: Applied to the text and thinking whenever they are read: a reply that echoes the
        #: key is never shown, kept in the conversation or stored with the key in it.
        self.redact = redact
        self._clean: dict[str, tuple[int, str]] = {}
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tools: dict[int, ToolCall] = {}
        self._slots: dict[int, int] = {}  # a reused wire index -> the call it now feeds
        self.model = model
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.request_id: str | None = None
        #: The request's ``max_tokens`` (for the cut note), set by whoever sends it.
        self.max_tokens: int | None = None
        self.started = time.monotonic()
        self.first_token_at: float | None = None
        self.chars = 0
        #: Answer and thinking pieces received (about one token each on GLM servers).
        self.pieces = 0
        self.thinking_pieces = 0
        #: True while the request waits for another reply to the endpoint to finish.
        self.waiting = False
        self._lock = threading.Lock()

    def add(self, event: Event) -> None:
        """Fold one event into the reply."""
        with self._lock:
            self._add(event)

    def _add(self, event: Event) -> None:
        if isinstance(event, RequestId):
            self.request_id = self.request_id or event.request_id
        elif isinstance(event, TextDelta):
            if event.text:
                self._text.append(event.text)
                self.chars += len(event.text)
                self.pieces += 1
                if self.first_token_at is None:
                    self.first_token_at = time.monotonic()
        elif isinstance(event, ReasoningDelta):
            if event.text:
                self._reasoning.append(event.text)
                self.thinking_pieces += 1
                if self.first_token_at is None:
                    self.first_token_at = time.monotonic()
        elif isinstance(event, ToolCallDelta):
            index = self._slots.get(event.index, event.index)
            call = self._tools.get(index)
            if call is not None and event.id and event.name and call.id and event.id != call.id:
                # A new call (id and name) on an index already taken: glm-4.5-flash numbers
                # every call -1 (spec quirk 3), some servers 0. Later pieces follow it. An
                # id change without a name is not a new call: some servers re-id fragments.
                index = self._slots[event.index] = max(self._tools) + 1
                call = None
            if call is None:
                call = self._tools[index] = ToolCall(index=index)
            call.id = call.id or event.id
            call.name = call.name or event.name
            call.arguments += event.arguments
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, Waiting):
            self.waiting = event.waiting
        elif isinstance(event, Finish) and self.finish_reason is None:
            # Some servers send a second finish chunk (spec quirk 3): the first wins.
            self.finish_reason = event.reason

    @property
    def text(self) -> str:
        """The answer text so far."""
        with self._lock:
            if len(self._text) > 1:
                self._text[:] = ["".join(self._text)]
            raw = self._text[0] if self._text else ""
        return self._redacted("text", raw)

    @property
    def reasoning(self) -> str:
        """The thinking so far."""
        with self._lock:
            if len(self._reasoning) > 1:
                self._reasoning[:] = ["".join(self._reasoning)]
            raw = self._reasoning[0] if self._reasoning else ""
        return self._redacted("reasoning", raw)

    def _redacted(self, kind: str, raw: str) -> str:
        """``raw`` through :attr:`redact`, computed once per length (read on every update)."""
        if self.redact is None or not raw:
            return raw
        cached = self._clean.get(kind)
        if cached is not None and cached[0] == len(raw):
            return cached[1]
        clean = self.redact(raw)
        self._clean[kind] = (len(raw), clean)
        return clean

    def status(self) -> str:
        """The one-line status shown while the reply streams (cell and panel alike)."""
        if self.waiting:
            return f"{self.model} · {WAITING_NOTE}"
        n = self.usage.completion_tokens if self.usage else None
        return f"{self.model} · streaming… " + (f"{n} tokens" if n else f"{self.chars:,} chars")

    def _tool_calls(self) -> list[ToolCall]:
        with self._lock:
            return [self._tools[i] for i in sorted(self._tools)]

    def snapshot(self, error: str = "") -> Reply:
        """A :class:`Reply` holding everything received so far."""
        return Reply(
            text=self.text,
            reasoning=self.reasoning,
            model=self.model,
            usage=self.usage,
            finish_reason=self.finish_reason,
            request_id=self.request_id,
            elapsed=time.monotonic() - self.started,
            tool_calls=self._tool_calls(),
            error=error,
            max_tokens=self.max_tokens,
            answered_at=time.time(),
        )
