"""Deadlines on what a client sends, so a silent or slow client cannot hold a connection for ever.

uvicorn closes a kept-alive connection that stays idle between requests (``--keep-alive-s``), but not one that opens
and sends nothing, nor one that sends its headers or its body a byte at a time: 400 such connections held for 45 s
were all still open at the end. This protocol adds two deadlines:

- the headers of a request must be complete within ``--header-timeout-s`` of the connection, or of the request's
  first byte on a kept-alive one;
- a body may pause at most ``--body-timeout-s`` between arrivals (not while the server itself has stopped reading
  because the app has not taken what came).

Past either the connection is closed; the app sees a disconnect, as when a client goes away.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADERS, BODY = "headers", "body"


class DeadlineProtocol(HttpToolsProtocol):
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: str | None = HEADERS
        self._arm(self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for == BODY:
            self._arm(self.body_timeout_s)  # a pause is what counts, not the whole body's time

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._waiting_for = HEADERS
        if self._deadline is None:
            self._arm(self.header_timeout_s)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._waiting_for = BODY
        self._arm(self.body_timeout_s)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._waiting_for = None
        self._disarm()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        if seconds > 0:
            self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self._waiting_for is None or self.transport.is_closing():
            return
        if self._waiting_for == BODY and self.flow.read_paused:  # the app is behind, not the client
            self._arm(self.body_timeout_s)
            return
        self.logger.info("closing a connection that sent no %s for too long", self._waiting_for)
        self.transport.close()


def with_deadlines(header_timeout_s: float, body_timeout_s: float) -> type[DeadlineProtocol]:
    """The protocol class for uvicorn's ``http`` setting, with these deadlines (0: none)."""
    return type(
        "DeadlineProtocol",
        (DeadlineProtocol,),
        {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s},
    )
