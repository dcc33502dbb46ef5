"""SMTP mail transactions over a connection that smtplib has set up: pipelined, or one at a time.

smtplib waits for a reply to every command: MAIL, RCPT, DATA and the content cost four round trips a
message. A server that offers PIPELINING lets the client send MAIL, RCPT and DATA in one go, and the
content of one message (ended by its "." line) may open the next group: "the actual transfer of
message content is explicitly allowed to be the first 'command' in a group" (RFC 2920 3.1), while
DATA must end one. So after the first group every message costs one write and one round trip:

    content 1 + "." + MAIL 2 + RCPT 2 + DATA 2  ->  end of data 1, MAIL 2, RCPT 2, DATA 2 (354)

Responsible for the bytes on the wire (CRLF line ends and dot-stuffing, RFC 5321 2.3.8 and 4.5.2;
MAIL parameters), reading replies (RFC 5321 4.2), and keeping replies in step with commands whatever
the server says: content goes only after a 354, and a transaction that ends before its content leaves
`needs_reset` set for the caller to send RSET. Either way of sending tells how each transaction
ended as a `Verdict`; what that means for the message, and for the connection, is decided in smtp.py.
"""

from __future__ import annotations

import smtplib
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Literal

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

from dripcourse.backends.base import OutgoingMessage
from dripcourse.telemetry.metrics import record_smtp_reply

Stage = Literal["MAIL", "RCPT", "DATA", "END"]
"""The command whose reply settled a transaction; END is the reply to the content's final dot."""

# smtplib's limit for one reply line (its _MAXLINE).
_MAX_LINE = 8192
_START_DATA = 354
# 421: the server is closing the connection; replies to the rest of the group will not come.
_CLOSING = 421


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: bytes | str
    """The reply's lines without their codes, joined by LF (bytes, as smtplib gives them)."""

    @property
    def positive(self) -> bool:
        return 200 <= self.code <= 299


@dataclass(frozen=True, slots=True)
class Verdict:
    """How one transaction ended: the reply that settled it, at the stage it came."""

    message: OutgoingMessage
    stage: Stage
    reply: Reply

    @property
    def delivered(self) -> bool:
        return self.stage == "END" and self.reply.positive


class Pipeline:
    """Mail transactions on one connection, one round trip each; see the module docstring.

    `submit()` each message, then `finish()`. Each call returns the verdicts that became known, in
    the order the messages were submitted; the last message's verdict waits for the next call.
    After a verdict with code 421, or any exception, the connection is done for. Network errors
    are OSErrors; a server that hangs up or talks nonsense raises smtplib's exceptions.
    """

    def __init__(self, sock: socket.socket, reader: BinaryIO) -> None:
        self._sock = sock
        self._reader = reader
        self._pending: tuple[OutgoingMessage, bytes] | None = None
        """The message whose DATA got 354: its content goes at the head of the next write."""
        self.needs_reset = False
        """The last transaction ended before its content: the server may still hold its MAIL."""

    @classmethod
    def over(cls, connection: smtplib.SMTP) -> Pipeline:
        """A pipeline on smtplib's socket, reading through the buffer smtplib has read EHLO with."""
        if connection.sock is None:
            raise smtplib.SMTPServerDisconnected("the connection is closed")
        if connection.file is None:
            connection.file = connection.sock.makefile("rb")
        return cls(connection.sock, connection.file)

    def submit(self, message: OutgoingMessage, options: list[str]) -> list[Verdict]:
        """Send this message's MAIL, RCPT and DATA behind the previous message's content; read
        the replies. This message's content goes with the next call."""
        commands = envelope_commands(message.sender, message.recipient, options)
        verdicts: list[Verdict] = []
        pending, self._pending = self._pending, None
        sent = time.perf_counter()
        self._sock.sendall(pending[1] + commands if pending else commands)
        if pending:
            end = self._read()
            record_smtp_reply(time.perf_counter() - sent)
            verdicts.append(Verdict(pending[0], "END", end))
            if end.code == _CLOSING:
                return verdicts
        replies: list[tuple[Stage, Reply]] = []
        for stage in ("MAIL", "RCPT", "DATA"):
            reply = self._read()
            replies.append((stage, reply))
            if reply.code == _CLOSING:
                verdicts.append(Verdict(message, stage, reply))
                return verdicts
        (_, mail), (_, rcpt), (_, data) = replies
        if data.code == _START_DATA:
            if mail.positive and rcpt.positive:
                self._pending = (message, wire_content(message.data))
                return verdicts
            # A server that takes DATA with no recipient gets an empty message for no one.
            self._sock.sendall(b".\r\n")
            self._read()
        stage, reply = next((s, r) for s, r in replies if s == "DATA" or not r.positive)
        verdicts.append(Verdict(message, stage, reply))
        self.needs_reset = True
        return verdicts

    def finish(self) -> list[Verdict]:
        """Send the last message's content and read its reply."""
        pending, self._pending = self._pending, None
        if pending is None:
            return []
        sent = time.perf_counter()
        self._sock.sendall(pending[1])
        end = self._read()
        record_smtp_reply(time.perf_counter() - sent)
        return [Verdict(pending[0], "END", end)]

    def reset(self) -> Reply:
        """RSET (RFC 5321 4.1.1.5): forget a transaction that ended before its content."""
        if self._pending is not None:
            raise RuntimeError("RSET now would abort the message that awaits its content")
        self._sock.sendall(b"RSET\r\n")
        self.needs_reset = False
        return self._read()

    def _read(self) -> Reply:
        return read_reply(self._reader)


