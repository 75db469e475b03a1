"""Run examples/notebooks/quickstart.ipynb headlessly and show the replies as they stream.

``make demo`` runs this. With ``RUNAPI_KEY`` set the notebook talks to RunAPI;
without it, the bundled endpoint (``glm_magic.testing``) starts on 127.0.0.1
and the replies are scripted. The executed notebook is written to
``build/quickstart.executed.ipynb``; the example itself is never modified.

Then the notebook runs a second time, as a fresh kernel would after Run All:
every ``%%glm`` answer is replayed from the reply store (a fresh one in
``build/demo-store``), with no request and at no cost.

Last, examples/notebooks/agent.ipynb: ``%%glm --agent --yes`` inspects a small
data set, runs code that fails, reads the error, fixes it and answers (scripted
by the bundled endpoint when no key is set). It is written to
``build/agent.executed.ipynb``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "notebooks" / "quickstart.ipynb"
OUT = HERE.parent / "build" / "quickstart.executed.ipynb"
AGENT = HERE / "notebooks" / "agent.ipynb"
AGENT_OUT = HERE.parent / "build" / "agent.executed.ipynb"
STORE = HERE.parent / "build" / "demo-store"


class StreamingClient(NotebookClient):
    """An nbclient that also prints each %%glm reply while its display updates arrive."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: dict[str, int] = {}

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        kind = msg["msg_type"]
        content = msg.get("content", {})
        if kind == "display_data" and not content.get("transient", {}).get("display_id"):
            # A one-off display (an agent's step): shown once, whole.
            sys.stdout.write(content.get("data", {}).get("text/plain", "") + "\n")
        elif kind in ("display_data", "update_display_data"):
            display_id = content.get("transient", {}).get("display_id", "")
            text = content.get("data", {}).get("text/plain", "")
            final = "glm_magic" in content.get("metadata", {})
            # While streaming, text/plain ends with a status line: print only the answer part.
            body = text if final else text.rsplit("\n-- ", 1)[0]
            if body.startswith("[") and body.endswith("working...]"):
                body = ""
            shown = self._shown.get(display_id, 0)
            if len(body) > shown:
                sys.stdout.write(body[shown:])
                sys.stdout.flush()
                self._shown[display_id] = len(body)
            if final:
                sys.stdout.write("\n")
        elif kind == "stream":
            sys.stdout.write(content.get("text", ""))
        elif kind == "error":
            sys.stdout.write("\n".join(content.get("traceback", [])) + "\n")
        return super().process_message(msg, cell, cell_index)

    async def async_execute_cell(self, cell: Any, cell_index: int, **kwargs: Any) -> Any:
        if cell.cell_type == "code":
            print(f"\n\033[1mIn [{cell_index}]:\033[0m {cell.source}\n")
        return await super().async_execute_cell(cell, cell_index, **kwargs)


def main() -> int:
    env_note = ""
    server = None
    if os.environ.get("RUNAPI_KEY", "").strip():
        env_note = "RUNAPI_KEY is set: replies come from RunAPI (https://runapi.ai/v1)."
    else:
        from glm_magic.testing import serve

        server = serve(port=0, token_delay=0.01)
        os.environ["GLM_BASE_URL"] = server.base_url
        os.environ.setdefault("GLM_MODEL", "glm-4.7")
        env_note = (
            f"No RUNAPI_KEY: using the bundled offline endpoint at {server.base_url}. "
            "The replies below are SCRIPTED, not from a model. "
            "Set RUNAPI_KEY to talk to real GLM models."
        )
    print(env_note)
    # A fresh reply store for the demo, so the first run always asks and the second replays.
    shutil.rmtree(STORE, ignore_errors=True)
    os.environ["GLM_MAGIC_CACHE_DIR"] = str(STORE)
    os.environ["GLM_MAGIC_CACHE"] = "replay"
    nb = nbformat.read(NOTEBOOK, as_version=4)
    try:
        StreamingClient(nb, timeout=600, kernel_name="python3").execute(cwd=str(NOTEBOOK.parent))
        asked = len(server.requests) if server is not None else None
        print("\n\033[1m== Second run (a fresh kernel): every answer replays ==\033[0m")
        again = nbformat.read(NOTEBOOK, as_version=4)
        StreamingClient(again, timeout=600, kernel_name="python3").execute(cwd=str(NOTEBOOK.parent))
        made = len(server.requests) - asked if server is not None and asked is not None else None
        print("\n\033[1m== The notebook agent (examples/notebooks/agent.ipynb, --yes) ==\033[0m")
        agent_nb = nbformat.read(AGENT, as_version=4)
        StreamingClient(agent_nb, timeout=600, kernel_name="python3").execute(cwd=str(AGENT.parent))
    finally:
        if server is not None:
            server.close()
    OUT.parent.mkdir(exist_ok=True)
    nbformat.write(nb, OUT)
    nbformat.write(agent_nb, AGENT_OUT)
    agent_ok = any(
        "ran_code" in c.source and any("revenue" in o.get("text", "") for o in c.outputs)
        for c in agent_nb.cells
    )
    replayed = [
        out["metadata"]["glm_magic"].get("replayed")
        for cell in again.cells
        for out in cell.get("outputs", [])
        if "glm_magic" in out.get("metadata", {})
    ]
    summary = f"second run: {sum(map(bool, replayed))} of {len(replayed)} answers replayed"
    if made is not None:
        summary += f", {made} request(s) to the endpoint"
    agent_line = "agent: the task ran its steps" if agent_ok else "agent: no step ran (see above)"
    print(f"\n{env_note}\n{summary}\n{agent_line}")
    print(
        f"Executed notebooks written to {OUT.relative_to(Path.cwd())} and "
        f"{AGENT_OUT.relative_to(Path.cwd())}"
    )
    return 0 if replayed and all(replayed) and not made and agent_ok else 1


if __name__ == "__main__":
    sys.exit(main())
