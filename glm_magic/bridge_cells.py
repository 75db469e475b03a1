"""The notebook agent's step cells over the bridge: key, outputs, execution count, checked.

The notebook agent's steps run in the kernel; their outputs go to the frontend
inside ``insert`` (``docs/bridge.md``) and become the outputs of a new code
cell, which JupyterLab renders untrusted. This module holds the rule for what
such an output may be (nbformat 4: ``stream``, ``display_data``,
``execute_result``, ``error``, with only their own fields) and the limits
the frontend enforces too. It is schema only: stdlib, no IPython, no comm.

:func:`step_fields` checks the fields an inserted cell gains for a step.
:func:`normalise_outputs` returns the outputs rebuilt from their known fields
(multi-line lists joined, consecutive streams of one name merged, anything
too large replaced by a one-line note), or a one-line reason they are refused.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_OUTPUTS", "MAX_OUTPUT_CHARS", "OUTPUT_TYPES", "normalise_outputs", "step_fields"]

#: The output types an inserted cell may carry.
OUTPUT_TYPES = ("stream", "display_data", "execute_result", "error")
#: At most this many outputs per inserted cell (more are cut, with a note).
MAX_OUTPUTS = 100
#: One output's JSON over this many characters is replaced by a note.
MAX_OUTPUT_CHARS = 1_000_000


def _text(value: Any) -> str | None:
    """A multi-line string as nbformat stores it: a string, or a list of strings to join."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    return None


def _is_json_mime(mime: str) -> bool:
    return mime == "application/json" or mime.endswith("+json")


def _bundle(data: Any) -> dict[str, Any] | str:
    if not isinstance(data, Mapping):
        return "'data' must be an object of MIME types"
    out: dict[str, Any] = {}
    for mime, value in data.items():
        if not isinstance(mime, str) or not mime or len(mime) > 200:
            return "a MIME type must be a short string"
        if _is_json_mime(mime):
            out[mime] = value  # any JSON value; it is data, never run
            continue
        if isinstance(value, (bytes, bytearray)):
            # A raw image from a _repr_png_: what ipykernel itself sends is base64 text.
            out[mime] = base64.b64encode(bytes(value)).decode("ascii")
            continue
        text = _text(value)
        if text is None:
            return f"{mime!r} must be text"
        out[mime] = text
    return out


def _output(raw: Any) -> dict[str, Any] | str:
    if not isinstance(raw, Mapping):
        return "an output must be an object"
    kind = raw.get("output_type")
    if kind == "stream":
        name = raw.get("name")
        text = _text(raw.get("text"))
        if name not in ("stdout", "stderr") or text is None:
            return "a stream output needs name stdout or stderr and text"
        return {"output_type": "stream", "name": name, "text": text}
    if kind in ("display_data", "execute_result"):
        data = _bundle(raw.get("data"))
        if isinstance(data, str):
            return data
        metadata = raw.get("metadata", {})
        if not isinstance(metadata, Mapping):
            return "an output's 'metadata' must be an object"
        out: dict[str, Any] = {"output_type": kind, "data": data, "metadata": dict(metadata)}
        if kind == "execute_result":
            count = raw.get("execution_count")
            if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
                return "an execute_result's execution_count must be an integer or null"
            out["execution_count"] = count
        return out
    if kind == "error":
        ename, evalue, trace = raw.get("ename"), raw.get("evalue"), raw.get("traceback", [])
        if not isinstance(ename, str) or not isinstance(evalue, str):
            return "an error output needs ename and evalue strings"
        if not isinstance(trace, list) or not all(isinstance(line, str) for line in trace):
            return "an error output's traceback must be a list of strings"
        return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": trace}
    return f"unknown output type {str(kind)[:40]!r}"


def _note(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": f"[{text}]\n"}


def normalise_outputs(raw: Any) -> list[dict[str, Any]] | str:
    """The outputs as the frontend accepts them, or a one-line reason they are refused.

    A malformed output refuses the whole list (the caller's bug, said in one
    line); a large one is replaced by a note and more than :data:`MAX_OUTPUTS`
    are cut, since a step's real output must never make the insert fail.
    """
    if not isinstance(raw, list):
        return "outputs must be a list"
    merged: list[dict[str, Any]] = []
    for item in raw:
        output = _output(item)
        if isinstance(output, str):
            return output
        last = merged[-1] if merged else None
        if (
            last is not None
            and output["output_type"] == "stream"
            and last["output_type"] == "stream"
            and last["name"] == output["name"]
        ):
            # ipykernel sends a print loop as many stream messages: one output reads the same.
            last["text"] += output["text"]
        else:
            merged.append(output)
    sized: list[dict[str, Any]] = []
    for output in merged:
        try:
            size = len(json.dumps(output, allow_nan=False))
        except (TypeError, ValueError):
            return "an output must be plain JSON"
        sized.append(
            output
            if size <= MAX_OUTPUT_CHARS
            else _note(f"an output of {size} characters was left out")
        )
    if len(sized) > MAX_OUTPUTS:
        left = len(sized) - (MAX_OUTPUTS - 1)
        sized = [*sized[: MAX_OUTPUTS - 1], _note(f"{left} more outputs were left out")]
    return sized


def step_fields(cell: Mapping[str, Any], kind: str) -> dict[str, Any] | str:
    """A cell's ``key``, ``execution_count`` and ``outputs`` (those present), or why not."""
    out: dict[str, Any] = {}
    key = cell.get("key")
    if key is not None:
        if not isinstance(key, str) or not key or len(key) > 200:
            return "a cell's key must be a short string"
        out["key"] = key
    if "execution_count" in cell and kind == "code":
        count = cell["execution_count"]
        if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
            return "execution_count must be an integer or null"
        out["execution_count"] = count
    if cell.get("outputs") is not None:
        outputs = normalise_outputs(cell["outputs"]) if kind == "code" else "only code cells"
        if isinstance(outputs, str):
            return f"a cell's outputs are refused: {outputs}"
        out["outputs"] = outputs
    return out
