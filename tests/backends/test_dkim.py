"""Signed mail: a lesson built with DKIM configured and sent through the SMTP backend to a real
aiosmtpd server arrives with a DKIM signature that dkimpy (an independent implementation) verifies
against the published public key. The message builder signs; the backend sends the bytes as built.

Only the DNS lookup of that key is stubbed: `dnsfunc` answers the TXT record an operator would publish.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim.util import parse_tag_value
from hypothesis import given, settings
from hypothesis import strategies as st

from dripcourse.backends.base import Outcome, OutgoingMessage
from dripcourse.backends.smtp import SMTPBackend
from dripcourse.config import Settings, load_settings
from dripcourse.courses.catalog import load_sources, view_of_source
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.errors import BadInput
from dripcourse.mail.builder import MessageBuilder, sample_message
from dripcourse.mail.dkim import DkimSigner, signer_for
from dripcourse.mail.rendering import Recipient
from dripcourse.mail.tokens import Signer

EXAMPLE_COURSES = Path(__file__).resolve().parents[2] / "emails"
SELECTOR, DOMAIN = "lessons2026", "northside-physio.example"
READER = Recipient(email="ada@example.com", name="Ada Lovelace", timezone="America/Toronto")
NOW = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Key:
    file: Path
    txt_record: bytes
    """What the operator publishes at `<selector>._domainkey.<domain>`."""


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    return make_key(tmp_path_factory.mktemp("dkim"))


def make_key(folder: Path) -> Key:
    """A fresh 2048-bit RSA key in a PEM file, as `openssl genpkey` writes it (PKCS#8)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    file = folder / "dkim.pem"
    file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Key(file, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))


@pytest.fixture(scope="module")
def signer(key: Key) -> DkimSigner:
    return DkimSigner.from_key_file(key.file, SELECTOR, DOMAIN)


def dns_with(key: Key) -> Callable[..., bytes | None]:
    """DNS as the receiver sees it: the TXT record under our selector, nothing anywhere else."""

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return key.txt_record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return lookup


def verifies(data: bytes, key: Key) -> bool:
    return bool(dkim.verify(data, dnsfunc=dns_with(key)))


def signature_tags(data: bytes) -> dict[bytes, bytes]:
    message_head = data.split(b"\r\n\r\n", 1)[0].decode()
    assert message_head.startswith("DKIM-Signature: "), "the signature comes first"
    field = message_head.split("\r\n")[0]
    for line in message_head.split("\r\n")[1:]:
        if not line[:1].isspace():
            break
        field += line
    tags: dict[bytes, bytes] = parse_tag_value(field.split(":", 1)[1].encode())
    return tags


def environ_for(key: Key, **more: str) -> dict[str, str]:
    return {
        "DRIPCOURSE_DKIM_KEY_FILE": str(key.file),
        "DRIPCOURSE_DKIM_SELECTOR": SELECTOR,
        "DRIPCOURSE_DKIM_DOMAIN": DOMAIN,
        **more,
    }


def start_up(environ: dict[str, str]) -> Settings:
    """The settings as the command line reads them at start-up, the DKIM key checked."""
    settings = load_settings(environ=environ)
    signer_for(settings)
    return settings


def lesson(settings: Settings, number: int = 1) -> tuple[str, bytes, str]:
    """Lesson `number` of the example course, built as the dispatcher builds it (DKIM-signed when
    the settings configure it): (key, bytes, envelope sender)."""
    source = load_sources(EXAMPLE_COURSES)[0]
    builder = MessageBuilder(
        Signer("test-secret-key"),
        "https://courses.example.org",
        feedback_id=settings.feedback_id,
        dkim=signer_for(settings),
    )
    lesson_key = source.lessons[number - 1].key
    message = sample_message(builder, view_of_source(source), lesson_key, READER, NOW)
    return lesson_key, message.data, message.sender


@pytest.fixture
def signed(key: Key) -> Settings:
    """Settings with DKIM configured."""
    return load_settings(environ=environ_for(key))


@pytest.fixture
def smtp(smtpd: CapturingSMTPServer) -> Iterator[SMTPBackend]:
    with SMTPBackend.from_url(smtpd.url) as backend:
        assert isinstance(backend, SMTPBackend)
        yield backend


