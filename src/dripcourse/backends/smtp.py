"""SMTP delivery: hands each message to a mail server over one reused connection.

Responsible for the connection's life (connect, implicit TLS or STARTTLS, login, a liveness check
before reuse, a polite QUIT; all through smtplib) and for turning every server reply and network
failure into a per-message result; its `smtp://` URL is read by `smtpurl.py`. The contract is in `base.py`.

Messages go pipelined (RFC 2920, one round trip each; `smtpclient.py`) when the server offers
PIPELINING, else one command at a time through smtplib; `pipelining=0` forces the latter. Either
way a message that is not 7-bit is announced with BODY=8BITMIME (RFC 6152) where the server offers
it. A server that does not is sent the 8-bit message as it is, as smtplib always did, with one
warning in the log per backend: converting to quoted-printable would mean rebuilding the MIME.

A server that cannot be reached (refused, silent, TLS or log-in trouble) costs one attempt (one
timeout) between `open()` and `close()`, that is once per dispatch pass, not once per send group:
the rest of the pass is kept for later at once, and the cause is logged once.
"""

from __future__ import annotations

import functools
import logging
import math
import smtplib
import socket
import ssl
from collections.abc import Sequence
from typing import Self

from dripcourse.backends.base import (
    BackendError,
    DeliveryBackend,
    DeliveryResult,
    Outcome,
    OutgoingMessage,
)
from dripcourse.backends.smtpclient import (
    KeepsDataReply,
    KeepsDataReplySSL,
    Pipeline,
    Verdict,
    local_refusal,
    mail_options,
    send_one,
)
from dripcourse.backends.smtpurl import DEFAULT_PORTS, DEFAULT_TIMEOUT, TLSMode, parse_smtp_url
from dripcourse.domain import provider_ids

log = logging.getLogger(__name__)

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

# 530 "authentication required" says nothing about the recipient: it is our configuration, so the
# mail is kept for later rather than the address being given up on.
_AUTH_REQUIRED = 530
# 421: the server is closing the channel; nothing more can go over this connection.
_CLOSING = 421
_REFUSED = {"MAIL": "sender refused", "RCPT": "recipient refused"}


