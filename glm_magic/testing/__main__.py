"""Command line for the test endpoint: ``python -m glm_magic.testing`` / ``glm-magic-endpoint``.

The first line on stdout is always ``GLM test endpoint listening on <base_url>``
(flushed), so scripts and tests can start it with ``--port 0`` and read the real
port from that line. It then serves until SIGINT or SIGTERM and exits with 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from . import serve

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m glm_magic.testing",
        description="Serve the scripted OpenAI-compatible GLM test endpoint.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    parser.add_argument(
        "--token-delay", type=float, default=0.0, metavar="SECONDS", help="pause between tokens"
    )
    parser.add_argument("--tokens", type=int, default=None, metavar="N", help="reply length")
    parser.add_argument(
        "--max-output",
        type=int,
        default=None,
        metavar="N",
        help="cut replies at N tokens (finish 'length') when a request sends no max_tokens",
    )
    parser.add_argument(
        "--require-key", default=None, metavar="KEY", help="demand 'Authorization: Bearer KEY'"
    )
    parser.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the endpoint until SIGINT/SIGTERM; return the process exit status."""
    args = _parser().parse_args(argv)
    try:
        server = serve(
            args.host,
            args.port,
            args.token_delay,
            args.tokens,
            require_key=args.require_key,
            verbose=not args.quiet,
            max_output=args.max_output,
        )
    except (OSError, OverflowError, ValueError) as exc:  # busy port, bad host/port
        print(f"glm-magic-endpoint: cannot start: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"GLM test endpoint listening on {server.base_url}", flush=True)
        # A timed wait, so the main thread returns to the interpreter to run handlers.
        while not stop.wait(0.5):
            pass
    finally:
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
