"""Issue 15 items 2 and 5 in a real kernel: every path a key could take out is closed.

The key used here (``localproxy-Key-7f3a9c2e``) has no token shape, so only
the configured-key rules can catch it. Each test names the path it closes:
interpolated values (dry run and the request body), ``{os.environ[...]}``,
the panel's prompt, replies that echo the key in another case or cut short,
verbose tracebacks for bad URLs, credentials in the base URL, ``%env`` after
first use, and the warnings about where the key goes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from glm_magic.testing import EndpointServer, serve

from ..helpers import no_retries
from .harness import Kernel, kernel_env

pytestmark = pytest.mark.kernel

KEY = "localproxy-Key-7f3a9c2e"
API_SECRET = "Zq8wPl2mNx4rTt"
DB_PASSWORD = "Tr0ub4dor3xQ"


def clean(text: str) -> None:
    assert KEY not in text
    assert KEY.lower() not in text.lower()
    assert API_SECRET not in text
    assert DB_PASSWORD not in text


@pytest.fixture(scope="module")
def keyed() -> Iterator[EndpointServer]:
    with serve(port=0, require_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def k(keyed: EndpointServer) -> Iterator[Kernel]:
    kernel = Kernel(kernel_env(keyed.base_url, RUNAPI_KEY=KEY))
    try:
        ex = kernel.run(
            "%load_ext glm_magic\n"
            "import os\n"
            f"api_cfg = {{'api_key': {API_SECRET!r}, 'db_password': {DB_PASSWORD!r}}}"
        )
        assert ex.status == "ok", ex.messages
        yield kernel
    finally:
        kernel.shutdown()


CELL = 'What is wrong with {api_cfg}? Also {os.environ["RUNAPI_KEY"]}'


def test_interpolated_values_are_masked_in_a_dry_run(k: Kernel) -> None:
    ex = k.run(f"%%glm --dry-run --new\n{CELL}")
    assert ex.status == "ok", ex.messages
    assert "What is wrong with {'api_key': '***', 'db_password': '***'}? Also ***" in ex.stdout
    clean(ex.everything())


def test_interpolated_values_are_masked_in_the_request_body(
    k: Kernel, keyed: EndpointServer
) -> None:
    keyed.reset()
    ex = k.run(f"%%glm --new -m glm-4.7\n{CELL}")
    assert ex.status == "ok", ex.messages  # the key went in the header, so it was accepted
    assert "masked" in ex.stdout
    bodies = [json.dumps(r.to_dict()) for r in keyed.requests]
    assert len(bodies) == 1
    assert "What is wrong with" in bodies[0]
    clean(bodies[0])
    clean(ex.everything())
    clean(k.run("%glm history").everything())


def test_a_key_typed_into_the_cell_is_not_sent(k: Kernel, keyed: EndpointServer) -> None:
    keyed.reset()
    ex = k.run(f"%%glm --new -m glm-4.7 --no-interpolate\nmy key is {KEY.upper()}, ok?")
    assert ex.status == "ok", ex.messages
    assert "my key is ***" in json.dumps(keyed.requests[0].to_dict())
    clean(json.dumps(keyed.requests[0].to_dict()))


def test_the_panel_prompt_is_masked_in_the_request_and_the_widgets(
    k: Kernel, keyed: EndpointServer
) -> None:
    keyed.reset()
    ex = k.run(
        "from glm_magic import panel as show_panel\n"
        "p = show_panel(model='glm-4.7', fetch_models=False)\n"
        # What a frontend does when the user types: set the state, with no echo back.
        "p.prompt.set_state({'value': 'use ' + os.environ['RUNAPI_KEY'] + ' ' + repr(api_cfg)})\n"
        "p.send()\np.wait(30)\n"
        "def texts(w):\n"
        "    kids = getattr(w, 'children', ())\n"
        "    return [getattr(w, 'value', '')] + [t for c in kids for t in texts(c)]\n"
        "print(p.prompt.value, texts(p.widget), p.conversation.turns, p.replies)"
    )
    assert ex.status == "ok", ex.error
    assert len(keyed.requests) == 1
    assert "use ***" in json.dumps(keyed.requests[0].to_dict())
    clean(json.dumps(keyed.requests[0].to_dict()))
    # ipywidgets echoes what the user typed back to the frontends (echo_update) as it
    # arrives; everything after that (transcript, cleared box, turns, replies) is masked.
    typed = [m for m in ex.messages if m["content"].get("data", {}).get("method") == "echo_update"]
    assert typed
    clean(json.dumps([m for m in ex.messages if m not in typed], default=str))
    assert "use ***" in ex.stdout


class _EchoHandler(BaseHTTPRequestHandler):
    """Streams a reply that echoes the key: exact, upper-cased, cut short, split in chunks."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.bodies.append(self.rfile.read(length).decode())  # type: ignore[attr-defined]
        pieces = [
            f"exact {KEY[:10]}",
            f"{KEY[10:]} upper {KEY.upper()} ",
            f"short {KEY[4:18]} done",
        ]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in pieces:
            chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_replies_echoing_the_key_are_redacted_everywhere(k: Kernel) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    server.bodies = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        k.run(f"%config GlmMagics.base_url = {url!r}")
        first = k.run("%%glm --new -o echoed\nsay it")
        second = k.run("%%glm\nand again")
        shown = k.run("print(echoed.text, repr(echoed), echoed._repr_html_())\n%glm history")
    finally:
        k.run("%config GlmMagics.base_url = ''")
        server.shutdown()
    assert first.status == "ok", first.messages
    assert shown.status == "ok", shown.error
    assert "exact *** upper *** short *** done" in shown.stdout
    for ex in (first, second, shown):
        clean(ex.everything())
    clean(server.bodies[1])  # the conversation resent with the second cell


