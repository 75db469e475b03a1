"""Issue 15 item 4: every masking gap found by the review, one test each, plus properties.

Each example is a planted secret in the form it was found in; the property
tests plant a secret of each kind in arbitrary surrounding text and check it
never survives.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glm_magic.errors import redact
from glm_magic.masking import mask_secrets

KEY = "localproxy-Key-7f3a9c2e"
AWS_ID = "AKIAZ7Q3KXN4VB2MTR5P"
AWS_SECRET = "q9Zr/4vLmT+2xWcB7nY1kPa0sJeHd8GfUo6iQ3Rt"

# (name, text, secret that must be gone, text that must stay)
GAPS = [
    ("aws positional", f"boto3.Session('{AWS_ID}', '{AWS_SECRET}')", AWS_SECRET, "Session("),
    (
        "table header on its own line",
        "user    password    host\nalice   Tr0ub4dor&3  db1\nbob     hunter2xyz  db2",
        "Tr0ub4dor&3",
        "alice",
    ),
    (
        "pandas table with an index column",
        "    user    db_password\n0  alice   Tr0ub4dor&3\n1    bob    hunter2xyz",
        "hunter2xyz",
        "bob",
    ),
    ("markdown table", "| user | secret |\n|---|---|\n| bob | Zq8wPl2mNx |", "Zq8wPl2mNx", "bob"),
    ("csv", "user,api_key\nalice,Zq8wPl2mNx4r\n", "Zq8wPl2mNx4r", "alice"),
    ("hugging face", "login(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)", "hf_QwErTyUiOp", "login("),
    (
        "sendgrid",
        "SendGridAPIClient('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')",
        "aB3dE5gH7jK9",
        "SendGridAPIClient",
    ),
    (
        "slack webhook",
        "requests.post('https://hooks.slack.com/services/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')",
        "Xy7Zq8Wp9Ls0",
        "hooks.slack.com",
    ),
    (
        "azure connection string",
        "'DefaultEndpointsProtocol=https;AccountName=acct;"
        "AccountKey=Zm9vYmFyYmF6cXV4+/Zm9vYmFyYmF6cXV4==;EndpointSuffix=core.windows.net'",
        "Zm9vYmFyYmF6",
        "AccountName=acct",
    ),
    ("curl -u", "!curl -u alice:Tr0ub4dor3x https://api.example.com", "Tr0ub4dor3x", "alice"),
    ("mysql -p", "!mysql -u root -pTr0ub4dor3x shop", "Tr0ub4dor3x", "shop"),
    (
        "curl -H X-Api-Key",
        "!curl -H 'X-Api-Key: Zq8wPl2mNx4rTt' https://api.example.com",
        "Zq8wPl2mNx4rTt",
        "X-Api-Key",
    ),
    (
        "token split across literals",
        "token = 'ghp_Zq8wPl2mNx' + '4rTtYu7iOp0aSdFgHjKlQwE'",
        "4rTtYu7iOp0aSdFgHjKlQwE",
        "token",
    ),
    ("configured key split", f"k = '{KEY[:9]}' + '{KEY[9:]}'", KEY[9:], "k = "),
    (
        "configured key split over lines",
        f"k = ('{KEY[:9]}'\n     '{KEY[9:]}')",
        KEY[9:],
        "k = (",
    ),
    (
        "escaped JSON in a log line",
        'INFO body={\\"api_key\\": \\"Zq8wPl2mNx4rTt\\", \\"n\\": 3}',
        "Zq8wPl2mNx4rTt",
        '\\"n\\": 3',
    ),
    ("pw", "pw = 'Tr0ub4dor3x'", "Tr0ub4dor3x", "pw = "),
    (
        "url password with @",
        "engine = create_engine('postgresql://bob:p@ss@w0rd@db.example.com:5432/shop')",
        "p@ss@w0rd",
        "db.example.com:5432/shop",
    ),
    ("configured key upper-cased", f"auth failed: {KEY.upper()}", KEY.upper(), "auth failed"),
    ("configured key cut short", f"key={KEY[2:16]}...", KEY[2:16], "..."),
]


@pytest.mark.parametrize(("name", "text", "secret", "kept"), GAPS, ids=[g[0] for g in GAPS])
def test_each_gap_is_masked(name: str, text: str, secret: str, kept: str) -> None:
    result = mask_secrets(text, [KEY])
    assert secret not in result.text, result.text
    assert kept in result.text, result.text
    assert result.count >= 1
    assert mask_secrets(result.text, [KEY]).count == 0  # idempotent


def test_ordinary_tables_and_concatenation_are_kept() -> None:
    text = (
        "token   count\nthe     12345\nhello   42\n"  # a tokenizer's table
        "name = 'first' + 'second'\n"
        "| user | host |\n|---|---|\n| alice | db1 |\n"
        "mysql is a database; -p is a flag\n"
    )
    assert mask_secrets(text).text == text


def test_redact_finds_the_key_in_any_case_and_any_long_run() -> None:
    assert redact(f"bad key {KEY.swapcase()}!", KEY) == "bad key ***!"
    assert KEY[5:17] not in redact(f"bad key {KEY[5:17]}", KEY)
    assert redact(f"short {KEY[:8]}", KEY) == f"short {KEY[:8]}"  # under 12: ordinary text


# -- properties: a planted secret of each kind never survives, whatever surrounds it --------

NOISE = st.text(alphabet=st.sampled_from(list("abc XYZ019 \n\t.,;:()[]{}=+-_/#'\"")), max_size=40)
_B62 = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789"


def _random(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=_B62, min_size=size, max_size=size).filter(
        lambda s: any(c.isdigit() for c in s) and any(c.isupper() for c in s)
    )


KINDS: dict[str, st.SearchStrategy[tuple[str, str]]] = {
    # (text holding the secret, the part that must not survive)
    "hf": _random(34).map(lambda s: (f"hf_{s}", s)),
    "sendgrid": st.tuples(_random(22), _random(43)).map(lambda p: (f"SG.{p[0]}.{p[1]}", p[1])),
    "slack webhook": _random(24).map(
        lambda s: (f"https://hooks.slack.com/services/T01234567/B01234567/{s}", s)
    ),
    "aws pair": _random(40).map(lambda s: (f"Session('{AWS_ID}', '{s}')", s)),
    "azure": _random(44).map(lambda s: (f"AccountName=a;AccountKey={s}==;Suffix=x", s)),
    "curl -u": _random(14).map(lambda s: (f"curl -u bob:{s} https://x", s)),
    "mysql -p": _random(14).map(lambda s: (f"mysql -u root -p{s} db", s)),
    "header": _random(20).map(lambda s: (f"-H 'X-Api-Key: {s}'", s)),
    "escaped json": _random(20).map(lambda s: (f'{{\\"api_key\\": \\"{s}\\"}}', s)),
    "pw": _random(14).map(lambda s: (f"pw = '{s}'", s)),
    "url password with @": _random(10).map(lambda s: (f"mysql://u:{s}@x@db.example.com/d", s)),
    "configured key split": st.integers(4, len(KEY) - 4).map(
        lambda i: (f"'{KEY[:i]}' + '{KEY[i:]}'", f"{KEY[:i]}|{KEY[i:]}")
    ),
    "configured key upper-cased": st.just((KEY.upper(), KEY.upper())),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_planted_secret_never_survives(kind: str) -> None:
    @settings(max_examples=60, deadline=None)
    @given(NOISE, KINDS[kind], NOISE)
    def check(before: str, planted: tuple[str, str], after: str) -> None:
        text, secret = planted
        # Separate the secret from the noise the way real text does (a space or a line).
        result = mask_secrets(f"{before}\n{text}\n{after}", [KEY])
        for part in secret.split("|"):  # a split key: neither half may survive
            assert part not in result.text, result.text

    check()
