from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import glm_magic.interpolate as interpolate_module
from glm_magic.interpolate import DEFAULT_MAX_CHARS, Interpolated, interpolate, truncate_middle


class Boom:
    """An object whose every attribute lookup, item lookup and str() raises."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"no {name}")

    def __getitem__(self, key: object) -> object:
        raise RuntimeError("no items")

    def __str__(self) -> str:
        raise RuntimeError("no str")


class Prop:
    @property
    def fails(self) -> str:
        raise ValueError("property raised")

    @property
    def works(self) -> str:
        return "fine"


NS: dict[str, object] = {
    "x": 5,
    "name": "Ada",
    "a": 1,
    "b": 2,
    "i": 7,
    "In": ["", "import pandas", "df = load()", "df.head()"],
    "Out": {3: "   col\n0  1"},
    "d": {"k": "v", "a b": "spaced"},
    "obj": SimpleNamespace(inner=SimpleNamespace(value=42), _private="hidden"),
    "boom": Boom(),
    "prop": Prop(),
    "_": "last output",
    "__secret": "dunder",
}


def run(text: str, ns: dict[str, object] | None = None, **kwargs: int) -> str:
    return interpolate(text, NS if ns is None else ns, **kwargs).text


def test_all_lists_public_names() -> None:
    assert set(interpolate_module.__all__) == {
        "DEFAULT_MAX_CHARS",
        "Interpolated",
        "interpolate",
        "truncate_middle",
    }
    for name in interpolate_module.__all__:
        assert getattr(interpolate_module, name).__doc__ or name == "DEFAULT_MAX_CHARS"


# --- what is substituted -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "replaced"),
    [
        ("Hello {name}!", "Hello Ada!", ["name"]),
        ("{x} and {x}", "5 and 5", ["x"]),
        ("last cell: {In[3]}", "last cell: df.head()", ["In[3]"]),
        ("first: {In[-1]}", "first: df.head()", ["In[-1]"]),
        ("result:\n{Out[3]}", "result:\n   col\n0  1", ["Out[3]"]),
        ("{d['k']} {d[\"k\"]}", "v v", ["d['k']", 'd["k"]']),
        ("{d['a b']}", "spaced", ["d['a b']"]),
        ("{obj.inner.value}", "42", ["obj.inner.value"]),
        ("{prop.works}", "fine", ["prop.works"]),
        ("{_}", "last output", ["_"]),
        ("{name}{x}", "Ada{x}", ["name"]),  # a brace glued to "}" is not a placeholder
        ("({x})", "(5)", ["x"]),
        ("{x}th", "5th", ["x"]),
    ],
)
def test_substitutes_resolvable_placeholders(text: str, expected: str, replaced: list[str]) -> None:
    result = interpolate(text, NS)
    assert result == Interpolated(expected, replaced)


def test_values_are_not_rescanned() -> None:
    assert run("{v}", {"v": "{x} {{y}} `z`", "x": 1}) == "{x} {{y}} `z`"


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',  # dict literal
        '{"a": {"b": 1}}',  # nested dict literal: both closing braces kept
        "{1, 2, 3}",  # set literal
        "{x!r} {x:>10} {x=} {x:{width}}",  # f-string fields
        '{"model": "glm-4", "messages": [{"role": "user"}]}',  # JSON
        r"\frac{a}{b} + \sqrt{x} + x_{i} + e^{i} + \mathbf{a}",  # LaTeX (a, b, i, x defined)
        "echo ${x} and $x",  # shell expansion
        r"\{x\}",  # escaped braces
        "{ x } {x }",  # spaces
        "{{ name }}",  # Jinja
        "{missing} {missing.attr} {x.nope} {x.real.nope}",  # unknown names and attributes
        "{boom} {boom.attr} {boom[0]} {prop.fails}",  # lookups and str() that raise
        "{In[99]} {Out[1]} {d['nope']} {x[0]}",  # failing subscripts
        "{obj._private} {x.__class__} {obj.inner.__dict__} {__secret}",  # private refused
        "{__class__} {__builtins__}",
        "{x[0][1]} {x[a]} {x[1:2]} {x()}",  # outside the grammar
        "{}",
        "{{",
        "}}",
        "}{",
        "{{{",
        "{x",
        "x}",
    ],
)
def test_leaves_everything_else_as_typed(text: str) -> None:
    result = interpolate(text, NS)
    assert result.text == text
    assert result.replaced == []


def test_getattr_raising_is_left_as_typed() -> None:
    assert run("{boom.anything} and {x}") == "{boom.anything} and 5"


def test_str_raising_is_left_as_typed() -> None:
    assert run("{boom}", {"boom": Boom()}) == "{boom}"


def test_mapping_lookup_raising_is_left_as_typed() -> None:
    class Hostile(dict[str, object]):
        def get(self, key: str, default: object = None) -> object:
            raise KeyError(key)

    assert run("{x}", Hostile(x=1)) == "{x}"


def test_none_value_is_substituted() -> None:
    assert run("{v}", {"v": None}) == "None"


# --- escapes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{x}}", "{x}"),  # escaped: literal text, not substituted
        ("{{missing}}", "{missing}"),
        ("{{{x}}}", "{5}"),
        ("{{{missing}}}", "{{missing}}"),
        ("{{{{x}}}}", "{{x}}"),
        ('{"a": {x}}', '{"a": 5}'),  # unbalanced: extra outer braces stay
        ("{{x}", "{5"),
        ("{x}}", "5}"),
        ("{{x}} {x}", "{x} 5"),
    ],
)
def test_escape_pairs(text: str, expected: str) -> None:
    assert run(text) == expected


# --- code is never touched -----------------------------------------------------------


def test_fenced_code_is_untouched() -> None:
    text = "Fix {name}'s code:\n```python\nprint(f'{x}') {{x}}\nd = {'a': {x}}\n```\nThanks {name}"
    expected = "Fix Ada's code:\n```python\nprint(f'{x}') {{x}}\nd = {'a': {x}}\n```\nThanks Ada"
    assert run(text) == expected


def test_tilde_fence_and_longer_closing() -> None:
    text = "~~~\n{x}\n```\n{x}\n~~~~~\n{x}"
    assert run(text) == "~~~\n{x}\n```\n{x}\n~~~~~\n5"


def test_shorter_or_other_char_does_not_close() -> None:
    text = "````md\n```\n{x}\n~~~~\n{x}\n````\n{x}"
    assert run(text) == "````md\n```\n{x}\n~~~~\n{x}\n````\n5"


def test_unclosed_fence_runs_to_end() -> None:
    assert run("{x}\n```\n{x}\n{{x}}") == "5\n```\n{x}\n{{x}}"


def test_indented_fence_and_crlf() -> None:
    text = "1. step:\n    ```\n    {x}\n    ```\r\n{x}\r\n"
    assert run(text) == "1. step:\n    ```\n    {x}\n    ```\r\n5\r\n"


def test_closing_fence_with_text_does_not_close() -> None:
    assert run("```\n{x}\n``` not a close\n{x}") == "```\n{x}\n``` not a close\n{x}"


def test_backtick_info_string_with_backtick_is_inline_code() -> None:
    assert run("```a`b {x}``` {x}") == "```a`b {x}``` 5"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("use `{x}` not {x}", "use `{x}` not 5"),
        ("``a ` {x} `` {x}", "``a ` {x} `` 5"),
        ("`{{x}}` {{x}}", "`{{x}}` {x}"),
        ("unmatched ` {x}", "unmatched ` 5"),
        ("span `across\n{x}` lines", "span `across\n{x}` lines"),
        ("no span `across\n\n{x}` paragraphs", "no span `across\n\n5` paragraphs"),
    ],
)
def test_inline_code(text: str, expected: str) -> None:
    assert run(text) == expected


# --- truncation ----------------------------------------------------------------------


def test_long_values_are_truncated_in_the_middle() -> None:
    value = "a" * 50 + "b" * 50
    out = run("{v}", {"v": value}, max_chars=10)
    assert out == "aaaaa…[truncated 90 chars]…bbbbb"


def test_default_limit() -> None:
    out = run("{v}", {"v": "x" * (DEFAULT_MAX_CHARS + 5)})
    assert "…[truncated 5 chars]…" in out
    assert out.count("x") == DEFAULT_MAX_CHARS


@pytest.mark.parametrize(("text", "limit"), [("", 1), ("abc", 3), ("abcd", 1), ("abcd", 3)])
def test_truncate_middle(text: str, limit: int) -> None:
    out = truncate_middle(text, limit)
    if len(text) <= limit:
        assert out == text
    else:
        kept = re.sub(r"…\[truncated \d+ chars\]…", "", out)
        assert len(kept) == limit
        assert text.startswith(out.split("…")[0])


def test_bad_max_chars() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        interpolate("{x}", NS, max_chars=0)
    with pytest.raises(ValueError, match="max_chars"):
        truncate_middle("abc", 0)


def test_five_megabytes_complete() -> None:
    chunk = 'Plot {x} vs {name}: {"a": {b}} `{x}` \\frac{a}{b} {{x}} {missing}\n```\n{x}\n```\n'
    text = chunk * (5_000_000 // len(chunk))
    result = interpolate(text, NS)
    assert result.replaced == ["x", "name", "b"]
    assert interpolate("a" + "`" * 5_000_000 + " {x}", NS).text.endswith(" 5")
    assert interpolate("`" * 5_000_000 + "{x}", NS).replaced == []  # an unclosed fence
    assert interpolate("{" * 5_000_000, NS).text == "{" * 5_000_000


# --- properties ----------------------------------------------------------------------

IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True)
BRACY = st.text(alphabet="ab_x.[]'\"{}0123 -:!\\$^\n`~", max_size=80)
NAMESPACES = st.dictionaries(IDENT, st.one_of(st.integers(), st.text(max_size=5)), max_size=5)

# The exact rule with an empty namespace (see the module docstring): nothing is
# substituted; in every placeholder group the k hugging brace pairs become
# ceil(k / 2) pairs; every other character stays.
_EXPR = r"[^\W\d]\w*(?:\.[^\W\d]\w*)*(?:\[(?:-?\d+|'[^'\\\n]*'|\"[^\"\\\n]*\")\])?"
_GROUP = re.compile(r"(?<![\w\\$^{}])(\{+)(" + _EXPR + r")(\}+)")


def _empty_namespace_oracle(text: str) -> str:
    def halve(m: re.Match[str]) -> str:
        opening, expr, closing = m.groups()
        k = min(len(opening), len(closing))
        keep = (k + 1) // 2
        return "{" * (len(opening) - k + keep) + expr + "}" * (len(closing) - k + keep)

    return _GROUP.sub(halve, text)


@given(st.text().filter(lambda s: "{" not in s and "}" not in s), NAMESPACES)
def test_text_without_braces_is_unchanged(text: str, ns: dict[str, object]) -> None:
    assert interpolate(text, ns) == Interpolated(text, [])


@given(st.text(alphabet=st.characters(exclude_characters="`~")))
def test_empty_namespace_only_collapses_escape_pairs(text: str) -> None:
    assert interpolate(text, {}).text == _empty_namespace_oracle(text)


@given(BRACY.filter(lambda s: "`" not in s and "~" not in s))
def test_empty_namespace_oracle_on_brace_heavy_text(text: str) -> None:
    assert interpolate(text, {}).text == _empty_namespace_oracle(text)


@given(st.lists(st.tuples(st.integers(1, 4), IDENT, st.integers(1, 4)), max_size=6))
def test_escape_rule_by_construction(groups: list[tuple[int, str, int]]) -> None:
    text = " ".join("{" * m + name + "}" * n for m, name, n in groups)
    expected = []
    for m, name, n in groups:
        k = min(m, n)
        keep = (k + 1) // 2
        expected.append("{" * (m - k + keep) + name + "}" * (n - k + keep))
    assert interpolate(text, {}).text == " ".join(expected)


def _closes(line: str, char: str, length: int) -> bool:
    stripped = line.strip(" \t\r")
    return len(stripped) >= length and stripped == char * len(stripped)


@st.composite
def fenced_documents(draw: st.DrawFn) -> tuple[str, str, str]:
    prose = st.text(alphabet=st.characters(exclude_characters="\r"), max_size=60)
    before = draw(prose.filter(lambda s: not re.search(r"^[ \t]*(```|~~~)", s, re.M)))
    char = draw(st.sampled_from("`~"))
    length = draw(st.integers(3, 6))
    info = draw(st.text(alphabet="abc py{}", max_size=6))
    body = draw(
        st.text(max_size=120).filter(
            lambda s: not any(_closes(line, char, length) for line in re.split(r"\n", s))
        )
    )
    closing = char * draw(st.integers(length, length + 2))
    after = "\n" + draw(prose)
    block = f"{char * length}{info}\n{body}\n{closing}"
    return before + "\n", block, after


@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(fenced_documents(), NAMESPACES)
def test_fenced_code_is_preserved_byte_for_byte(
    doc: tuple[str, str, str], ns: dict[str, object]
) -> None:
    before, block, after = doc
    ns = {**ns, "x": "X", "a": "A", "py": "PY"}
    out = interpolate(before + block + after, ns).text
    expected = interpolate(before, ns).text + block + interpolate(after, ns).text
    assert out == expected


@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(fenced_documents())
def test_unclosed_fence_preserves_the_rest(doc: tuple[str, str, str]) -> None:
    before, block, _ = doc
    opening_and_body = block.rsplit("\n", 1)[0]
    ns = {"x": "X", "a": "A"}
    out = interpolate(before + opening_and_body, ns).text
    assert out == interpolate(before, ns).text + opening_and_body


HOSTILE = {"boom": Boom(), "prop": Prop(), "x": 1, "In": ["a"], "Out": {1: "b"}, "d": {"k": 1}}


@given(st.one_of(st.text(), BRACY, st.text(alphabet="{}boomxInOutpropd.[]'\"0-1_`~\n ")))
def test_interpolate_is_total(text: str) -> None:
    result = interpolate(text, HOSTILE, max_chars=3)
    assert isinstance(result.text, str)
    assert all(isinstance(r, str) for r in result.replaced)