def deliver(backend: SMTPBackend, smtpd: CapturingSMTPServer, data: bytes, sender: str) -> bytes:
    [result] = backend.send([OutgoingMessage("1", sender, READER.email, data)])
    assert result.outcome == Outcome.SENT, result
    return smtpd.messages[-1].data


# -- the story ------------------------------------------------------------------------------------


def test_a_delivered_lesson_verifies_against_the_published_key(
    key: Key, signed: Settings, smtp: SMTPBackend, smtpd: CapturingSMTPServer
) -> None:
    _, data, sender = lesson(signed)

    received = deliver(smtp, smtpd, data, sender)

    assert verifies(received, key)
    assert received.endswith(data), "the message itself goes as it was built"
    tags = signature_tags(received)
    assert (tags[b"d"], tags[b"s"]) == (DOMAIN.encode(), SELECTOR.encode())
    assert (tags[b"a"], tags[b"c"]) == (b"rsa-sha256", b"relaxed/relaxed")
    assert b"l" not in tags, "no body length: nothing may be appended to a signed body"


def test_every_lesson_of_a_pass_is_signed_each_with_its_own_signature(
    key: Key, signed: Settings, smtp: SMTPBackend, smtpd: CapturingSMTPServer
) -> None:
    built = [lesson(signed, number) for number in (1, 2, 3)]
    smtp.send([OutgoingMessage(key_, sender, READER.email, data) for key_, data, sender in built])

    received = [message.data for message in smtpd.messages]
    assert len(received) == 3
    assert all(verifies(data, key) for data in received)
    assert len({signature_tags(data)[b"b"] for data in received}) == 3


def test_a_changed_subject_or_body_fails_verification(
    key: Key, signed: Settings, smtp: SMTPBackend, smtpd: CapturingSMTPServer
) -> None:
    _, data, sender = lesson(signed)
    received = deliver(smtp, smtpd, data, sender)
    subject = next(line for line in received.split(b"\r\n") if line.startswith(b"Subject: "))

    new_subject = received.replace(subject, subject + b" - now 50% off!")
    new_body = received.replace(b"Ada", b"Bob")

    assert verifies(received, key)
    assert not verifies(new_subject, key)
    assert not verifies(new_body, key)


def test_an_added_unsubscribe_header_fails_verification(
    key: Key, signed: Settings, smtp: SMTPBackend, smtpd: CapturingSMTPServer
) -> None:
    # Each signed field is named once more than it occurs (RFC 6376 8.15): a second
    # List-Unsubscribe, or a Reply-To where there was none, cannot be slipped in on the way.
    _, data, sender = lesson(signed)
    received = deliver(smtp, smtpd, data, sender)
    head, body = received.split(b"\r\n\r\n", 1)

    for extra in (b"List-Unsubscribe: <https://evil.example/u>", b"Feedback-ID: a:b:c:evil"):
        assert not verifies(head + b"\r\n" + extra + b"\r\n\r\n" + body, key)


def test_the_unsubscribe_headers_are_signed(
    key: Key, signed: Settings, smtp: SMTPBackend, smtpd: CapturingSMTPServer
) -> None:
    # RFC 8058 4: one-click unsubscribing counts only if a DKIM signature covers both fields.
    _, data, sender = lesson(signed)
    received = deliver(smtp, smtpd, data, sender)

    signed = [name.strip() for name in signature_tags(received)[b"h"].split(b":")]

    assert b"List-Unsubscribe: <https" in received and b"List-Unsubscribe-Post: " in received
    assert {b"list-unsubscribe", b"list-unsubscribe-post"} <= set(signed)
    assert {b"from", b"to", b"subject", b"date", b"message-id", b"list-id"} <= set(signed)
    assert not {b"received", b"return-path", b"content-transfer-encoding"} & set(signed)


