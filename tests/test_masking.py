from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import glm_magic.masking as masking_module
from glm_magic.masking import MASK, Masked, is_secret_name, mask_secrets

OPENAI = "sk-proj-Ab3dEfGh1jKlMn0pQrStUvWxYz0123456789"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
ZAI = "0123456789abcdef0123456789abcdef.AbCdEfGhIjKlMnOp"


def masked(text: str, *secrets: str) -> str:
    return mask_secrets(text, secrets).text


def test_all_lists_public_names() -> None:
    public = {"MASK", "Masked", "is_secret_name", "mask_key", "mask_secrets"}
    assert set(masking_module.__all__) == public
    for name in ("Masked", "is_secret_name", "mask_secrets"):
        assert getattr(masking_module, name).__doc__


# --- token shapes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {OPENAI} here", "key *** here"),
        ("sk-abcdefghijklmnopqrstuvwx12345678", "***"),
        ("sk-ant-api03-abcdefghijklmnop_qrstuvwxyz-0123456789", "***"),
        ("rk-abcdefghijklmnop1234", "***"),
        (
            "stripe pk_live_51HabcdefGHIJklmnopQRSTuv, sk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "stripe ***, ***",
        ),
        ("Authorization: Bearer abc123.def-456_ghi", "Authorization: Bearer ***"),
        (
            "curl -H 'authorization: bearer AbCdEfGhIjKlMnOpQrStUv'",
            "curl -H 'authorization: bearer ***'",
        ),
        (f"Bearer {JWT}", "Bearer ***"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"),
        ("id AKIAIOSFODNN7EXAMPLE and ASIAY34FZKBOKMUTVV7A", "id *** and ***"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key = ***",
        ),
        (
            '"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
            '"AWS_SECRET_ACCESS_KEY": "***"',
        ),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "***"),
        ("github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789ABCDEFGH", "***"),
        ("slack xoxb-123456789012-1234567890123-abcdefghijklmnop", "slack ***"),
        ("google AIzaSyA1234567890abcdefghijklmnopqrstuv", "google ***"),
        (f"zai {ZAI}.", "zai ***."),
        (f"token={JWT}&x=1", "token=***&x=1"),
        (f'jwt: "{JWT}"', 'jwt: "***"'),
    ],
)
def test_token_shapes(text: str, expected: str) -> None:
    assert masked(text) == expected


def test_private_key_pem_block() -> None:
    text = (
        "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabcdEFGH==\n"
        "-----END RSA PRIVATE KEY-----\ndone"
    )
    result = mask_secrets(text)
    assert result.text == (
        "key:\n-----BEGIN RSA PRIVATE KEY-----\n***\n-----END RSA PRIVATE KEY-----\ndone"
    )
    assert result.count == 1


def test_private_key_in_json_string() -> None:
    text = (
        '{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\n'
        '-----END PRIVATE KEY-----\\n"}'
    )
    out = masked(text)
    assert "MIIEvQ" not in out
    assert out == (
        '{"private_key": "-----BEGIN PRIVATE KEY-----\\n***\\n-----END PRIVATE KEY-----\\n"}'
    )


def test_unclosed_private_key_masks_following_base64_lines() -> None:
    text = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\nAAAAB3NzaC1yc2E=\n\nafter"
    assert masked(text) == "-----BEGIN OPENSSH PRIVATE KEY-----\n***\n\nafter"


def test_public_key_and_empty_pem_untouched() -> None:
    text = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----"
    assert masked(text) == text
    empty = "-----BEGIN PRIVATE KEY----------END PRIVATE KEY-----"
    assert masked(empty) == empty


