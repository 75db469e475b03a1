"""Scripted texts for the bundled test endpoint: replies, reasoning and error bodies.

Everything here is a pure function of the request, so a test that sends the
same prompt twice (once streaming, once not) gets the same text back, and a
demo looks the same on every run.

The reply is chosen from the *last* user message:

* ``fix`` plus a traceback marker -> a diagnosis and a repaired ``python`` block
  (the failing source with a close-match rename for ``NameError``/``KeyError``);
* ``explain`` plus a traceback marker -> a Markdown "Root cause" explanation;
* a request for code (``code``, ``write``, ``function``, ``plot``, ...) -> a
  short answer with one runnable, stdlib-only ``python`` block;
* ``echo:`` at the very start -> the rest of the message, verbatim (tests
  that need a reply to carry exact text, e.g. hostile HTML or prices);
* anything else -> a friendly Markdown note saying this is the offline endpoint.

Token accounting is deliberately crude: a "token" is a piece of at most
:data:`TOKEN_CHARS` characters, and pieces concatenate back to the exact text.
"""

from __future__ import annotations

import builtins
import difflib
import json
import keyword
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "TOKEN_CHARS",
    "classify",
    "cut_in_code",
    "error_fault",
    "error_fault_names",
    "estimate_prompt_tokens",
    "filler_text",
    "last_user_text",
    "message_text",
    "reasoning_for",
    "reply_for",
    "split_tokens",
]

TOKEN_CHARS = 4

