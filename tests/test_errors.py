"""The error tree's one-line form: the label once, the server's words kept."""

from __future__ import annotations

from glm_magic.errors import AuthenticationError, RateLimitError, one_line


def test_the_label_is_not_repeated_when_the_server_already_says_it() -> None:
    err = AuthenticationError("Authentication failed: invalid api key")
    assert err.one_line() == "Authentication failed: invalid api key"
    assert err._render_traceback_() == ["\x1b[0;31mAuthentication failed:\x1b[0m invalid api key"]


def test_the_label_is_added_to_other_messages() -> None:
    assert AuthenticationError("invalid api key").one_line() == (
        "Authentication failed: invalid api key"
    )
    assert RateLimitError("slow   down\nplease").one_line().endswith(": slow down please")


def test_one_line_of_any_exception() -> None:
    assert one_line(ValueError("bad\n  value")) == "bad value"
    assert one_line(KeyError()) == "KeyError"
    assert one_line(AuthenticationError("nope")) == "Authentication failed: nope"
