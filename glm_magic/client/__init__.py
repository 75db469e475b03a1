"""The HTTP layer: the only importer of httpx (see docs/ARCHITECTURE.md).

:class:`ChatClient` sends chat-completion requests (streamed or whole) and
turns the server's bytes into typed events (:mod:`glm_magic.events`);
:mod:`.sse` decodes Server-Sent Events with GLM's quirks; :mod:`.errormap`
maps HTTP failures onto the error tree once. Nothing here knows who shows
the reply.
"""

from __future__ import annotations

from .chat import ChatClient, KeyAuth, ReplyStream, build_body

__all__ = ["ChatClient", "KeyAuth", "ReplyStream", "build_body"]
