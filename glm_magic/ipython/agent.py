"""``%%glm --agent`` in the kernel: approval over stdin, running steps, showing the task.

The loop is :func:`glm_magic.core.agent.run_agent`; this module gives it the
kernel's parts:

* :class:`StdinApprover`: ``input()`` is the one way a *running* cell can hear
  the user (comm messages wait until the cell ends). JupyterLab, Notebook 7,
  VS Code and terminal IPython answer it. With the notebook bridge, an approval
  card answers the same request (:mod:`glm_magic.ipython.bridge_agent`).
  Headless runs (nbclient without stdin) cannot be asked: nothing runs.
* :class:`KernelActions`: an approved step runs with ``shell.run_cell`` (so it
  is in the history, with an execution count); its output is captured and
  summarised for the model. With the bridge it lands in a real code cell below
  the agent's cell, outputs and count included; without it, it is shown in the
  agent's cell, and the approved steps are offered as one cell at the end.
* :class:`KernelView`: each model turn streams through the usual renderer;
  each step shows its call (code highlighted) and a short result. Every string
  from the model or a tool is escaped or rendered by our safe renderer.
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from IPython.core.error import StdinNotImplementedError, UsageError

from ..reply import AgentStep

if TYPE_CHECKING:
    from ..core.agent import ToolResult
    from ..core.runner import Renderer
    from ..reply import Reply
    from .bridge_agent import AgentBridge

#: The loaded :class:`~glm_magic.ipython.magics.GlmMagics` (duck-typed: it imports this module).
GlmMagics = Any

__all__ = [
    "APPROVAL_PROMPT",
    "KernelActions",
    "KernelView",
    "StdinApprover",
    "run_task",
]

#: The exact stdin prompt of an approval (the bridge's card answers the request with it).
APPROVAL_PROMPT = "Run this code? [y]es / [n]o / [a]ll / [q]uit "

_ANSWERS = {"y": "run", "yes": "run", "n": "skip", "no": "skip", "a": "all", "all": "all"}
_ANSWERS.update({"q": "stop", "quit": "stop"})
#: Unclear answers before the step is declined (a stuck stdin must not loop forever).
_MAX_ASKS = 3
#: Characters of a step's result shown in the cell (the model gets up to RESULT_CHARS).
_SHOWN_RESULT = 1200


class StdinApprover:
    """Asks ``Run this code? [y]es / [n]o / [a]ll / [q]uit`` on stdin (and the bridge's card)."""

    def __init__(self, bridge: AgentBridge | None) -> None:
        self.bridge = bridge
        #: Set when stdin is unavailable (headless): nothing is run, the cell says so once.
        self.headless = False

    def ask(self, step: int, name: str, arguments: Mapping[str, Any]) -> str:
        """The user's decision; ``unasked`` when nobody can be asked."""
        if self.headless:
            return "unasked"
        code = str(arguments.get("code", ""))
        approval = self.bridge.ask(step, code, APPROVAL_PROMPT) if self.bridge else None
        decision = "skip"
        try:
            for _ in range(_MAX_ASKS):
                try:
                    answer = input(APPROVAL_PROMPT)
                except (StdinNotImplementedError, EOFError):
                    self.headless = True
                    decision = "unasked"
                    break
                found = _ANSWERS.get(answer.strip().lower())
                if found is not None:
                    decision = found
                    break
                print("Answer y, n, a or q.")
        except KeyboardInterrupt:
            decision = "stop"
            raise
        finally:
            if self.bridge is not None and approval is not None:
                self.bridge.answered(approval, decision)
        return decision


class KernelActions:
    """Runs approved code in the user's kernel and inserts cells (bridge or end-of-task offer)."""

    def __init__(
        self,
        shell: Any,
        bridge: AgentBridge | None,
        model: str,
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.shell = shell
        self.bridge = bridge
        self.model = model
        #: Masks the configured key (and key variables) in everything a step shows.
        self.redact = redact
        #: Cells the model asked to insert when there is no bridge (offered at the end).
        self.pending: list[tuple[str, str]] = []

    def run(self, code: str) -> ToolResult:
        """Run ``code`` with ``run_cell``; the summary the model reads (failed if it raised)."""
        from IPython.utils.capture import capture_output

        from ..core.agent import ToolResult
        from ..errors import StoppedError
        from ..failures import plain_traceback

        shell = self.shell
        redact = self.redact
        count = getattr(shell, "execution_count", None)
        errors: list[dict[str, Any]] = []
        shown_error = shell._showtraceback
        patched = vars(shell).get("_showtraceback")  # someone else's, put back as found

        # ipykernel sends a traceback itself: catch it for this one run (restored below),
        # so it is masked like every other output and, with the bridge, lands in the new cell.
        def keep_error(etype: Any, evalue: Any, stb: list[str]) -> None:
            clean = [redact(line) for line in stb]
            name = getattr(etype, "__name__", str(etype))
            errors.append(
                {
                    "output_type": "error",
                    "ename": name,
                    "evalue": redact(str(evalue)),
                    "traceback": clean,
                }
            )
            if self.bridge is None:
                shown_error(etype, redact(str(evalue)), clean)

        shell._showtraceback = keep_error
        try:
            # A nested run: the display trap is already active, so the capturing
            # display hook below also catches the last expression's value.
            with capture_output() as captured:
                result = shell.run_cell(code, store_history=True)
        finally:
            if patched is None:
                del shell._showtraceback
            else:
                shell._showtraceback = patched
        error = result.error_in_exec or result.error_before_exec
        outputs = self._outputs(captured, redact)
        if self.bridge is not None:
            self.bridge.insert_step(code, outputs + errors, count, provenance={"model": self.model})
        else:
            self._show(outputs)  # the step's output in the agent's cell, where it ran
        if isinstance(error, KeyboardInterrupt):
            raise StoppedError(f"In [{count}] was interrupted while it ran")
        parts = []
        for output in outputs:
            if output["output_type"] == "stream":
                parts.append(f"{output['name']}:\n{output['text']}")
                continue
            data = output["data"]
            plain = data.get("text/plain", "")
            kinds = [k for k in data if k != "text/plain"]
            parts.append(f"output:\n{plain}" if plain else f"output: [{', '.join(kinds)}]")
        if error is not None:
            parts.append(f"error:\n{plain_traceback(error, shell)}")
        where = f"ran as In [{count}]" if count is not None else "ran"
        status = "failed" if error is not None else "finished"
        body = "\n\n".join(parts) if parts else "(no output)"
        return ToolResult(f"{where}, {status}\n\n{body}", failed=error is not None)

    @staticmethod
    def _outputs(captured: Any, redact: Callable[[str], str]) -> list[dict[str, Any]]:
        """The captured output as nbformat outputs, the keys masked in every text."""
        outputs: list[dict[str, Any]] = []
        for name in ("stdout", "stderr"):
            text = getattr(captured, name)
            if text:
                outputs.append({"output_type": "stream", "name": name, "text": redact(text)})
        for output in captured.outputs:
            data = {
                mime: redact(value) if isinstance(value, str) else value
                for mime, value in output.data.items()
            }
            meta = dict(output.metadata or {})
            outputs.append({"output_type": "display_data", "data": data, "metadata": meta})
        return outputs

    @staticmethod
    def _show(outputs: list[dict[str, Any]]) -> None:
        from IPython.display import display

        for output in outputs:
            if output["output_type"] == "stream":
                stream = sys.stdout if output["name"] == "stdout" else sys.stderr
                stream.write(output["text"])
                stream.flush()
            else:
                display(output["data"], raw=True, metadata=output["metadata"])

    def insert(self, cell_type: str, source: str) -> str:
        """Insert a cell below the agent's cell (bridge), or keep it for the end-of-task offer."""
        if self.bridge is not None:
            self.bridge.insert_step(source, [], None, cell_type, provenance={"model": self.model})
            return f"inserted a {cell_type} cell below the agent's cell"
        self.pending.append((cell_type, source))
        return (
            f"kept the {cell_type} cell: this frontend cannot insert cells while a cell runs, "
            "so it is offered to the user when the task ends"
        )


def _step_html(title: str, body: str, css_class: str) -> str:
    from ..htmlrender import REPLY_CSS

    return (
        f'{REPLY_CSS}<div class="glm-reply glm-step {css_class}">'
        f'<div class="glm-step-title">{html.escape(title)}</div>{body}</div>'
    )


class KernelView:
    """Shows a task in the running cell: turns stream, steps are small blocks."""

    def __init__(self, magics: GlmMagics, model: str) -> None:
        self.magics = magics
        self.model = model
        self.rich = getattr(magics.shell, "kernel", None) is not None

    def turn(self) -> Renderer:
        """The usual renderer for one model turn (a turn of tool calls only leaves no output)."""
        renderer: Renderer = self.magics.renderer(self.model, "markdown", quiet_calls=True)
        return renderer

    def _show(self, plain: str, rich: str) -> None:
        if not self.rich:
            print(plain)
            return
        from IPython.display import display

        display({"text/plain": plain, "text/html": rich}, raw=True)

    def calling(self, step: int, name: str, arguments: dict[str, Any] | str) -> None:
        """Show the call: code highlighted, other arguments as JSON text."""
        from ..htmlrender import code_block_html

        title = f"Step {step} · {name}"
        code = arguments.get("code") if isinstance(arguments, dict) else None
        if isinstance(code, str):
            body, plain = code_block_html(code, "python", actions=False), code
        else:
            shown = arguments if isinstance(arguments, str) else json.dumps(arguments, indent=1)
            body = f'<pre class="glm-pre">{html.escape(shown)}</pre>'
            plain = shown
        self._show(f"[{title}]\n{plain}", _step_html(title, body, "glm-step-call"))

    def done(self, step: int, result: AgentStep) -> None:
        """Show what became of the step, its result cut short."""
        from ..interpolate import truncate_middle

        mark = {"ok": "✓", "error": "✗", "declined": "⊘", "not run": "⊘"}.get(result.status, "■")
        title = f"{mark} Step {step} · {result.tool}: {result.status} ({result.elapsed:.1f} s)"
        shown = truncate_middle(result.result, _SHOWN_RESULT)
        body = f'<pre class="glm-pre glm-step-out">{html.escape(shown)}</pre>'
        self._show(f"[{title}]\n{shown}", _step_html(title, body, "glm-step-result"))

    def note(self, text: str) -> None:
        """One plain line."""
        print(f"note: {text}")


def _offer(shell: Any, reply: Reply, pending: list[tuple[str, str]]) -> None:
    """Without the bridge: the approved steps (and kept code cells) as one cell below.

    Markdown the model wanted as cells cannot be offered that way (one code cell is all
    a payload makes): it is printed as text to copy.
    """
    for kind, source in pending:
        if kind == "markdown":
            print(f"note: a Markdown cell the agent wrote (no bridge to insert it):\n{source}")
    code = "\n\n".join(
        [reply.ran_code, *(source for kind, source in pending if kind == "code")]
    ).strip()
    if not code:
        return
    shell.set_next_input(f"# steps of the glm agent task ({reply.model})\n{code}", replace=False)
    print("note: the approved steps are offered as one cell below (also in _glm.ran_code)")


def run_task(magics: GlmMagics, task: str, args: Any) -> Reply:
    """Run one agent task (``%%glm --agent`` / ``%glm agent``) and return its reply."""
    from ..core.agent import AGENT_SYSTEM, Limits, run_agent
    from ..core.agent_tools import NotebookTools
    from ..core.conversation import Conversation
    from ..core.prompt_masking import clean_text
    from ..errors import ConfigError, GlmError
    from .bridge_agent import agent_bridge
    from .options import sampling_overrides

    task = task.strip()
    if not task:
        raise UsageError("the task is empty: write what the agent should do under %%glm --agent")
    overrides = sampling_overrides(args)
    system = overrides.pop("system", None)
    settings = magics.settings(model=args.model, **overrides)
    session = magics.session
    system_text = AGENT_SYSTEM + (f"\n\n{system}" if system else "")
    try:
        settings.require_key()
        prepared = session.prepare(
            task,
            settings,
            system=system_text,
            context=args.context,
            conversation=Conversation(),
        )
    except ConfigError as exc:
        raise UsageError(exc.one_line()) from None
    if prepared.notes:
        print("note: " + "; ".join(prepared.notes))
    shell = magics.shell
    bridge = agent_bridge(shell)
    actions = KernelActions(shell, bridge, settings.model, settings.redactor())
    approver = StdinApprover(bridge)
    view = KernelView(magics, settings.model)
    budget = args.budget if args.budget is not None else magics.agent_budget_usd
    limits = Limits(
        max_steps=args.max_steps if args.max_steps is not None else magics.agent_max_steps,
        budget_usd=budget,
        approve_all=bool(args.yes),
    )
    if args.yes:
        print("note: --yes: every step this task's model writes runs without asking")

    def clean(text: str) -> str:
        return clean_text(text, settings, mask=magics.mask_secrets)[0]

    tools = NotebookTools(shell, actions)
    try:
        reply = run_agent(
            session, prepared.messages, settings, tools, approver, view, limits, clean=clean
        )
    except GlmError as exc:
        if exc.partial is not None:
            _finish(magics, task, exc.partial, approver, actions, args)
        raise
    _finish(magics, task, reply, approver, actions, args)
    return reply


def _finish(
    magics: GlmMagics,
    task: str,
    reply: Reply,
    approver: StdinApprover,
    actions: KernelActions,
    args: Any,
) -> None:
    if approver.headless:
        print(
            "note: nothing was run: this notebook runs without a way to ask you (no stdin); "
            "add --yes to let this task's code run"
        )
    magics.session.remember(task, reply, args.out)
    if actions.bridge is None:
        _offer(magics.shell, reply, actions.pending)
    print(f"agent: {reply.footer()}")