# --- assignments ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("OPENAI_API_KEY=abc123def456", "OPENAI_API_KEY=***"),
        ("export GITHUB_TOKEN=abc123def456", "export GITHUB_TOKEN=***"),
        ("%env GLM_API_KEY=abcdef123456", "%env GLM_API_KEY=***"),
        ("DB_PASSWORD=hunter2 python app.py", "DB_PASSWORD=*** python app.py"),
        ('password = "hunter22"', 'password = "***"'),
        ("password = 'hunter22'  # the password", "password = '***'  # the password"),
        ('SECRET_KEY = r"django-insecure-xyz"', 'SECRET_KEY = r"***"'),
        ("pin_password = 123456", "pin_password = ***"),
        (
            'client = OpenAI(api_key="abcdef123456", base_url=url)',
            'client = OpenAI(api_key="***", base_url=url)',
        ),
        ('self.api_key = "abcdef123456"', 'self.api_key = "***"'),
        ('api_key: str = "abcdef123456"', 'api_key: str = "***"'),
        ('{"password": "s3cr3t!!", "user": "bob"}', '{"password": "***", "user": "bob"}'),
        ("{'apiKey': 'abcdef123456'}", "{'apiKey': '***'}"),
        ('os.environ["OPENAI_API_KEY"] = "abcdef123456"', 'os.environ["OPENAI_API_KEY"] = "***"'),
        ("os.environ['MY_SECRET'] = 'verysecret'", "os.environ['MY_SECRET'] = '***'"),
        ("db_password: hunter2x", "db_password: ***"),
        ("  authToken: abc123def  # comment", "  authToken: ***  # comment"),
        ("- password: correct horse", "- password: ***"),
        ('token: "abc123def"', 'token: "***"'),
        ("spring.datasource.password=s3cr3t", "spring.datasource.password=***"),
        ("[default]\naws_session_token = FwoGZXIvYXdzEJr//", "[default]\naws_session_token = ***"),
        ("mycli --password hunter2 --user bob", "mycli --password *** --user bob"),
        ("mycli --token=abcdef --api-key 'x y z w'", "mycli --token=*** --api-key '***'"),
        ("postgres://user:pa55word@localhost/db", "postgres://user:***@localhost/db"),
        ("https://x.com/api?api_key=abcd1234&q=1", "https://x.com/api?api_key=***&q=1"),
        ("$password = 'hunter22';", "$password = '***';"),
        ("credentials => 'abcdef12'", "credentials => '***'"),
        ("PGPASSWORD=hunter22", "PGPASSWORD=***"),
    ],
)
def test_assignments(text: str, expected: str) -> None:
    assert masked(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        'api_key = os.environ["OPENAI_API_KEY"]',
        "token = get_token()",
        'key = df["col"]',
        "monkey = 'banana split'",
        "api_key = api_key",
        "self.token = settings.GITHUB_TOKEN",
        "secret = None",
        "password: null",
        "auth: true",
        "use_auth=False",
        'api_key = ""',
        "api_key = '***'",
        'api_key = "<your-key>"',
        'api_key = "YOUR_API_KEY"',
        'api_key = "sk-..."',
        "TOKEN=xxx",
        "TOKEN=...",
        "export TOKEN=$GITHUB_TOKEN",
        "token: ${{ secrets.GITHUB_TOKEN }}",
        'headers = {"Authorization": f"Bearer {token}"}',
        "api_key: str",
        "    api_key: Optional[str] = None,",
        "def f(api_key: str | None = None): ...",
        "apiKey: process.env.OPENAI_API_KEY,",
        "max_tokens = 1000",
        "max_tokens: 4096",
        "key_size = 2048",
        "token_count = 12345",
        "auth_type: basic",
        'password_file = "/run/secrets/db"',
        "KEY_PATH=/etc/ssl/private/key.pem",
        "TOKENIZERS_PARALLELISM=false",
        "key = 3",
        'd = {"key": "value"}',
        'sorted(rows, key="name")',
        "password = # filled in later",
        "password:  # filled in later",
        "use --token to authenticate",
        "parser.add_argument('--token', default=None)",
        "sk-learn-is-a-great-library",
        "uses Bearer authentication for everything",
        "Basic information about the dataset",
        "if password == user_input:",
        "The keyboard = broken",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    ],
)
def test_non_secrets_untouched(text: str) -> None:
    result = mask_secrets(text)
    assert result == Masked(text, 0)


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "apiKey",
        "APIKey",
        "SECRET",
        "db_password",
        "authToken",
        "OPENAI_API_KEY",
        "aws_secret_access_key",
        "GITHUB_TOKEN",
        "client_secret",
        "PGPASSWORD",
        "MYSQL_PWD",
        "passwd",
        "Authorization",
        "x-api-key",
        "credentials",
        "DB_PASS",
        "apikey",
        "SECRET_KEY_BASE",
        "spring.datasource.password",
        "refresh_token",
        "jwt_secret",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "monkey",
        "keyboard",
        "turkey",
        "max_tokens",
        "key_size",
        "token_count",
        "auth_type",
        "password_file",
        "KEY_PATH",
        "tokenizer",
        "TOKENIZERS_PARALLELISM",
        "passenger",
        "secretary_name",
        "key",
        "KEY",
        "author",
        "",
        "_",
        "x",
    ],
)
def test_not_secret_names(name: str) -> None:
    assert not is_secret_name(name)


# --- configured secrets, counting, idempotence ---------------------------------------


def test_configured_key_masked_inside_other_text() -> None:
    key = "my-local-proxy-key"
    text = f"url?k={key}&x=1 and prefix{key}suffix and '{key}'"
    result = mask_secrets(text, [key])
    assert result.text == "url?k=***&x=1 and prefix***suffix and '***'"
    assert result.count == 3 == result.text.count(MASK)


def test_short_none_and_placeholder_configured_secrets_are_ignored() -> None:
    text = "abc12 is short, None stays, *** stays"
    assert mask_secrets(text, ["abc12", None, "", "******"]) == Masked(text, 0)