def test_a_relay_that_refolds_headers_and_trims_blank_lines_keeps_the_signature_valid(
    key: Key, signed: Settings, smtp: SMTPBackend, smtpd: CapturingSMTPServer
) -> None:
    # Relaxed canonicalisation (RFC 6376 3.4.2, 3.4.4) is chosen for exactly this.
    _, data, sender = lesson(signed)
    received = deliver(smtp, smtpd, data, sender)

    relayed = (
        received.replace(b"Subject: ", b"Subject:\r\n\t ", 1).replace(b"To: ", b"To:    ", 1)
        + b"\r\n\r\n"
    )

    assert verifies(relayed, key)


def test_without_dkim_settings_nothing_is_signed(smtpd: CapturingSMTPServer) -> None:
    settings = load_settings(environ={})
    assert signer_for(settings) is None
    _, data, sender = lesson(settings)

    with SMTPBackend.from_url(smtpd.url) as backend:
        assert isinstance(backend, SMTPBackend)
        received = deliver(backend, smtpd, data, sender)

    assert received == data
    assert b"DKIM-Signature" not in received


# Lines of printable ASCII with runs of spaces and tabs anywhere, blank lines at the end or not.
wsp_lines = st.lists(st.text(st.sampled_from(" \t a b c . ="), max_size=30), max_size=8)


@settings(max_examples=200, deadline=None)
@given(body_lines=wsp_lines, subject=st.text(st.sampled_from(" \t xyz"), max_size=20))
def test_any_white_space_in_body_or_headers_is_canonicalised_as_dkimpy_does(
    key: Key, signer: DkimSigner, body_lines: list[str], subject: str
) -> None:
    message = (
        f"From: course@{DOMAIN}\r\nSubject:{subject}\r\n\tfolded {subject}\r\n\r\n"
        + "".join(line + "\r\n" for line in body_lines)
    ).encode()

    assert verifies(signer.sign(message), key)


# -- Feedback-ID ----------------------------------------------------------------------------------


def test_the_feedback_id_names_course_and_lesson_and_is_signed(
    key: Key, smtp: SMTPBackend, smtpd: CapturingSMTPServer
) -> None:
    settings = load_settings(
        environ=environ_for(key, DRIPCOURSE_FEEDBACK_ID="{course}:{lesson}:dripcourse")
    )
    lesson_key, data, sender = lesson(settings, 2)

    received = deliver(smtp, smtpd, data, sender)

    assert smtpd.messages[-1].message["Feedback-ID"] == f"runners:{lesson_key}:dripcourse"
    assert b"feedback-id" in signature_tags(received)[b"h"]
    assert verifies(received, key)
    assert not verifies(received.replace(b"Feedback-ID: runners:", b"Feedback-ID: other:"), key)


def test_no_feedback_id_by_default(smtpd: CapturingSMTPServer) -> None:
    _, data, _ = lesson(load_settings(environ={}))

    assert b"Feedback-ID" not in data


# -- bad settings: one clear line at start-up -------------------------------------------------------


def test_a_missing_key_file_is_a_clear_error(key: Key, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"

    with pytest.raises(BadInput, match=rf"cannot read the DKIM key file {missing}: No such file"):
        start_up(environ_for(key, DRIPCOURSE_DKIM_KEY_FILE=str(missing)))


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"", "does not hold a PEM private key"),
        (b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n", "PEM"),
        (b"v=DKIM1; k=rsa; p=MIIBIjANBgkqh", "does not hold a PEM private key"),
    ],
    ids=["empty", "garbled", "the-dns-record-instead"],
)
def test_a_garbled_key_file_is_a_clear_error(
    key: Key, tmp_path: Path, content: bytes, complaint: str
) -> None:
    garbled = tmp_path / "garbled.pem"
    garbled.write_bytes(content)

    with pytest.raises(BadInput, match=complaint):
        start_up(environ_for(key, DRIPCOURSE_DKIM_KEY_FILE=str(garbled)))


def test_a_key_with_a_password_is_refused_with_the_way_out(key: Key, tmp_path: Path) -> None:
    private = serialization.load_pem_private_key(key.file.read_bytes(), password=None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )

    with pytest.raises(BadInput, match=r"protected by a password.*openssl pkey"):
        start_up(environ_for(key, DRIPCOURSE_DKIM_KEY_FILE=str(locked)))


