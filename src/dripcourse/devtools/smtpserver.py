"""A real SMTP server that keeps what it receives: the demo's mail server and the tests' `smtpd`.

Responsible for running aiosmtpd in a background thread on a given or free port, recording every
accepted message (envelope, raw bytes and the parsed message), counting connections, and answering
with scripted errors on request, so delivery code is exercised against real SMTP instead of mocks.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import threading
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from functools import cached_property
from types import TracebackType
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Command = Literal["MAIL", "RCPT", "DATA", "RSET"]
_COMMANDS: tuple[Command, ...] = ("MAIL", "RCPT", "DATA", "RSET")
_STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    """The message exactly as received after DATA (dot-unstuffed, CRLF line endings)."""

    @cached_property
    def message(self) -> EmailMessage:
        """`data` parsed with `email.policy.default`, when first asked for: a test that counts
        20,000 arrivals by their envelope should not wait for 20,000 parses."""
        return BytesParser(EmailMessage, policy=default).parsebytes(self.data)


class CapturingSMTPServer:
    """An SMTP server in a background thread; `start()`/`stop()` or use it as a context manager.

    `port=0` picks a free port when first started; a restart keeps the port, so clients see the same
    server go away and come back. With `credentials`, AUTH is offered (without TLS: it only listens
    locally) and mail is refused with 530 until the client logs in with them. PIPELINING (RFC 2920)
    is offered unless `pipelining=False`: aiosmtpd reads each connection as one stream and answers
    commands in order, so it handles pipelined commands, but it does not say so by itself.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        credentials: tuple[str, str] | None = None,
        pipelining: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.credentials = credentials
        self.pipelining = pipelining
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._connections = 0
        self._refused_recipients: dict[str, str] = {}
        self._scripted: dict[Command, deque[str]] = {command: deque() for command in _COMMANDS}
        self._sessions: list[SMTP] = []
        self.accepted_reply = "250 OK: queued"
        """The answer to a message's content that it accepts: a provider's relay names the queued
        message in it (Amazon SES: `250 Ok <id>`), which tests may imitate."""
        self._controller: _Controller | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError("the SMTP server is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # Bound here rather than by aiosmtpd so that port 0 works and the port is known at once.
        listener = socket.create_server((self.host, self.port), family=family)
        # asyncio turns Nagle off only on sockets whose proto is IPPROTO_TCP, which create_server's
        # are not (proto 0); accepted connections inherit it from here. With Nagle on, each reply
        # to pipelined commands after the first waits for the client's delayed ACK (~40 ms).
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = listener.getsockname()[1]
        controller = _Controller(self, listener)
        with self._lock:
            connections = self._connections
        try:
            controller.start()
        except BaseException:
            listener.close()
            raise
        with self._lock:
            # Controller.start() opens one connection of its own to check the server answers.
            self._connections = connections
        self._controller = controller

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is None:
            return
        # Hang up on clients first, as a real server going down would; otherwise their sockets
        # linger half-open after the event loop stops.
        hang_up = asyncio.run_coroutine_threadsafe(self._hang_up(), controller.loop)
        hang_up.result(timeout=_STOP_TIMEOUT)
        controller.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what it saw ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The `smtp://` URL of this server for `dripcourse.backends.load_backend`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"smtp://{host}:{self.port}?tls=none"

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of the accepted messages, oldest first."""
        with self._lock:
            return list(self._messages)

    @property
    def connections(self) -> int:
        """How many client connections the server has accepted."""
        with self._lock:
            return self._connections

    # -- how it answers -------------------------------------------------------------------------

    def fail_recipient(self, address: str, code: int = 550, text: str | None = None) -> None:
        """Answer RCPT TO for `address` (any case) with `code` until `reset()`."""
        reply = _reply(code, text or f"{code // 100}.1.1 <{address}>: mailbox unavailable")
        with self._lock:
            self._refused_recipients[address.lower()] = reply

    def fail_next(
        self, n: int = 1, code: int = 451, text: str | None = None, *, command: Command = "DATA"
    ) -> None:
        """Answer the next `n` `command`s (DATA unless told: MAIL, RCPT, RSET) with `code`."""
        if command not in _COMMANDS:
            raise ValueError(f"command must be one of {', '.join(_COMMANDS)}, not {command!r}")
        reply = _reply(code, text or f"{code // 100}.0.0 scripted failure")
        with self._lock:
            self._scripted[command].extend([reply] * n)

    def reset(self) -> None:
        """Forget received messages, the connection count and every scripted failure."""
        with self._lock:
            self._messages.clear()
            self._connections = 0
            self._refused_recipients.clear()
            for replies in self._scripted.values():
                replies.clear()

    # -- called from the server thread ----------------------------------------------------------

    def _connection_opened(self, session: SMTP) -> None:
        with self._lock:
            self._connections += 1
            self._sessions = [s for s in self._sessions if s.transport is not None]
            self._sessions.append(session)

    def _scripted_reply(self, command: Command) -> str | None:
        with self._lock:
            replies = self._scripted[command]
            return replies.popleft() if replies else None

    def _recipient_reply(self, address: str) -> str | None:
        with self._lock:
            return self._refused_recipients.get(address.lower())

    def _record(self, envelope: Envelope) -> None:
        data = envelope.original_content or b""
        received = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=data,
        )
        with self._lock:
            self._messages.append(received)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        valid = (
            self.credentials is not None
            and isinstance(auth_data, LoginPassword)
            and hmac.compare_digest(auth_data.login, self.credentials[0].encode())
            and hmac.compare_digest(auth_data.password, self.credentials[1].encode())
        )
        # handled=False lets aiosmtpd answer the standard 235 / 535 replies.
        return AuthResult(success=valid, handled=False, auth_data=auth_data)

    async def _hang_up(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            if session.transport is not None:
                session.transport.close()
        # Let the transports' connection_lost callbacks run before the loop is stopped.
        await asyncio.sleep(0)


class _Handler:
    """aiosmtpd's hooks, answering as the owning server has been told to."""

    def __init__(self, owner: CapturingSMTPServer) -> None:
        self._owner = owner

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        # With this (5-argument) hook, aiosmtpd leaves recording the client's name to the handler.
        session.host_name = hostname
        if self._owner.pipelining:
            responses.insert(-1, "250-PIPELINING")  # before the last line, "250 HELP"
        return responses

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._owner.credentials is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        reply = self._owner._scripted_reply("MAIL")
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self._owner._recipient_reply(address) or self._owner._scripted_reply("RCPT")
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self._owner._scripted_reply("DATA")
        if reply is not None:
            return reply
        self._owner._record(envelope)
        return self._owner.accepted_reply

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self._owner._scripted_reply("RSET") or "250 OK"


class _Controller(Controller):
    def __init__(self, owner: CapturingSMTPServer, listener: socket.socket) -> None:
        extra: dict[str, Any] = {}
        if owner.credentials is not None:
            extra = {"auth_require_tls": False, "authenticator": owner._authenticate}
        super().__init__(
            _Handler(owner),
            hostname=owner.host,
            port=owner.port,
            # A fixed name: aiosmtpd would otherwise look up the FQDN for every connection.
            server_hostname="localhost",
            **extra,
        )
        self._owner = owner
        self._listener = listener

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._listener)

    def factory(self) -> SMTP:
        # aiosmtpd calls this once per accepted connection. (Controller.factory does the same
        # construction but is untyped.)
        session = SMTP(self.handler, **self.SMTP_kwargs)
        self._owner._connection_opened(session)
        return session


def _reply(code: int, text: str) -> str:
    if not 400 <= code <= 599:
        raise ValueError(f"an error reply code is 4xx or 5xx, not {code}")
    return f"{code} {text}"