def test_longest_configured_secret_wins() -> None:
    assert masked("key=abcdefgh-12345", "abcdefgh", "abcdefgh-12345") == "key=***"


def test_count_counts_every_masked_span() -> None:
    text = f"a={OPENAI}\nb: {JWT}\npassword = 'hunter22'\n"
    result = mask_secrets(text)
    assert result.count == 3 == result.text.count(MASK)
    assert result.text == "a=***\nb: ***\npassword = '***'\n"


def test_masking_is_idempotent_on_examples() -> None:
    text = (
        f"OPENAI_API_KEY={OPENAI}\nAuthorization: Bearer {JWT}\npassword = 'hunter22'\n"
        f"db_password: hunter2x\n--token=abcdef\n{ZAI}\n"
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
    )
    once = mask_secrets(text, ["hunter2x"])
    twice = mask_secrets(once.text, ["hunter2x"])
    assert twice == Masked(once.text, 0)


def test_five_megabytes_complete() -> None:
    chunk = (
        f"x = 1\napi_key = os.environ['K']\npassword: hunter22\n{OPENAI} Bearer abc123def456\n"
        "{'token': 'abc12345'} --password pw123456 postgres://u:p4ss@h/db eyJ eyJ sk- AKIA\n"
    )
    text = chunk * (5_000_000 // len(chunk))
    result = mask_secrets(text, ["hunter22"])
    assert OPENAI not in result.text
    assert "abc12345" not in result.text
    for hostile in ("eyJ" * 1_700_000, "a" * 5_000_000, " " * 5_000_000, "a: " * 1_700_000):
        assert mask_secrets(hostile).text == hostile


# --- properties ----------------------------------------------------------------------

NOISE = st.text(
    alphabet=st.sampled_from([*"abcXYZ019 _-=:'\"\n\t{}[]()./@$#*~`\\", "é", "🙂"]),
    max_size=40,
)
SNIPPETS = st.sampled_from(
    [
        "password = ",
        "api_key=",
        "token: ",
        '"secret": "',
        "Bearer ",
        "export TOKEN=",
        "--password ",
        "-----BEGIN PRIVATE KEY-----\n",
        "-----END PRIVATE KEY-----",
        "://u:",
        "@",
        "***",
        "sk-",
        "eyJ",
        "AKIA",
        "os.environ['KEY'] = ",
    ]
)
SEPARATORS = st.sampled_from([" ", "\n", "\t", '"', "'", "=", ": ", "(", ",", "= '"])
SK_TOKENS = st.from_regex(r"sk-(proj-)?[A-Za-z0-9]{20,40}[0-9]", fullmatch=True)
PLANTED = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijk0123456789", min_size=6, max_size=24)


@given(
    st.lists(st.one_of(NOISE, SNIPPETS, SK_TOKENS), max_size=12).map("".join),
    st.lists(PLANTED, max_size=2),
)
def test_masking_is_idempotent(text: str, secrets: list[str]) -> None:
    once = mask_secrets(text, secrets)
    twice = mask_secrets(once.text, secrets)
    assert twice.text == once.text
    assert twice.count == 0


@given(
    st.lists(st.tuples(NOISE, SEPARATORS, SK_TOKENS, SEPARATORS), min_size=1, max_size=5),
    NOISE,
    st.lists(PLANTED, max_size=3),
)
def test_planted_sk_tokens_are_removed(
    parts: list[tuple[str, str, str, str]], tail: str, planted: list[str]
) -> None:
    text = "".join(a + b + token + c for a, b, token, c in parts) + tail
    for secret in planted:
        text = secret + " " + text
    result = mask_secrets(text)
    for _, _, token, _ in parts:
        assert token not in result.text
    assert result.count >= len(parts)
    for secret in planted:
        assert result.text.count(secret) <= text.count(secret)


@given(st.lists(st.one_of(NOISE, SNIPPETS, PLANTED), max_size=12).map("".join), PLANTED)
def test_masking_never_increases_occurrences(text: str, secret: str) -> None:
    planted = f"{text}{secret}{text}"
    result = mask_secrets(planted)
    assert result.text.count(secret) <= planted.count(secret)
    assert secret not in mask_secrets(planted, [secret]).text


@given(st.text())
def test_masking_is_total(text: str) -> None:
    result = mask_secrets(text, [text])
    assert isinstance(result.text, str)
    assert result.count >= 0


def test_exception_names_are_not_secret_names() -> None:
    for name in ("KeyError", "TokenError", "AuthError", "PasswordError", "KeyWarning"):
        assert not is_secret_name(name)
    text = "KeyError: 'total'\nTokenError: 'foo'"
    assert mask_secrets(text).text == text