class _SessionFailure(Exception):
    """The connection cannot carry more mail now: this message and the rest of the batch wait."""

    def __init__(self, detail: str, code: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


class SMTPBackend(DeliveryBackend):
    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        tls: TLSMode | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        pipelining: bool = True,
    ) -> None:
        if tls is None:
            # Plain SMTP is only a sane default where the traffic never leaves the machine.
            tls = "none" if host in _LOCAL_HOSTS else "starttls"
        if (username is None) != (password is None):
            raise BackendError("give both a user name and a password, or neither")
        if not (math.isfinite(timeout) and timeout > 0):
            raise BackendError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.host = host
        self.tls: TLSMode = tls
        self.port = DEFAULT_PORTS[tls] if port is None else port
        self.username = username
        self.password = password
        self.timeout = timeout
        self.pipelining = pipelining
        """Pipeline (RFC 2920) where the server offers it."""
        self.connection_count = 0
        """How many connections this backend has opened in its life."""
        self.pipelined_count = 0
        """How many messages went out pipelined, whatever became of them."""
        self._warned_8bit = False
        self._connection: KeepsDataReply | None = None
        self._unreachable: _SessionFailure | None = None
        """Why no connection could be made since `open()`: the rest of the pass is deferred at once
        instead of paying a connect timeout per send group; `close()` forgets it."""

    @classmethod
    def from_url(cls, url: str) -> Self:
        found = parse_smtp_url(url)
        return cls(
            found.host,
            found.port,
            tls=found.tls,
            username=found.username,
            password=found.password,
            timeout=found.timeout,
            pipelining=found.pipelining,
        )

    def __repr__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        pipelining = "" if self.pipelining else " pipelining=0"
        return f"<SMTPBackend smtp://{user}{self._address} tls={self.tls}{pipelining}>"

    def open(self) -> None:
        if self._connection is not None:
            return
        try:
            self._connection = self._connect()
        except _SessionFailure as failure:
            # A server that is down is a delivery outcome, not an exception: send() tries again and
            # reports it per message.
            log.warning("cannot open SMTP connection: %s", failure.detail)

    def close(self) -> None:
        self._unreachable = None
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except OSError:  # smtplib's errors are OSErrors too; the server may already be gone
            pass
        finally:
            connection.close()

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        results: list[DeliveryResult] = []
        if not messages:
            return results
        if self._unreachable is not None:
            self._defer(messages, self._unreachable, results, logged=True)
            return results
        try:
            self._ensure_live_connection()
            # Each pass ends with every message sent or with the connection dropped after a
            # refused RSET; the next pass goes on over a fresh one.
            while len(results) < len(messages):
                connection = self._connection or self._connect_now()
                rest = messages[len(results) :]
                if self.pipelining and connection.has_extn("pipelining"):
                    self._send_pipelined(connection, rest, results)
                else:
                    self._send_one_by_one(connection, rest, results)
        except _SessionFailure as failure:
            self._defer(messages[len(results) :], failure, results)
        except Exception as exc:
            # A bug must not cost the results of the messages already accepted, or they would be
            # sent again: log it loudly and keep the rest for later.
            log.exception("unexpected error while sending through %s", self._address)
            self._defer(
                messages[len(results) :], _SessionFailure(f"unexpected error: {exc!r}"), results
            )
        return results

    def _defer(
        self,
        rest: Sequence[OutgoingMessage],
        failure: _SessionFailure,
        results: list[DeliveryResult],
        logged: bool = False,
    ) -> None:
        self._drop()
        if not logged:
            log.warning("%d message(s) kept for a later attempt: %s", len(rest), failure.detail)
        results.extend(
            DeliveryResult(m.key, Outcome.TEMPORARY, failure.code, failure.detail) for m in rest
        )

    # -- connection -------------------------------------------------------------------------

    @property
    def _address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def _ensure_live_connection(self) -> None:
        if self._connection is not None:
            # Servers drop idle connections; one NOOP per send() is cheaper than losing a batch.
            try:
                code, _ = self._connection.noop()
            except OSError:
                code = -1
            if code != 250:
                self._drop()
        if self._connection is None:
            self._connect_now()

    def _connect_now(self) -> KeepsDataReply:
        self._connection = self._connect()
        return self._connection

    def _connect(self) -> KeepsDataReply:
        try:
            return self._try_connect()
        except _SessionFailure as failure:
            self._unreachable = failure
            raise

    def _try_connect(self) -> KeepsDataReply:
        context = ssl.create_default_context()
        # Connecting in the constructor is what sets smtplib's private host name, which TLS needs
        # for certificate checks; on failure smtplib closes the socket itself.
        try:
            if self.tls == "ssl":
                connection: KeepsDataReply = KeepsDataReplySSL(
                    self.host,
                    self.port,
                    local_hostname=_local_hostname(),
                    timeout=self.timeout,
                    context=context,
                )
            else:
                connection = KeepsDataReply(
                    self.host, self.port, local_hostname=_local_hostname(), timeout=self.timeout
                )
        except OSError as exc:  # includes smtplib.SMTPException and ssl.SSLError
            raise self._failure(exc) from exc
        self.connection_count += 1
        stage = "EHLO"
        try:
            connection.ehlo_or_helo_if_needed()
            if self.tls == "starttls":
                stage = "STARTTLS"
                code, reply = connection.starttls(context=context)
                if code != 220:
                    raise smtplib.SMTPResponseException(code, reply)
                stage = "EHLO"
                connection.ehlo_or_helo_if_needed()
            if self.username is not None and self.password is not None:
                stage = "authentication"
                connection.login(self.username, self.password)
        except OSError as exc:
            connection.close()
            failure = self._failure(exc)
            raise _SessionFailure(f"{stage} failed: {failure.detail}", failure.code) from exc
        return connection

    def _drop(self) -> None:
        """Forget a connection in an unknown state, without QUIT: the server may not answer."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _failure(self, exc: OSError) -> _SessionFailure:
        """What went wrong with the connection, worded for the person reading the delivery log."""
        if isinstance(exc, smtplib.SMTPConnectError):
            reply = _reply(exc.smtp_code, exc.smtp_error)
            return _SessionFailure(f"{self._address} refused the session: {reply}", exc.smtp_code)
        if isinstance(exc, smtplib.SMTPResponseException):
            return _SessionFailure(_reply(exc.smtp_code, exc.smtp_error), exc.smtp_code)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            # smtplib reports a timeout or reset while reading a reply as a disconnect.
            cause = exc.__context__
            if isinstance(cause, OSError) and not isinstance(cause, smtplib.SMTPException):
                return self._failure(cause)
            return _SessionFailure(f"{self._address} closed the connection unexpectedly")
        if isinstance(exc, ConnectionRefusedError):
            return _SessionFailure(f"connection refused by {self._address}")
        if isinstance(exc, TimeoutError):
            return _SessionFailure(
                f"timed out after {self.timeout:g} s waiting for {self._address}"
            )
        if isinstance(exc, socket.gaierror):
            return _SessionFailure(f"cannot resolve host {self.host!r}: {exc.strerror}")
        if isinstance(exc, ssl.SSLError):
            why = getattr(exc, "verify_message", None) or exc.reason or str(exc)
            return _SessionFailure(f"TLS handshake with {self._address} failed: {why}")
        if isinstance(exc, smtplib.SMTPException):
            return _SessionFailure(str(exc))
        return _SessionFailure(f"network error with {self._address}: {exc.strerror or exc}")

    # -- messages ---------------------------------------------------------------------------

    def _send_pipelined(
        self,
        connection: KeepsDataReply,
        messages: Sequence[OutgoingMessage],
        results: list[DeliveryResult],
    ) -> None:
        try:
            pipeline = Pipeline.over(connection)
            for message in messages:
                refusal = local_refusal(connection, message)
                if refusal is not None:
                    # The message before it is settled first, so that the results stay in order.
                    self._settle(pipeline.finish(), results)
                    results.append(DeliveryResult(message.key, Outcome.UNSENDABLE, None, refusal))
                    continue
                self.pipelined_count += 1
                self._settle(
                    pipeline.submit(message, self._mail_options(connection, message)), results
                )
                if pipeline.needs_reset and pipeline.reset().code != 250:
                    self._drop()  # for the reason given in _reset_after_refusal()
                    return
            self._settle(pipeline.finish(), results)
        except OSError as exc:  # lost connection, timeout, protocol error
            raise self._failure(exc) from exc

    def _send_one_by_one(
        self,
        connection: KeepsDataReply,
        messages: Sequence[OutgoingMessage],
        results: list[DeliveryResult],
    ) -> None:
        for message in messages:
            refusal = local_refusal(connection, message)
            if refusal is not None:
                results.append(DeliveryResult(message.key, Outcome.UNSENDABLE, None, refusal))
                continue
            try:
                verdict = send_one(connection, message, self._mail_options(connection, message))
            except OSError as exc:  # lost connection, timeout, protocol error
                raise self._failure(exc) from exc
            results.append(self._result(verdict))
            if not verdict.delivered and not self._reset_after_refusal(connection):
                return

    def _mail_options(self, connection: KeepsDataReply, message: OutgoingMessage) -> list[str]:
        options = mail_options(connection, message)
        if not (self._warned_8bit or "BODY=8BITMIME" in options or message.data.isascii()):
            self._warned_8bit = True
            log.warning(
                "%s does not offer 8BITMIME; 8-bit messages are sent to it as they are",
                self._address,
            )
        return options

    def _settle(self, verdicts: list[Verdict], results: list[DeliveryResult]) -> None:
        # One by one: when a verdict ends the session, the results before it must stay recorded.
        for verdict in verdicts:
            results.append(self._result(verdict))

    def _result(self, verdict: Verdict) -> DeliveryResult:
        """What a transaction's end means for its message; raises if it ends the session too."""
        key, code = verdict.message.key, verdict.reply.code
        if verdict.delivered:
            found = provider_ids.from_reply(verdict.reply.text)
            return DeliveryResult(key, Outcome.SENT, code, provider_id=found)
        what = _REFUSED.get(verdict.stage, "message refused")
        detail = f"{what}: {_reply(code, verdict.reply.text)}"
        if code == _CLOSING:
            raise _SessionFailure(detail, code)
        if code == _AUTH_REQUIRED:
            raise _SessionFailure(
                f"authentication required: {_reply(code, verdict.reply.text)}", code
            )
        outcome = Outcome.PERMANENT if 500 <= code <= 599 else Outcome.TEMPORARY
        return DeliveryResult(key, outcome, code, detail)

    def _reset_after_refusal(self, connection: KeepsDataReply) -> bool:
        """False if the connection had to be dropped."""
        # smtplib already sent RSET but ignored the answer; a server that refuses it is in a state
        # we cannot trust, so the next message gets a fresh connection.
        try:
            code, _ = connection.rset()
        except OSError:
            code = -1
        if code != 250:
            self._drop()
        return code == 250


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return f"{code} {' '.join(text.split())}"


@functools.cache
def _local_hostname() -> str:
    # smtplib would call socket.getfqdn() on every connection, which can block for seconds on a
    # reverse DNS lookup; Django caches it for the same reason.
    return socket.getfqdn()