class KeepsDataReply(smtplib.SMTP):
    """smtplib's client, keeping the text of the last reply to the content (smtplib's `sendmail`
    drops it): a provider's relay names the queued message there (`domain/provider_ids`)."""

    data_reply: bytes = b""

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        code, text = super().data(msg)
        self.data_reply = text
        return code, text


class KeepsDataReplySSL(KeepsDataReply, smtplib.SMTP_SSL):
    """The same over implicit TLS."""


def send_one(connection: KeepsDataReply, message: OutgoingMessage, options: list[str]) -> Verdict:
    """One transaction the plain way, a round trip per command (smtplib's `sendmail`)."""
    started = time.perf_counter()
    connection.data_reply = b""
    try:
        connection.sendmail(
            message.sender, [message.recipient], crlf_lines(message.data), mail_options=options
        )
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = exc.recipients.get(message.recipient, (-1, b"refused"))
        return Verdict(message, "RCPT", Reply(code, text))
    except smtplib.SMTPSenderRefused as exc:
        return Verdict(message, "MAIL", Reply(exc.smtp_code, exc.smtp_error))
    except smtplib.SMTPResponseException as exc:  # SMTPDataError, or a late HELO error
        return Verdict(message, "END", Reply(exc.smtp_code, exc.smtp_error))
    record_smtp_reply(time.perf_counter() - started)
    # smtplib raised for anything but 250; the reply's text is kept by our client class alone.
    return Verdict(message, "END", Reply(250, connection.data_reply))


def local_refusal(connection: smtplib.SMTP, message: OutgoingMessage) -> str | None:
    """Why the message cannot go to this server at all, known before a word is sent."""
    addresses = message.sender + message.recipient
    if not addresses.isascii() and not connection.has_extn("smtputf8"):
        return "the address is not ASCII and the server does not offer SMTPUTF8"
    if "\r" in addresses or "\n" in addresses:
        # It would end the command early and start another (smtplib refuses it too).
        return "invalid address: it contains a line break"
    return None


def mail_options(connection: smtplib.SMTP, message: OutgoingMessage) -> list[str]:
    """The MAIL FROM parameters the message needs and the server offers."""
    options: list[str] = []
    if not (message.sender.isascii() and message.recipient.isascii()):
        options.append("SMTPUTF8")  # RFC 6531; local_refusal() has checked that it is offered
    if connection.has_extn("8bitmime") and not message.data.isascii():
        options.append("BODY=8BITMIME")  # RFC 6152
    return options


def envelope_commands(sender: str, recipient: str, options: list[str]) -> bytes:
    """MAIL, RCPT and DATA of one message. UTF-8 is only sent with SMTPUTF8 among `options`."""
    extra = "".join(f" {option}" for option in options)
    return f"MAIL FROM:<{sender}>{extra}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()


def crlf_lines(data: bytes) -> bytes:
    """`data` with every line ended by CRLF: SMTP has no bare CR or LF (RFC 5321 2.3.8)."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    return data


def wire_content(data: bytes) -> bytes:
    """A message as it goes after DATA: CRLF lines, leading dots doubled, ended by a "." line."""
    data = crlf_lines(data).replace(b"\r\n.", b"\r\n..")  # RFC 5321 4.5.2
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def read_reply(reader: BinaryIO) -> Reply:
    """One reply, all its lines ("250-first", "250 last"); network errors are left to rise."""
    lines: list[bytes] = []
    while True:
        line = reader.readline(_MAX_LINE + 1)
        if not line:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if len(line) > _MAX_LINE:
            raise smtplib.SMTPException("the server sent a reply line that is too long")
        if not line[:3].isdigit() or line[3:4] not in (b" ", b"-", b"\r", b"\n", b""):
            raise smtplib.SMTPException(f"malformed reply from the server: {line[:80]!r}")
        lines.append(line[4:].strip())
        if line[3:4] != b"-":
            return Reply(int(line[:3]), b"\n".join(lines))
