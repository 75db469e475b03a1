"""What a person sees and does with the notebook agent in JupyterLab 4 / Notebook 7.

Helpers for the agent's browser tests (``test_bridge_agent.py`` and the agent's
own): the approval card under the agent's cell, its buttons by accessible name,
JupyterLab's input box for the same prompt, the step cells inserted below. Until
``%%glm --agent`` exists, :func:`stand_in_agent` is a cell that does what the
agent does around approval: ``AgentBridge.ask``, then ``input(prompt)``, then
``AgentBridge.answered``.
"""

from __future__ import annotations

import re
from typing import Any

from .jupyter import OUTPUT
from .test_browser import poll

#: The approval card, JupyterLab's stdin box (its text input and the prompt beside it).
CARD = ".glm-bridge-approval"
STDIN_INPUT = ".jp-Stdin-input"
STDIN_PROMPT = ".jp-Stdin-prompt"
#: The accessible name of each answer's button on the card of step N.
BUTTON_NAMES = {
    "run": "Run step {n}",
    "skip": "Skip step {n}",
    "all": "Run all for this task, from step {n}",
    "stop": "Stop the agent at step {n}",
}
#: What ``input()`` returns for each answer.
REPLIES = {"run": "y", "skip": "n", "all": "a", "stop": "q"}


def agent_prompt(step: int) -> str:
    """The stand-in's stdin prompt for ``step`` (one per step, so each card's match is exact)."""
    return f"Step {step}: run this code? [y]es / [n]o / [a]ll / [q]uit "


def stand_in_agent(codes: list[str], *, gate: str | None = None, crash: bool = False) -> str:
    """Python for a cell that asks approval for each of ``codes`` like the agent does.

    It prints ``step N -> 'REPLY'`` per answer. ``gate``: before the first
    ``input()``, wait until a file of that name exists in the notebook's folder
    (so a test can click before the kernel's prompt exists). ``crash``: raise
    after the first card instead of asking (the run ends without an answer).
    """
    lines = [
        "import os, time",
        "from glm_magic.ipython.bridge_agent import agent_bridge",
        "ab = agent_bridge(get_ipython())",
        "assert ab is not None, 'no agent bridge'",
        f"for step, code in enumerate({codes!r}, 1):",
        "    prompt = f'Step {step}: run this code? [y]es / [n]o / [a]ll / [q]uit '",
        "    aid = ab.ask(step, code, prompt)",
    ]
    if crash:
        lines.append("    raise RuntimeError('the agent stopped by itself')")
    if gate is not None:
        lines += [
            f"    while step == 1 and not os.path.exists({gate!r}):",
            "        time.sleep(0.05)",
        ]
    lines += [
        "    for _ in range(3):  # like the agent: an unclear answer is asked again",
        "        reply = input(prompt)",
        "        if reply.strip().lower() in ('y', 'n', 'a', 'q'):",
        "            break",
        "        print('Answer y, n, a or q.')",
        "    ab.answered(aid, reply)",
        "    print(f'step {step} -> {reply!r}')",
    ]
    return "\n".join(lines)


def card(cell: Any, step: int) -> Any:
    """The approval card of ``step`` under ``cell``."""
    return cell.locator(CARD).filter(has_text=f"Step {step}: run this code?")


def button(card_: Any, answer: str, step: int) -> Any:
    """The card's button for ``answer`` (``run``, ``skip``, ``all``, ``stop``), by its name."""
    return card_.get_by_role("button", name=BUTTON_NAMES[answer].format(n=step), exact=True)


def stdin_boxes(cell: Any) -> list[str]:
    """The prompts of JupyterLab's input boxes still open in ``cell``."""
    prompts: list[str] = cell.locator(STDIN_PROMPT).all_inner_texts()
    return prompts


def wait_for_prompt(cell: Any, step: int, timeout: float = 30) -> None:
    """Until the kernel's stdin request for ``step`` is shown (its box is there)."""
    poll(lambda: any(f"Step {step}:" in p for p in stdin_boxes(cell)), timeout=timeout)


def wait_for_fresh_box(cell: Any, timeout: float = 30) -> Any:
    """Until an input box nobody typed into is open in ``cell`` (a new or repeated prompt)."""
    boxes = cell.locator(STDIN_INPUT)
    poll(lambda: boxes.evaluate_all("els => els.some(e => e.value === '')"), timeout=timeout)
    return boxes.last


def no_box_left_for(cell: Any, step: int, timeout: float = 10) -> None:
    """Until no input box for ``step`` is left in ``cell`` (no orphan after an answer)."""
    poll(lambda: not any(f"Step {step}:" in p for p in stdin_boxes(cell)), timeout=timeout)


def outputs_text(cell: Any) -> str:
    """Everything ``cell``'s outputs show, as text."""
    return "\n".join(cell.locator(OUTPUT).all_inner_texts())


def wait_answered(cell: Any, step: int, answer: str, timeout: float = 30) -> None:
    """Until the stand-in printed that ``step`` got ``answer``'s reply."""
    line = f"step {step} -> '{REPLIES[answer]}'"
    poll(lambda: line in outputs_text(cell), timeout=timeout)


def recorded_answer(cell: Any, step: int) -> str | None:
    """The reply recorded in ``cell``'s output after ``step``'s prompt, as JupyterLab shows it."""
    found = re.search(rf"Step {step}: run this code\?[^\n]*?\s(\w)\s*$", outputs_text(cell), re.M)
    return found.group(1) if found else None