@pytest.mark.parametrize("url", ["http://example.com:abc/v1", "http://a..b/v1", "http://xn--/v1"])
def test_bad_urls_fail_in_one_line_even_under_verbose_tracebacks(k: Kernel, url: str) -> None:
    k.run("%xmode Verbose")
    try:
        k.run(f"%config GlmMagics.base_url = {url!r}")
        ex = k.run("%%glm\nhello")
    finally:
        k.run("%config GlmMagics.base_url = ''")
        k.run("%xmode Context")
    assert ex.status == "error"
    # Bad settings are a UsageError at the magic's edge; the client's own mapping a ConfigError.
    assert ex.error is not None and ex.error["ename"] in ("UsageError", "ConfigError"), ex.error
    assert "base URL" in ex.error["evalue"]
    text = ex.everything()
    assert "Traceback" not in text and "headers" not in text
    clean(text)


def test_credentials_in_the_base_url_are_never_shown(k: Kernel, keyed: EndpointServer) -> None:
    url = keyed.base_url.replace("://", f"://bob:{DB_PASSWORD}@")
    try:
        k.run(f"%config GlmMagics.base_url = {url!r}")
        ex = k.run(
            "%glm config\nimport glm_magic.ipython.extension as gm\n"
            "m = gm.current(); print(repr(m.client(m.settings())))"
        )
    finally:
        k.run("%config GlmMagics.base_url = ''")
    assert ex.status == "ok", ex.messages
    assert "***@127.0.0.1" in ex.stdout
    clean(ex.everything())


def test_env_base_url_set_after_first_use_takes_effect(k: Kernel, keyed: EndpointServer) -> None:
    assert k.run("%%glm -m glm-4.7\nhello").status == "ok"
    ex = k.run("%env GLM_BASE_URL=http://127.0.0.1:9/v1\n%glm config")
    k.run(f"%env GLM_BASE_URL={keyed.base_url}")
    assert "base_url        http://127.0.0.1:9/v1" in ex.stdout  # not just %env echoing it


def test_key_warnings_are_given_once_per_kernel(k: Kernel) -> None:
    with no_retries(k):
        k.run("%config GlmMagics.base_url = 'http://glm.example.invalid/v1'")
        try:
            first = k.run("%%glm\nhello")
            again = k.run("%%glm\nhello")
        finally:
            k.run("%config GlmMagics.base_url = ''")
    assert "over plain HTTP" in first.stderr
    assert "not RunAPI" in first.stderr
    assert "over plain HTTP" not in again.stderr and "not RunAPI" not in again.stderr
    clean(first.everything())
