"""Latency over TLS with a real round-trip time, and the in-flight limit under contention.

The bundled endpoint serves HTTPS on loopback with a throwaway ``trustme``
certificate, behind a user-space proxy that adds a 50 ms round-trip time
(:mod:`_netsim`; the client trusts the CA through ``$SSL_CERT_FILE``, as a
user's corporate CA would be). Measured:

1. time to first token (TTFT) of replies 2 to 10 of a conversation through
   ``ChatClient.stream``, against a raw pooled ``httpx.Client`` streaming the
   same requests (goal: at most 1.05x);
2. TTFT of the first reply (a new connection: TCP and TLS handshakes), against
   a raw ``httpx.Client`` making its first request (goal: at most 1.05x);
3. three surfaces at once (a foreground ``Session.run`` like a cell, two
   ``Session.start`` like the panel and a Fix button) with
   ``max_concurrent = 1``, against an endpoint that answers 1302 when more than
   one request is in flight: total wall time against running the three one
   after another (goal: at most 1.1x) and the 1302 answers (goal: none).

TTFT is from starting the request to the first answer text (our
``TextDelta``; for the raw client, the first ``data:`` line with content).
``--before`` runs only measure 1 with whatever ``glm_magic`` is importable
(how the before figure of commit d9f6145 was taken).

Run: ``.venv/bin/python benchmarks/bench_network.py [--conversations 5] [--before]``.
"""

from __future__ import annotations

import argparse
import os
import ssl
import tempfile
import threading
import time
from typing import Any

from _common import Table, median, ms, progress, ratio, secs, verdict
from _netsim import DelayProxy

RTT = 0.050
#: Measure 1 before connections were kept alive (commit d9f6145, run with ``--before``
#: on 2026-11-30 on this machine): every reply opened a new TCP + TLS connection.
BEFORE = "before keep-alive (d9f6145): replies 2-10 196.0 ms vs raw pooled 52.2 ms (3.75x)"
MESSAGES = [{"role": "user", "content": "hello"}]


def _tls() -> tuple[ssl.SSLContext, ssl.SSLContext, str]:
    import trustme

    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    pem = os.path.join(tempfile.mkdtemp(prefix="glm-bench-ca-"), "ca.pem")
    ca.cert_pem.write_to_path(pem)
    return server, client, pem


def _ttft_ours(client: Any, settings: Any) -> float:
    from glm_magic.events import TextDelta

    t0 = time.perf_counter()
    first = None
    for event in client.stream(MESSAGES, settings):
        if first is None and isinstance(event, TextDelta) and event.text:
            first = time.perf_counter() - t0
    assert first is not None
    return first


def _ttft_raw(http: Any, url: str, model: str) -> float:
    body = {"model": model, "messages": MESSAGES, "stream": True}
    t0 = time.perf_counter()
    first = None
    with http.stream("POST", url, json=body) as response:
        for line in response.iter_lines():
            if first is None and line.startswith("data:") and '"content":"' in line:
                first = time.perf_counter() - t0
    assert first is not None
    return first


def measure_ttft(base: str, model: str, ctx: ssl.SSLContext, conversations: int) -> dict[str, Any]:
    import httpx

    from glm_magic.client.chat import ChatClient
    from glm_magic.config import Settings

    settings = Settings(base_url=base, model=model, max_retries=0)
    url = base + "/chat/completions"
    ours_first, ours_next, raw_first, raw_next = [], [], [], []
    for i in range(conversations):
        progress(f"conversation {i + 1}/{conversations}")
        with ChatClient(settings) as client:
            times = [_ttft_ours(client, settings) for _ in range(10)]
        ours_first.append(times[0])
        ours_next.extend(times[1:])
        with httpx.Client(verify=ctx) as http:
            times = [_ttft_raw(http, url, model) for _ in range(10)]
        raw_first.append(times[0])
        raw_next.extend(times[1:])
    return {
        "ours_first": median(ours_first),
        "ours_next": median(ours_next),
        "raw_first": median(raw_first),
        "raw_next": median(raw_next),
    }


class _Quiet:
    """A renderer that shows nothing (the surfaces' rendering is measured elsewhere)."""

    def start(self) -> None: ...
    def progress(self, builder: Any) -> None: ...
    def tick(self) -> None: ...
    def finish(self, reply: Any) -> None: ...


