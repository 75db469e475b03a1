"""In a real kernel over HTTPS: cells reuse one connection, an interrupt before the first
byte closes it, and a cell over ``GlmMagics.max_concurrent`` waits (and can be interrupted).

The endpoint serves TLS with a throwaway ``trustme`` CA, which the kernel trusts
through ``$SSL_CERT_FILE``; the background reply is started through the kernel's
own session, the way the chat panel and the Explain/Fix buttons start theirs.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from glm_magic.reply import WAITING_NOTE
from glm_magic.testing import EndpointServer, serve

from .harness import Kernel, kernel_env

TIMEOUT = 30.0
BACKGROUND = """
from glm_magic.ipython.extension import current
_s = current().session
_p = _s.prepare("background", _s.settings(model="glm-4.7+tokens=TOKENS+delay=0.05"))
_bg = _s.start(_p, lambda b: None, lambda r, e: None)
"""

STREAM_ENDED = """
import threading, time
_end = time.monotonic() + 30
while any(t.name == "glm-stream" for t in threading.enumerate()) and time.monotonic() < _end:
    time.sleep(0.02)
print("running" if any(t.name == "glm-stream" for t in threading.enumerate()) else "ended")
"""


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EndpointServer, Path]]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    pem = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    server = serve(ssl_context=context)
    try:
        yield server, pem
    finally:
        server.close()


@pytest.fixture(scope="module")
def tls_kernel(tls_server: tuple[EndpointServer, Path]) -> Iterator[Kernel]:
    server, pem = tls_server
    assert server.base_url.startswith("https://")
    k = Kernel(kernel_env(server.base_url, SSL_CERT_FILE=str(pem)))
    try:
        assert k.run("%load_ext glm_magic").status == "ok"
        yield k
    finally:
        k.shutdown()


@pytest.fixture
def srv(tls_server: tuple[EndpointServer, Path], tls_kernel: Kernel) -> EndpointServer:
    server = tls_server[0]
    tls_kernel.run("%config GlmMagics.max_concurrent = 2")
    ex = tls_kernel.run("%%glm --new -m glm-4.7+tokens=4\nwarm up")  # one kept-alive connection
    assert ex.status == "ok", ex.messages
    server.reset()
    return server


def test_cells_reuse_one_connection_over_tls(tls_kernel: Kernel, srv: EndpointServer) -> None:
    for question in ("one", "two", "three"):
        ex = tls_kernel.run(f"%%glm -m glm-4.7+tokens=6\n{question}")
        assert ex.status == "ok" and ex.answer
    assert len(srv.requests) == 3
    assert srv.accepted == 0  # all three on the connection the warm-up opened


def test_interrupt_before_the_first_byte_closes_the_reused_connection(
    tls_kernel: Kernel, srv: EndpointServer
) -> None:
    msg_id = tls_kernel.start("%%glm -m glm-4.7+first_byte_delay=600\nslow to start")
    tls_kernel.wait_for(msg_id, lambda m: m["msg_type"] == "display_data")  # the placeholder
    end = time.monotonic() + TIMEOUT
    while not srv.requests and time.monotonic() < end:  # the request reached the server
        time.sleep(0.02)
    tls_kernel.km.interrupt_kernel()
    ex = tls_kernel.collect(msg_id)
    assert ex.status == "error" and "Stopped" in ex.error["traceback"][0]  # type: ignore[index]
    assert srv.wait_for_outcome(0, TIMEOUT) == "client_closed"
    assert srv.accepted == 0  # it was the reused connection
    assert tls_kernel.run("%%glm -m glm-4.7+tokens=4\nagain").status == "ok"
    assert srv.accepted == 1  # the next reply opened a fresh one


def _waiting(msg: dict[str, object]) -> bool:
    return msg["msg_type"] == "update_display_data" and WAITING_NOTE in str(msg["content"])


def test_a_cell_over_the_limit_waits_and_shows_it(tls_kernel: Kernel, srv: EndpointServer) -> None:
    assert tls_kernel.run("%config GlmMagics.max_concurrent = 1").status == "ok"
    # About three seconds long: the cell waits for it to finish (the kernel is busy with the
    # cell, so nothing else can run in it meanwhile).
    assert tls_kernel.run(BACKGROUND.replace("TOKENS", "60")).status == "ok"
    msg_id = tls_kernel.start("%%glm -m glm-4.7+tokens=5\nafter the background one")
    early = tls_kernel.wait_for(msg_id, _waiting, timeout=TIMEOUT)
    assert len(srv.requests) == 1  # the cell's request is not sent while it waits
    ex = tls_kernel.collect(msg_id)
    ex.messages[:0] = early
    assert ex.status == "ok" and ex.answer
    assert WAITING_NOTE not in str(ex.final_bundle())
    # Outcomes are recorded after the server's last write: wait for them, do not race them.
    assert [srv.wait_for_outcome(i, TIMEOUT) for i in range(2)] == ["completed", "completed"]
    assert len(srv.requests) == 2
    assert srv.peak_in_flight == 1


def test_interrupt_while_waiting_sends_nothing(tls_kernel: Kernel, srv: EndpointServer) -> None:
    assert tls_kernel.run("%config GlmMagics.max_concurrent = 1").status == "ok"
    # A minute long: a waiter that ignored the interrupt would outlive the wait below.
    background = BACKGROUND.replace("TOKENS", "600").replace("delay=0.05", "delay=0.1")
    assert tls_kernel.run(background).status == "ok"
    msg_id = tls_kernel.start("%%glm -m glm-4.7+tokens=5\nnever sent")
    tls_kernel.wait_for(msg_id, _waiting, timeout=TIMEOUT)
    tls_kernel.km.interrupt_kernel()
    ex = tls_kernel.collect(msg_id)
    assert ex.status == "error" and "Stopped" in ex.error["traceback"][0]  # type: ignore[index]
    # The cell's stream thread gave up waiting at once (it did not wait for a slot).
    assert tls_kernel.run(STREAM_ENDED).stdout.strip() == "ended"
    tls_kernel.run("_bg.stop()")
    assert srv.wait_for_outcome(0, TIMEOUT) == "client_closed"
    assert len(srv.requests) == 1  # only the background reply was ever sent
