"""Markdown to safe HTML for the chat panel and the failing-cell buttons.

The panel shows replies in ``ipywidgets.HTML`` widgets, whose value the
frontend puts in the page as is. So everything the model wrote is escaped
here first and only a small, known set of tags comes out: paragraphs,
headings, lists, quotes, tables, emphasis, code, and links to http(s) or
mailto. Raw HTML in a reply shows as text; it never runs.

Fenced code is found with the same rules as :mod:`glm_magic.markdown` (so
block *n* here is ``reply.code_blocks[n]``), highlighted with Pygments using
classes that map to the notebook theme's own colours, and, once the reply is
complete, gets **Copy** and **Insert** buttons. They work in the browser
alone (an inline ``onclick``, which ipywidgets' HTML view keeps): a clipboard
write needs the user's click, which a round trip through the kernel would lose.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from .markdown import segments

__all__ = ["code_block_html", "inline", "render_markdown"]


# -- inline -------------------------------------------------------------------------

# Spans are bounded in length: with unmatched delimiters ("*a *a *a ...") an
# unbounded lazy match scans to the end of the line from every start, which is
# quadratic and would stall rendering on a long streamed line.
_CODE_SPAN = re.compile(r"(`+)(.{1,2000}?)\1", re.DOTALL)
_LINK = re.compile(r"\[([^\]\n]{1,300})\]\(\s*([^)\s]{1,2000})(?:\s+&quot;[^)]{0,300}&quot;)?\s*\)")
_AUTOLINK = re.compile(r"&lt;((?:https?://|mailto:)[^\s&]{1,2000}(?:&amp;[^\s&]{1,2000})*)&gt;")
_BARE_URL = re.compile(r"(?<![\w/\"'=])(https?://[^\s<>()\"']{0,2000}[^\s<>()\"'.,;:!?])")
_STRONG = re.compile(r"\*\*(?=\S)(.{1,400}?)(?<=\S)\*\*|__(?=\S)(.{1,400}?)(?<=\S)__")
_EM = re.compile(
    r"(?<![\w*])\*(?=[^\s*])(.{1,400}?)(?<=[^\s*])\*(?!\w)|(?<!\w)_(?=\S)(.{1,400}?)(?<=\S)_(?!\w)"
)
_STRIKE = re.compile(r"~~(?=\S)(.{1,400}?)(?<=\S)~~")
_SAFE_URL = re.compile(r"^(?:https?://|mailto:)", re.IGNORECASE)
_HOLD = "\x00{}\x00"


def _link(label: str, url: str) -> str:
    raw = html.unescape(url)
    if not _SAFE_URL.match(raw):
        return label  # javascript:, data: and relative URLs stay plain text
    href = html.escape(raw, quote=True)
    return f'<a href="{href}" target="_blank" rel="noopener noreferrer">{label}</a>'


def inline(text: str) -> str:
    """Escape ``text`` and render inline Markdown: code, links, emphasis."""
    held: list[str] = []

    def hold(fragment: str) -> str:
        held.append(fragment)
        return _HOLD.format(len(held) - 1)

    text = text.replace("\x00", "")
    # Code spans first, on the raw text: nothing inside them is Markdown.
    parts: list[str] = []
    last = 0
    for m in _CODE_SPAN.finditer(text):
        parts.append(html.escape(text[last : m.start()], quote=True))
        code = m.group(2)
        if code.startswith(" ") and code.endswith(" ") and code.strip():
            code = code[1:-1]
        parts.append(hold(f"<code>{html.escape(code, quote=True)}</code>"))
        last = m.end()
    parts.append(html.escape(text[last:], quote=True))
    out = "".join(parts)
    out = _AUTOLINK.sub(lambda m: hold(_link(m.group(1), m.group(1))), out)
    out = _LINK.sub(lambda m: hold(_link(m.group(1), m.group(2))), out)
    out = _BARE_URL.sub(lambda m: hold(_link(m.group(1), m.group(1))), out)
    out = _STRONG.sub(lambda m: f"<strong>{m.group(1) or m.group(2)}</strong>", out)
    out = _EM.sub(lambda m: f"<em>{m.group(1) or m.group(2)}</em>", out)
    out = _STRIKE.sub(lambda m: f"<del>{m.group(1)}</del>", out)
    # Held pieces may nest (a link label holding code): expand until none is left.
    while "\x00" in out:
        out = re.sub(r"\x00(\d+)\x00", lambda m: held[int(m.group(1))], out)
    return out


# -- blocks -------------------------------------------------------------------------

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_ITEM = re.compile(r"^( *)([-*+]|\d{1,9}[.)])[ \t]+(.*)$")
_QUOTE = re.compile(r"^ {0,3}> ?(.*)$")
_TABLE_SEP = re.compile(r"^ *\|? *:?-+:? *(?:\| *:?-+:? *)*\|? *$")


def _cells(row: str) -> list[str]:
    row = row.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)]


def _table(lines: list[str]) -> str:
    head = _cells(lines[0])
    aligns = []
    for cell in _cells(lines[1]):
        left, right = cell.startswith(":"), cell.endswith(":")
        aligns.append("center" if left and right else "right" if right else "")

    def row(cells: list[str], tag: str) -> str:
        out = []
        for i, cell in enumerate(cells):
            align = aligns[i] if i < len(aligns) and aligns[i] else ""
            style = f' style="text-align:{align}"' if align else ""
            out.append(f"<{tag}{style}>{inline(cell)}</{tag}>")
        return "<tr>" + "".join(out) + "</tr>"

    body = "".join(row(_cells(line), "td") for line in lines[2:])
    return f"<table><thead>{row(head, 'th')}</thead><tbody>{body}</tbody></table>"


def _list(lines: list[str]) -> str:
    """A (possibly nested) list from its lines; nesting follows indentation."""
    html_parts: list[str] = []
    stack: list[tuple[int, str]] = []  # (indent, tag)
    item_open = False
    for line in lines:
        m = _ITEM.match(line)
        if m is None:
            # A continuation line belongs to the open item.
            html_parts.append(" " + inline(line.strip()))
            continue
        indent = len(m.group(1))
        tag = "ol" if m.group(2)[0].isdigit() else "ul"
        while stack and indent < stack[-1][0]:
            html_parts.append(f"</li></{stack.pop()[1]}>")
        if stack and indent == stack[-1][0] and tag != stack[-1][1]:
            # "- a" then "1. b" at the same depth: one list ends, another begins.
            html_parts.append(f"</li></{stack.pop()[1]}>")
            item_open = False
        if not stack or indent > stack[-1][0]:
            start = ""
            if tag == "ol" and m.group(2)[:-1] != "1":
                start = f' start="{int(m.group(2)[:-1])}"'
            html_parts.append(f"<{tag}{start}>")
            stack.append((indent, tag))
        elif item_open:
            html_parts.append("</li>")
        html_parts.append("<li>" + inline(m.group(3)))
        item_open = True
    while stack:
        html_parts.append(f"</li></{stack.pop()[1]}>")
    return "".join(html_parts)


def _prose(text: str) -> str:
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append("<p>" + inline("\n".join(para)) + "</p>")
            para.clear()

    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            flush()
            i += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
            i += 1
            continue
        if _RULE.match(line) and not para:
            out.append("<hr>")
            i += 1
            continue
        if _QUOTE.match(line):
            flush()
            quoted = []
            while i < len(lines) and lines[i].strip() and _QUOTE.match(lines[i]):
                quoted.append(_QUOTE.match(lines[i]).group(1))  # type: ignore[union-attr]
                i += 1
            out.append("<blockquote>" + _prose("\n".join(quoted)) + "</blockquote>")
            continue
        if "|" in line and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1]):
            flush()
            rows = [line, lines[i + 1]]
            i += 2
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                rows.append(lines[i])
                i += 1
            out.append(_table(rows))
            continue
        if _ITEM.match(line) and (not para or not line.startswith(" ")):
            flush()
            items = []
            while i < len(lines) and lines[i].strip():
                if not _ITEM.match(lines[i]) and not lines[i].startswith((" ", "\t")):
                    break
                items.append(lines[i])
                i += 1
            out.append(_list(items))
            continue
        para.append(line)
        i += 1
    flush()
    return "".join(out)


# -- code ---------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _highlight(code: str, lang: str) -> str:
    """Highlighted HTML of ``code`` (cached: a streaming reply re-renders closed blocks)."""
    # Pygments comes with IPython; it ships no type hints.
    from pygments import highlight  # type: ignore[import-untyped,unused-ignore]
    from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped,unused-ignore]
    from pygments.lexers import (  # type: ignore[import-untyped,unused-ignore]
        PythonLexer,
        TextLexer,
        get_lexer_by_name,
    )
    from pygments.util import ClassNotFound  # type: ignore[import-untyped,unused-ignore]

    from .markdown import PYTHON_LANGS

    if lang.lower() in PYTHON_LANGS:
        lexer = PythonLexer()
    else:
        try:
            lexer = get_lexer_by_name(lang)
        except ClassNotFound:
            lexer = TextLexer()
    return str(highlight(code, lexer, HtmlFormatter(nowrap=True)))


# The Copy / Insert handlers. They read the code from the block's data-code
# attribute; navigator.clipboard needs a secure context (https or localhost), so
# an http page elsewhere falls back to a hidden textarea and execCommand("copy").
_COPY_JS = (
    "(function(b,mode){var box=b.closest('.glm-code'),t=box.getAttribute('data-code'),"
    "n=box.querySelector('.glm-note'),label=b.textContent;"
    "function done(ok){n.textContent=ok?(mode==='copy'?'Copied to the clipboard.':"
    "box.getAttribute('data-insert-note')):'The clipboard is not reachable here: select the "
    "code and copy it by hand.';if(ok&&mode==='copy'){b.textContent='Copied \u2713';"
    "setTimeout(function(){b.textContent=label},1500)}}"
    "function fallback(){var a=document.createElement('textarea');a.value=t;"
    "a.setAttribute('readonly','');a.style.position='fixed';a.style.opacity='0';"
    "document.body.appendChild(a);a.select();var ok=false;try{ok=document.execCommand('copy')}"
    "catch(e){}document.body.removeChild(a);done(ok)}"
    "if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(t)"
    ".then(function(){done(true)},fallback)}else{fallback()}})(this,'MODE')"
)


def code_block_html(code: str, lang: str, *, actions: bool, insert_note: str = "") -> str:
    """One highlighted code block; with ``actions``, Copy and Insert buttons above it."""
    label = html.escape(lang or "code")
    bar = f'<span class="glm-lang">{label}</span>'
    attrs = ""
    if actions:
        copy = html.escape(_COPY_JS.replace("MODE", "copy"), quote=True)
        insert = html.escape(_COPY_JS.replace("MODE", "insert"), quote=True)
        bar += (
            f'<button type="button" class="glm-btn glm-copy" title="Copy this block to the '
            f'clipboard" onclick="{copy}">Copy</button>'
            f'<button type="button" class="glm-btn glm-insert" title="{html.escape(insert_note)}"'
            f' onclick="{insert}">Insert</button>'
        )
        attrs = (
            f' data-code="{html.escape(code, quote=True)}"'
            f' data-insert-note="{html.escape(insert_note, quote=True)}"'
        )
    body = _highlight(code, lang) if code else ""
    note = '<span class="glm-note" role="status"></span>' if actions else ""
    return (
        f'<div class="glm-code"{attrs}><div class="glm-code-bar">{bar}</div>'
        f'<pre class="glm-pre"><code>{body}</code></pre>{note}</div>'
    )


def render_markdown(text: str, *, actions: bool = False, insert_note: str = "") -> str:
    """``text`` (Markdown from a model) as safe HTML; code blocks get buttons with ``actions``."""
    parts = []
    for seg in segments(text):
        if seg.is_code:
            parts.append(
                code_block_html(seg.text, seg.lang or "", actions=actions, insert_note=insert_note)
            )
        else:
            parts.append(_prose(seg.text))
    return "".join(parts)
