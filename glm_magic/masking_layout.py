"""Secrets that only their layout gives away: split string literals and table columns.

- A key split across adjacent string literals (``'sk-abc' + 'def...'``,
  implicit concatenation, or continued on the next line) is masked when the
  joined value is a secret: it holds the configured key, has a token's shape,
  or the chain is assigned to a secret name. Every piece becomes ``***``.
- A table (plain, ``|``-separated or CSV) whose header row names a secret
  column (``password``, ``api_key``, ``secret``) on a line of its own has that
  column masked in the rows below it, as long as the rows keep the header's
  shape (pandas adds an index column, which is allowed for).

Both passes are linear in the input: junctions between literals are found by
one scan, and each line is looked at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .masking_names import MASK, is_secret_name, maskable

__all__ = ["mask_split_literals", "mask_tables"]

# A closing quote, optional "+" and line break, and the next literal's opening quote.
_JUNCTION = re.compile(
    r"(?P<close>[\"'])[ \t]*(?:\+[ \t]*)?(?:\\?\r?\n[ \t]*(?:\+[ \t]*)?)?"
    r"[rRbBuUfF]{0,2}(?P<open>[\"'])(?=[^\"'\n])"
)
_ASSIGNED_TO = re.compile(
    r"(?:^|[^\w.-])[\"']?(?P<name>[A-Za-z_][\w.-]*)[\"']?\]?[ \t]*(?::=|=>|=|:)[ \t]*\(?[ \t]*"
    r"[rRbBuUfF]{0,2}$"
)
_HEADER_WORD = re.compile(r"[A-Za-z_][\w .-]*")
_ALIGNED = re.compile(r"\s+")
_RULE = re.compile(r"^[\s|:+=-]*$")  # a table's separator line, e.g. |---|---|
#: Bare header words too often a tokenizer's or a parser's column to mask by.
_AMBIGUOUS_COLUMNS = frozenset({"token", "tokens", "auth", "key", "keys"})

Literal = tuple[int, int]  # the span of a literal's content, quotes excluded


def mask_split_literals(text: str, secrets_in: Callable[[str], int]) -> tuple[str, int]:
    """Mask every piece of a literal chain whose joined value holds a secret.

    ``secrets_in(value)`` counts the secrets the other rules find in a value.
    The count returned is what masking each piece on its own would count, and
    at least one per piece masked.
    """
    chains = _chains(text)
    if not chains:
        return text, 0
    out: list[str] = []
    pos = count = 0
    for chain in chains:
        joined = "".join(text[a:b] for a, b in chain)
        line_start = text.rfind("\n", 0, chain[0][0]) + 1
        before = text[line_start : chain[0][0] - 1]
        named = _ASSIGNED_TO.search(before)
        by_name = named is not None and is_secret_name(named.group("name")) and maskable(joined)
        if not (by_name or secrets_in(joined)):
            continue
        for start, end in chain:
            if text[start:end] not in ("", MASK):
                count += max(1, secrets_in(text[start:end]))
                out.append(text[pos:start] + MASK)
                pos = end
    out.append(text[pos:])
    return "".join(out), count


def _chains(text: str) -> list[list[Literal]]:
    """The runs of two or more adjacent string literals, each as content spans."""
    if "'" not in text and '"' not in text:
        return []
    chains: list[list[Literal]] = []
    for junction in _JUNCTION.finditer(text):
        close, opening = junction.start("close"), junction.start("open")
        quote_l, quote_r = text[close], text[opening]
        left_start = _open_quote(text, quote_l, close)
        right_end = text.find(quote_r, opening + 1)
        line_end = text.find("\n", opening + 1)
        if left_start < 0 or right_end < 0 or (0 <= line_end < right_end):
            continue
        left, right = (left_start + 1, close), (opening + 1, right_end)
        if chains and chains[-1][-1] == left:
            chains[-1].append(right)
        elif chains and chains[-1][-1][1] >= left[0]:
            continue  # overlaps a chain already taken (a quote inside a literal)
        else:
            chains.append([left, right])
    return chains


def _open_quote(text: str, quote: str, close: int) -> int:
    """Where the literal closed at ``close`` opened, on the same line (-1: nowhere)."""
    line_start = text.rfind("\n", 0, close) + 1
    at = text.rfind(quote, line_start, close)
    while at > line_start and text[at - 1] == "\\":
        at = text.rfind(quote, line_start, at - 1)
    return at


def mask_tables(lines: list[str], hinted: list[int]) -> int:
    """Mask, in place, the secret columns of tables whose header row is on a line of its own.

    ``hinted`` are the numbers of the lines that may name a secret (the
    candidates for a header row); returns how many cells were masked.
    """
    count = 0
    done = -1  # rows up to here belong to a table already handled
    for i in hinted:
        if i <= done or i + 1 >= len(lines):
            continue
        header = _header(lines[i])
        if header is None:
            continue
        split, columns, secret = header
        row_at = i + 1
        while row_at < len(lines):
            row = lines[row_at]
            if _RULE.match(row) and row.strip():
                row_at += 1
                continue
            cells = split(row)
            offset = len(cells) - len(columns)
            if not row.strip() or offset not in (0, 1):
                break
            for index in secret:
                value = cells[index + offset].strip()
                if maskable(value) and value != MASK:
                    row = _replace_cell(row, value, index + offset, split)
                    count += 1
            lines[row_at] = row
            row_at += 1
        done = row_at - 1
    return count


def _header(line: str) -> tuple[Callable[[str], list[str]], list[str], list[int]] | None:
    """A header row's splitter, columns and secret column positions, or ``None``."""
    stripped = line.strip()
    if not stripped:
        return None
    if "|" in stripped:
        split: Callable[[str], list[str]] = _split_pipes
    elif "," in stripped:
        split = _split_csv
    elif "\t" in stripped:
        split = _split_tabs
    else:
        split = _split_aligned
    columns = [c.strip() for c in split(line)]
    if len(columns) < 2 or not all(_HEADER_WORD.fullmatch(c) for c in columns):
        return None
    secret = [
        i
        for i, c in enumerate(columns)
        if c.lower() not in _AMBIGUOUS_COLUMNS and is_secret_name(c.replace(" ", "_"))
    ]
    return (split, columns, secret) if secret else None


def _split_pipes(line: str) -> list[str]:
    return [c for c in line.strip().strip("|").split("|")]


def _split_csv(line: str) -> list[str]:
    return line.split(",")


def _split_tabs(line: str) -> list[str]:
    return line.strip().split("\t")


def _split_aligned(line: str) -> list[str]:
    return _ALIGNED.split(line.strip())


def _replace_cell(row: str, value: str, index: int, split: Callable[[str], list[str]]) -> str:
    """``row`` with cell number ``index`` (holding ``value``) masked, the rest as it was."""
    pos = 0
    for cell in split(row)[:index]:
        found = row.find(cell, pos)
        pos = (found if found >= 0 else pos) + len(cell)
    at = row.find(value, pos)
    return row if at < 0 else row[:at] + MASK + row[at + len(value) :]