def measure_surfaces(base: str, model: str) -> dict[str, Any]:
    from glm_magic.core.session import Session

    session = Session()
    settings = session.settings(base_url=base, model=model, max_concurrent=1, max_retries=3)
    prepared = [session.prepare(f"question {i}", settings) for i in range(3)]
    session.run(prepared[0], _Quiet())  # warm: the connection and the imports

    t0 = time.perf_counter()
    for p in prepared:
        session.run(p, _Quiet())
    sequential = time.perf_counter() - t0

    errors: list[Exception | None] = []
    done = threading.Event()

    def on_done(reply: Any, error: Exception | None) -> None:
        errors.append(error)
        if len(errors) == 2:
            done.set()

    t0 = time.perf_counter()
    session.start(prepared[1], lambda b: None, on_done)  # the panel
    session.start(prepared[2], lambda b: None, on_done)  # a Fix button
    session.run(prepared[0], _Quiet())  # the cell
    done.wait(60)
    together = time.perf_counter() - t0
    session.close()
    return {"sequential": sequential, "together": together, "errors": errors}


def run(argv: list[str]) -> list[Table]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=5)
    parser.add_argument("--before", action="store_true")
    args = parser.parse_args(argv)

    from glm_magic.testing import serve

    server_ctx, client_ctx, pem = _tls()
    os.environ["SSL_CERT_FILE"] = pem  # how ChatClient and Session learn to trust the CA
    tables = []
    model = "glm-4.7+tokens=20+delay=0.002"
    with serve(ssl_context=server_ctx) as srv, DelayProxy((srv.host, srv.port), RTT) as proxy:
        base = f"https://127.0.0.1:{proxy.port}/v1"
        r = measure_ttft(base, model, client_ctx, args.conversations)
        table = Table(
            f"Time to first token over TLS with a {RTT * 1000:.0f} ms round trip "
            f"(median, {args.conversations} conversations of 10 replies)",
            ["reply", "ChatClient.stream", "raw httpx.Client", "ratio", "goal"],
        )
        nxt = r["ours_next"] / r["raw_next"] <= 1.05
        table.add(
            "replies 2-10 (raw: pooled client)",
            ms(r["ours_next"]),
            ms(r["raw_next"]),
            ratio(r["ours_next"], r["raw_next"]),
            f"<= 1.05x: {verdict(nxt)}",
        )
        first = r["ours_first"] / r["raw_first"] <= 1.05
        table.add(
            "reply 1 (raw: a fresh client)",
            ms(r["ours_first"]),
            ms(r["raw_first"]),
            ratio(r["ours_first"], r["raw_first"]),
            f"<= 1.05x: {verdict(first)}",
        )
        table.note(
            f"connections the endpoint accepted: {proxy.accepted} for {len(srv.requests)} requests"
        )
        table.note(
            "the proxy holds every chunk RTT/2 each way and a new connection's first bytes "
            "one more RTT (the TCP handshake); the TLS handshake crosses it for real"
        )
        if not args.before:
            table.note(BEFORE)
        table.show()
        tables.append(table)
    if args.before:
        return tables

    with (
        serve(ssl_context=server_ctx, max_in_flight=1) as srv,
        DelayProxy((srv.host, srv.port), RTT) as proxy,
    ):
        base = f"https://127.0.0.1:{proxy.port}/v1"
        progress("three surfaces at once, max_concurrent = 1")
        s = measure_surfaces(base, "glm-4.7+tokens=50+delay=0.01")
        refused = sum(1 for q in srv.requests if q.status == 429)
        table = Table(
            "Three surfaces at once (cell + panel + button), max_concurrent = 1, "
            "endpoint refusing a 2nd request in flight with 1302",
            ["run", "wall", "vs one after another", "goal"],
        )
        table.add("one after another", secs(s["sequential"]), "1.00x", "-")
        ok = s["together"] / s["sequential"] <= 1.1
        table.add(
            "all three at once",
            secs(s["together"]),
            ratio(s["together"], s["sequential"]),
            f"<= 1.1x: {verdict(ok)}",
        )
        failed = [e for e in s["errors"] if e is not None]
        table.note(
            f"1302 answers from the endpoint: {refused} (goal 0: {verdict(refused == 0)}); "
            f"failed replies: {len(failed)}; most requests in flight: {srv.peak_in_flight}"
        )
        table.show()
        tables.append(table)
    table = Table("HTTP/2", [])
    table.note(
        "not used: with connections kept alive, replies 2-10 already start as fast as a raw "
        "pooled HTTP/1.1 client (above), so multiplexing has no handshake left to save; with "
        "max_concurrent at 1-2 there is no head-of-line queue to avoid; and one HTTP/2 socket "
        "carries every surface's reply, so a Stop that shuts its socket would stop them all"
    )
    table.show()
    tables.append(table)
    return tables


if __name__ == "__main__":
    run(__import__("sys").argv[1:])
