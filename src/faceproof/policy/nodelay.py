"""uvicorn's h11 protocol with TCP_NODELAY on every connection (the registry's HTTP server).

With `workers > 1` uvicorn binds the listening socket itself without the TCP protocol number,
so asyncio skips TCP_NODELAY on accepted connections; a response written as headers and body
then waits for the client's delayed ACK (~40 ms a request on Linux). A module of its own and
light to import: uvicorn imports it in each worker process before the worker answers its first
health check.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["NoDelayH11Protocol"]


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