def test_an_ed25519_key_is_refused_and_rsa_named(key: Key, tmp_path: Path) -> None:
    other = tmp_path / "ed25519.pem"
    other.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    with pytest.raises(BadInput, match="Ed25519PrivateKey key; only RSA keys"):
        start_up(environ_for(key, DRIPCOURSE_DKIM_KEY_FILE=str(other)))


def test_an_old_style_rsa_key_file_works_too(key: Key, tmp_path: Path) -> None:
    # `openssl genrsa` of OpenSSL 1.x writes PKCS#1 ("BEGIN RSA PRIVATE KEY").
    private = serialization.load_pem_private_key(key.file.read_bytes(), password=None)
    pkcs1 = tmp_path / "pkcs1.pem"
    pkcs1.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    settings = start_up(environ_for(key, DRIPCOURSE_DKIM_KEY_FILE=str(pkcs1)))
    signer = signer_for(settings)
    _, data, _ = lesson(Settings())

    assert signer is not None
    assert verifies(signer.sign(data), key)


def test_a_bad_key_file_stops_the_command_line_with_one_line(
    cli: Callable[..., Any],
    cli_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    garbled = tmp_path / "dkim.pem"
    garbled.write_text("not a key\n")
    monkeypatch.setenv("DRIPCOURSE_DKIM_KEY_FILE", str(garbled))
    monkeypatch.setenv("DRIPCOURSE_DKIM_SELECTOR", SELECTOR)
    monkeypatch.setenv("DRIPCOURSE_DKIM_DOMAIN", DOMAIN)

    result = cli("courses", "list")

    assert result.code == 2
    assert result.err == (
        f"dripcourse: error: the DKIM key file {garbled} does not hold a PEM private key "
        "(-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)\n"
    )


# -- wired in: what `dripcourse tick` and `lessons send-test` send --------------------------------


def test_a_tick_with_dkim_configured_delivers_signed_lessons_with_a_feedback_id(
    key: Key, cli: Callable[..., Any], smtpd: CapturingSMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environ_for(key, DRIPCOURSE_FEEDBACK_ID="{course}:{lesson}:np").items():
        monkeypatch.setenv(name, value)
    assert cli("db", "upgrade").code == 0
    assert cli("courses", "sync").code == 0
    for email in ("ada@example.com", "bruno@example.com"):
        done = cli("subscribe", email, "--course", "runners", "--confirmed", "--now", "2026-03-02")
        assert done.code == 0, done.err

    ticked = cli("tick", "--now", "2026-03-03T15:00:00Z")
    tested = cli("lessons", "send-test", "runners", "2", "--to", "author@example.com")

    assert "2 sent" in ticked.out, ticked.err
    assert tested.code == 0, tested.err
    assert len(smtpd.messages) == 3
    for received in smtpd.messages:
        assert verifies(received.data, key), received.message["Subject"]
        assert b"feedback-id" in signature_tags(received.data)[b"h"].lower()
    assert [m.message["Feedback-ID"] for m in smtpd.messages] == [
        "runners:feet:np",
        "runners:feet:np",
        "runners:ankles:np",
    ]


def test_the_console_backend_shows_messages_as_built_even_with_dkim_configured(
    key: Key, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The message builder signs, so the message as built is the signed one: the development
    # backends show and keep what would go out, and the file backend's .eml verifies.
    for name, value in environ_for(key).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DRIPCOURSE_EMAIL_BACKEND", "console:")
    assert cli("db", "upgrade").code == 0
    assert cli("courses", "sync").code == 0

    shown = cli("lessons", "send-test", "runners", "1", "--to", "author@example.com")
    monkeypatch.setenv("DRIPCOURSE_EMAIL_BACKEND", (tmp_path / "out").as_uri())
    filed = cli("lessons", "send-test", "runners", "1", "--to", "author@example.com")

    assert shown.code == 0, shown.err
    assert "Subject: [Test] Lesson 1: Feet first" in shown.out
    assert shown.out.startswith(
        f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\n\td={DOMAIN}"
    )
    assert filed.code == 0, filed.err
    [eml] = (tmp_path / "out").glob("*.eml")
    assert verifies(eml.read_bytes(), key)