_FIX = re.compile(r"\bfix", re.IGNORECASE)
_EXPLAIN = re.compile(r"\bexplain", re.IGNORECASE)
# Case-sensitive on purpose: "explain this error" in prose is not a traceback.
_TRACEBACK = re.compile(r"Traceback|\w*(?:Error|Exception)\b")
_CODE = re.compile(r"\b(?:code|write|function|plot|snippet|generate|script)", re.IGNORECASE)
_EXC_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception))\b:?[ \t]*(.*)$", re.MULTILINE)
_EXC_ANY = re.compile(r"(\w+(Error|Exception))")
_LINE_NO = re.compile(r"\bline (\d+)")
_FENCE = re.compile(r"```([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)
_NAME_ERROR = re.compile(r"name '(\w+)' is not defined")
_KEY_ERROR = re.compile(r"KeyError: (['\"])(.*?)\1")
_IDENT = re.compile(r"[A-Za-z_]\w*")
_STRING = re.compile(r"(['\"])([^'\"\\\n]+)\1")
_MARK = "# fixed by the scripted endpoint"
_ECHO = "echo:"
_FOOTER = "_This is a scripted reply from the offline glm-magic test endpoint._"


def split_tokens(text: str, size: int = TOKEN_CHARS) -> list[str]:
    """Split *text* into pieces of *size* characters; ``"".join`` gives *text* back."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def message_text(message: Mapping[str, Any]) -> str:
    """Return the text of one chat message (string content or ``text`` parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, Mapping)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def estimate_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Estimate prompt tokens as characters / 4 over all contents, at least 1."""
    return max(1, sum(len(message_text(m)) for m in messages) // TOKEN_CHARS)


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """Return the text of the last ``user`` message, or ``""``."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def classify(question: str) -> str:
    """Return the reply kind: ``echo``, ``fix``, ``explain``, ``code`` or ``chat``."""
    if question.startswith(_ECHO):
        return "echo"
    has_traceback = _TRACEBACK.search(question) is not None
    if has_traceback and _FIX.search(question):
        return "fix"
    if has_traceback and _EXPLAIN.search(question):
        return "explain"
    if _CODE.search(question):
        return "code"
    return "chat"


def reply_for(messages: Sequence[Mapping[str, Any]]) -> str:
    """Return the scripted assistant reply for a conversation."""
    question = last_user_text(messages)
    kind = classify(question)
    if kind == "echo":
        return question[len(_ECHO) :].strip()
    if kind == "fix":
        return _fix_reply(question)
    if kind == "explain":
        return _explain_reply(question)
    if kind == "code":
        return _code_reply(question)
    return _chat_reply(question)


def reasoning_for(messages: Sequence[Mapping[str, Any]]) -> str:
    """Return the short scripted reasoning paragraph sent when thinking is on."""
    question = last_user_text(messages)
    kind = {"fix": "fix", "explain": "explanation", "code": "code", "chat": "chat"}
    if classify(question) == "echo":
        return question[len(_ECHO) :].strip()
    return (
        f"The user wrote: {_echo(question, 40)!r}. This endpoint is scripted, so I "
        f"will pick the canned {kind[classify(question)]} reply, keep it short, and "
        "make sure any code block in it runs as it is."
    )


_WORDS = ("lor", "ips", "dol", "sit", "ame", "con", "sec", "adi", "eli", "sed", "tem", "ali")


def filler_text(n_tokens: int) -> str:
    """Return deterministic prose of exactly ``n_tokens`` pieces of 4 characters.

    Every piece is its own 4-character word, so ``split_tokens`` yields exactly
    ``n_tokens`` pieces; sentences end every 8 pieces and paragraphs every 32,
    which keeps long benchmark replies readable as Markdown.
    """
    pieces: list[str] = []
    for i in range(n_tokens):
        word = _WORDS[(i * 7) % len(_WORDS)]
        if i % 32 == 31:
            piece = "ok.\n"
        elif i % 8 == 7:
            piece = "ok. "
        elif i % 32 == 0 and i:
            piece = "\n" + word[:2].capitalize() + " "  # second half of the paragraph break
        elif i % 8 == 0:
            piece = word.capitalize() + " "
        else:
            piece = word + " "
        pieces.append(piece)
    return "".join(pieces)


def cut_in_code(text: str) -> str:
    """``text`` followed by a second ``python`` block that stops mid-line, never closed.

    What a reply cut by the token limit inside a code block looks like: code
    insertion must take the closed blocks only.
    """
    return (
        f"{text.rstrip()}\n\nA longer version, step by step:\n\n"
        "```python\n# the unfinished block\ndef running_totals(values):\n"
        "    totals = []\n    for value in values:\n        totals.append("
    )


def _echo(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat[:limit] if flat else "(empty message)"


def _chat_reply(question: str) -> str:
    return (
        "## Scripted reply\n\n"
        "Hello! This is a **scripted reply** from the offline glm-magic test endpoint, "
        "so no model ran and nothing was billed.\n\n"
        f"You asked:\n\n> {_echo(question, 60)}\n\n"
        "Things to try here:\n\n"
        "- ask for code (*write a function*) to get a `python` block;\n"
        "- paste a traceback and ask to **explain** or **fix** it;\n"
        "- add `+tokens=200` to the model id for a longer stream.\n\n"
        "Set `GLM_BASE_URL` to a real server to talk to GLM."
    )


_FIB = '''def fibonacci(n: int) -> list[int]:
    """Return the first n Fibonacci numbers."""
    numbers: list[int] = []
    a, b = 0, 1
    for _ in range(n):
        numbers.append(a)
        a, b = b, a + b
    return numbers


print(fibonacci(10))
'''

_PLOT = """import math

# A text-mode plot, so the example runs with the standard library only.
for step in range(9):
    x = step * math.pi / 8
    bar = "#" * round(20 * math.sin(x))
    print(f"sin({x:4.2f}) {bar}")
"""


_PRIMES = '''def first_primes(n: int) -> list[int]:
    """Return the first n prime numbers."""
    primes: list[int] = []
    candidate = 2
    while len(primes) < n:
        if all(candidate % p for p in primes if p * p <= candidate):
            primes.append(candidate)
        candidate += 1
    return primes


assert first_primes(5) == [2, 3, 5, 7, 11]
print(first_primes(10))
'''


def _code_reply(question: str) -> str:
    if re.search(r"\bprimes?\b", question, re.IGNORECASE):
        return (
            "Trial division by the primes found so far is enough for small n:\n\n"
            f"```python\n{_PRIMES}```\n\n"
            "Running it prints `[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]`."
        )
    if re.search(r"\bplot", question, re.IGNORECASE):
        return (
            "Here is a small plot that needs nothing beyond the standard library:\n\n"
            f"```python\n{_PLOT}```\n\n"
            "Each row is one sample of `sin(x)`; swap in `matplotlib` for a real chart."
        )
    return (
        "Here is a small, self-contained function:\n\n"
        f"```python\n{_FIB}```\n\n"
        "Running it prints `[0, 1, 1, 2, 3, 5, 8, 13, 21, 34]`."
    )


_HINTS = {
    "NameError": "a name is used before it is assigned, or it is misspelt.",
    "KeyError": "a dictionary was indexed with a key it does not contain.",
    "TypeError": "a value of the wrong type was passed to an operation or function.",
    "ValueError": "a value has the right type but an unacceptable content.",
    "IndexError": "a sequence was indexed past its end.",
    "AttributeError": "the object has no attribute with that name.",
    "ZeroDivisionError": "a number was divided by zero.",
    "ModuleNotFoundError": "the module is not installed in this kernel's environment.",
    "ImportError": "the module exists but does not provide that name.",
    "FileNotFoundError": "the path does not exist relative to the working directory.",
}


def _exception(text: str) -> tuple[str | None, str]:
    """Find the raised exception type and message, preferring the last ``Type: msg`` line."""
    lines = _EXC_LINE.findall(text)
    if lines:
        name, message = lines[-1]
        return name.rsplit(".", 1)[-1], message.strip()
    match = _EXC_ANY.search(text)
    return (match.group(1), "") if match else (None, "")


def _failing_line(text: str) -> str:
    """Describe where the traceback points: ``line N`` and its source when shown."""
    matches = list(_LINE_NO.finditer(text))
    if not matches:
        return "the last frame of the traceback"
    last = matches[-1]
    rest = [ln for ln in text[last.end() :].splitlines()[1:] if ln.strip()]
    where = f"line {last.group(1)}"
    if rest and not _EXC_LINE.match(rest[0]):
        source = re.sub(r"^\s*-*>?\s*\d*\s*", "", rest[0]).strip().replace("`", "'")
        if source:
            where += f" (`{source}`)"
    return where


def _explain_reply(question: str) -> str:
    name, message = _exception(question)
    if name is None:
        cause = "**Root cause:** an exception whose type the traceback does not show."
    else:
        detail = f": {message}" if message else ""
        cause = f"**Root cause:** `{name}`{detail}"
    hint = _HINTS.get(name or "", "the operation failed for the reason in the last line.")
    return (
        f"{cause}\n\n"
        f"The error is raised at {_failing_line(question)}.\n\n"
        f"**What it means:** {hint}\n\n"
        "**Next step:** check the values used on that line, then run the cell again.\n\n"
        f"{_FOOTER}"
    )


def _failing_source(text: str) -> str | None:
    """Return the first fenced Python block that is not itself a traceback."""
    for lang, body in _FENCE.findall(text):
        if lang.lower() in ("", "python", "py", "python3", "ipython") and "Traceback" not in body:
            return str(body)
    return None


def _close(word: str, candidates: set[str]) -> str | None:
    # Sorted input keeps the tie-break of get_close_matches deterministic.
    found = difflib.get_close_matches(word, sorted(candidates - {word}), n=1, cutoff=0.6)
    return found[0] if found else None


def _repair(question: str, source: str) -> tuple[str, str]:
    """Return ``(fixed source, what changed)`` for a NameError/KeyError typo."""
    name_error = _NAME_ERROR.search(question)
    if name_error:
        bad = name_error.group(1)
        # Candidates come from the code blocks sent (the failing source and the
        # earlier cells that define names; not the prose around them, where words
        # like "name" would win), then from builtins such as ``print``.
        code = "\n".join(body for _, body in _FENCE.findall(question) if "Traceback" not in body)
        idents = {i for i in _IDENT.findall(code or source) if not keyword.iskeyword(i)}
        good = _close(bad, idents) or _close(
            bad, {b for b in dir(builtins) if not b.startswith("_")}
        )
        if good:
            fixed = re.sub(rf"\b{re.escape(bad)}\b", good, source)
            return fixed, f"renamed `{bad}` to `{good}`"
    key_error = _KEY_ERROR.search(question)
    if key_error:
        bad = key_error.group(2)
        good = _close(bad, {s for _, s in _STRING.findall(source)})
        if good:
            fixed = source.replace(f"'{bad}'", f"'{good}'").replace(f'"{bad}"', f'"{good}"')
            return fixed, f"used the existing key `{good!r}` instead of `{bad!r}`"
    return source, ""


def _fix_reply(question: str) -> str:
    name, message = _exception(question)
    label = f"`{name}`" if name else "The exception"
    detail = f": {message}" if message else ""
    source = _failing_source(question)
    if source is None:
        guarded = name if name and name.isidentifier() else "Exception"
        code = (
            f"{_MARK}: no source was sent, so guard the failing statement\n"
            "try:\n"
            "    ...  # the statement that failed\n"
            f"except {guarded} as exc:\n"
            '    print(f"failed: {exc!r}")\n'
        )
        change = "No failing source was included, so here is a guard to start from."
    else:
        fixed, what = _repair(question, source)
        head = f"{_MARK}: {what}" if what else _MARK
        code = f"{head}\n{fixed}"
        if not code.endswith("\n"):
            code += "\n"
        change = f"The fix {what}." if what else "No safe automatic change was found."
    return (
        f"**Diagnosis:** {label} at {_failing_line(question)}{detail}. {change}\n\n"
        f"```python\n{code}```\n\n"
        "Run the cell again to check the fix."
    )


_ERRORS: dict[str, tuple[int, str | None, str]] = {
    "401": (401, "1000", "Authentication failed: invalid API key"),
    "403": (403, None, "Forbidden"),
    "402": (402, "insufficient_credits", "Insufficient credits."),
    "400": (400, "1214", "The messages parameter is illegal."),
    "400-1211": (400, "1211", "Unknown Model, please check the model code."),
    "400-1214": (400, "1214", "The messages parameter is illegal."),
    "400-1261": (400, "1261", "Prompt exceeds max length"),
    "400-1301": (
        400,
        "1301",
        "System detected potentially unsafe or sensitive content in input or generation.",
    ),
    "404": (404, None, "Not Found"),
    "429": (429, "1302", "Rate limit reached for requests"),
    "429-1302": (429, "1302", "Rate limit reached for requests"),
    "429-1305": (429, "1305", "The service may be temporarily overloaded, please try again later"),
    "429-1113": (429, "1113", "Insufficient balance or no resource package. Please recharge."),
    "429-1304": (
        429,
        "1304",
        "The daily call limit for this model has been reached; "
        "next_flush_time: 2099-01-01 00:00:00",
    ),
    "500": (500, "500", "Internal error"),
}

_HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def error_fault_names() -> frozenset[str]:
    """Return every ``fault=`` value that produces an HTTP error response."""
    return frozenset(_ERRORS) | {"503", "502-html"}


def error_fault(name: str) -> tuple[int, str, str] | None:
    """Return ``(status, content type, body)`` for an HTTP error fault, else ``None``.

    JSON bodies follow Z.ai: ``{"error": {"code": "<string>", "message": ...}}``,
    with no ``code`` where real servers send none (403, 404). ``503`` and
    ``502-html`` deliberately return non-JSON bodies, as proxies do.
    """
    if name == "503":
        return 503, "text/plain; charset=utf-8", "Service Unavailable"
    if name == "502-html":
        return 502, "text/html; charset=utf-8", _HTML_502
    if name not in _ERRORS:
        return None
    status, code, message = _ERRORS[name]
    error: dict[str, str] = {"code": code, "message": message} if code else {"message": message}
    return status, "application/json", json.dumps({"error": error})
