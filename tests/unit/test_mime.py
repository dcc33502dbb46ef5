"""The hand-built message of `dripcourse.mail.mime.compose` against the stdlib's `EmailMessage`.

`compose_with_stdlib` below is the way messages used to be built. Where the stdlib sends both parts as
7bit or 8bit, `compose` must give the very same body bytes, and the very same message when every
header value is plain ASCII; everywhere, a mail client (the stdlib parser) must read back exactly the
values given, with one of each header and no defects. Where a value holds "=?", the stdlib is no
reference: it decodes such text as encoded-words (that was a header injection; see mime.py).
"""

from __future__ import annotations

import email.policy
import random
import re
import sys
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dripcourse.domain.validation import MAX_NAME, MAX_NAME_BYTES, has_control_characters
from dripcourse.errors import Unsendable
from dripcourse.mail.mime import Envelope, compose

REFERENCE_POLICY = email.policy.SMTP.clone(max_line_length=998)


def compose_with_stdlib(
    envelope: Envelope, subject: str, text: str, html: str, boundary: str
) -> bytes:
    """The message as `EmailMessage` builds it, with the given MIME boundary."""
    message = EmailMessage(policy=REFERENCE_POLICY)
    message["From"] = Address(envelope.sender_name, addr_spec=envelope.sender_email)
    message["To"] = Address(envelope.recipient_name, addr_spec=envelope.recipient_email)
    message["Subject"] = subject
    message["Date"] = format_datetime(envelope.date)
    message["Message-ID"] = envelope.message_id
    if envelope.reply_to:
        message["Reply-To"] = envelope.reply_to
    if envelope.list_id:
        name = envelope.list_name
        message["List-Id"] = f"{name} <{envelope.list_id}>" if name else f"<{envelope.list_id}>"
    targets = [
        f"<{target}>"
        for target in (envelope.unsubscribe_url, envelope.unsubscribe_mailto)
        if target
    ]
    if targets:
        message["List-Unsubscribe"] = ", ".join(targets)
    if envelope.unsubscribe_url:
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if envelope.feedback_id:
        message["Feedback-ID"] = envelope.feedback_id
    message["MIME-Version"] = "1.0"
    message.set_content(text, charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    message.set_boundary(boundary)
    return message.as_bytes()


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def boundary_of(data: bytes) -> str:
    boundary = parse(data).get_boundary()
    assert boundary is not None
    return boundary


def transfer_encodings(message: EmailMessage) -> list[str]:
    return [part["Content-Transfer-Encoding"] for part in message.iter_parts()]


def text_of(part: EmailMessage) -> str:
    """A part's decoded text, with LF line ends."""
    return str(part.get_content()).replace("\r\n", "\n")


def as_read(message: EmailMessage) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """What a mail client sees: every header as decoded, each part's type and its text."""
    headers = [(name, str(value)) for name, value in message.items()]
    parts = [(str(part["Content-Type"]), text_of(part)) for part in message.iter_parts()]
    return headers, parts


def lines_of(body: str) -> str:
    """A body as it arrives: split at CR, LF or CRLF as the stdlib does, the last line ended."""
    return "\n".join(line.decode() for line in body.encode().splitlines()) + "\n"


def read_back(data: bytes) -> EmailMessage:
    """The message as a mail client reads it, once checked for what every message must be: CRLF
    only, no line over 998 octets, one of each header, no defects anywhere."""
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    message = parse(data)
    names = [name.lower() for name, _ in message.items()]
    assert len(names) == len(set(names)), names
    assert not message.defects
    for name, value in message.items():
        assert not value.defects, (name, value, value.defects)
    for part in message.iter_parts():
        assert not part.defects
    return message


def assert_reads_back(envelope: Envelope, subject: str, message: EmailMessage) -> None:
    """Every header value is read back exactly as it was given."""
    sender, recipient = message["From"].addresses, message["To"].addresses
    assert [(a.display_name, a.addr_spec) for a in sender] == [
        (envelope.sender_name, envelope.sender_email)
    ]
    assert [(a.display_name, a.addr_spec) for a in recipient] == [
        (envelope.recipient_name, envelope.recipient_email)
    ]
    assert message["Subject"] == subject
    assert message["Message-ID"] == envelope.message_id
    if envelope.reply_to:
        assert message["Reply-To"] == envelope.reply_to
    if envelope.list_id:
        # An unstructured header to the parser: a quoted phrase comes back with its quotes.
        found = re.fullmatch(r"(.*?) ?<([^<>]*)>", str(message["List-Id"]))
        assert found is not None
        name, list_id = found.groups()
        if name.startswith('"'):
            name = re.sub(r"\\(.)", r"\1", name[1:-1])
        assert (name, list_id) == (envelope.list_name, envelope.list_id)
    if envelope.feedback_id:
        assert message["Feedback-ID"] == envelope.feedback_id


def plain(*values: str | None) -> bool:
    """Values that go out as they are, which the stdlib writes alike."""
    return all(
        value is None
        or (
            value.isascii()
            and value.isprintable()
            and "=?" not in value
            # Runs of spaces and spaces at either end would be lost on unfolding: encoded.
            and value == value.strip(" ")
            and "  " not in value
        )
        for value in values
    )


def assert_same_as_stdlib(envelope: Envelope, subject: str, text: str, html: str) -> bytes:
    """Read back exactly; the bodies byte for byte the stdlib's where it picks 7bit or 8bit, and
    the whole message too when every header value is plain."""
    ours = compose(envelope, subject, text, html)
    reference = compose_with_stdlib(envelope, subject, text, html, boundary_of(ours))
    ours_read, reference_read = read_back(ours), parse(reference)
    assert_reads_back(envelope, subject, ours_read)
    assert as_read(ours_read)[1] == as_read(reference_read)[1]
    if set(transfer_encodings(reference_read)) <= {"7bit", "8bit"}:
        assert (
            ours.partition(b"\r\nMIME-Version: ")[2]
            == reference.partition(b"\r\nMIME-Version: ")[2]
        )
        headers = (envelope.sender_name, envelope.recipient_name, subject, envelope.list_name)
        # The stdlib writes a List-Id's name as unstructured text, not as a (quoted) phrase.
        list_name_as_is = not re.search(r'[()<>@,:;.\\"\[\]]', envelope.list_name)
        if plain(*headers) and list_name_as_is and all(len(value) < 900 for value in headers):
            assert ours == reference
    return ours


ENVELOPE = Envelope(
    sender_name="Northside Physio",
    sender_email="course@northside-physio.example",
    recipient_name="Ada Lovelace",
    recipient_email="ada@example.com",
    message_id="<lesson.42@northside-physio.example>",
    date=datetime(2026, 3, 2, 13, 0, tzinfo=UTC),
    reply_to="hello@northside-physio.example",
    list_id="runners.northside-physio.example",
    list_name="Runners E-Course",
    unsubscribe_url="https://courses.example.org/unsubscribe/eyJlIjo0Mn0.aGVsbG8",
    unsubscribe_mailto="mailto:leave@northside-physio.example?subject=unsubscribe",
    feedback_id="runners:feet-first:dripcourse",
)
TEXT = "Hi Ada,\n\nToday: your feet.\n.a line that starts with a dot\nFrom here on, run easy.\n"
HTML = '<p style="margin: 0">Hi <em>Ada</em>,</p>\n<p>Today: your feet.</p>\n'
TEXT_UTF8 = "Hallo Zoë,\n\nGrüße aus Toronto — 🏃 山田\n"
HTML_UTF8 = "<p>Grüße aus Toronto — 🏃 山田</p>"


# -- byte for byte what the stdlib writes --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "html"),
    [(TEXT, HTML), (TEXT_UTF8, HTML_UTF8), (TEXT, HTML_UTF8), ("", ""), ("no newline", "<p>")],
    ids=["ascii", "utf-8", "mixed", "empty", "unended"],
)
@pytest.mark.parametrize(
    ("sender", "recipient"),
    [
        ("Northside Physio", "Ada Lovelace"),
        ("", ""),
        ("Northside Physio, Toronto", "Lovelace, Ada"),
        ('The "Runners" Course', "A. (Ada) Lovelace"),
        ("Back\\slash <and> [brackets]; @:", 'Quote " and \\'),
        ("Physio Zoë Ñúñez", "José Müller 山田"),
        ("Müller, José", 'Zoë "Z" O\'Brien'),
    ],
)
@pytest.mark.parametrize(
    "subject", ["Lesson 1: Feet first", "Lektion 1: Füße zuerst — bereit, José? 🏃", ""]
)
def test_the_same_bytes_as_the_stdlib(
    sender: str, recipient: str, subject: str, text: str, html: str
) -> None:
    envelope = replace(ENVELOPE, sender_name=sender, recipient_name=recipient)

    data = assert_same_as_stdlib(envelope, subject, text, html)

    assert data.count(b"\r\n") == data.count(b"\n")  # CRLF throughout, no bare LF
    message = parse(data)
    assert set(transfer_encodings(message)) <= {"7bit", "8bit"}  # so the bytes were compared
    assert message["From"].addresses[0].display_name == sender
    assert message["To"].addresses[0].display_name == recipient
    assert message["Subject"] == subject


def test_optional_headers_left_out_as_the_stdlib_leaves_them_out() -> None:
    envelope = replace(
        ENVELOPE,
        reply_to=None,
        list_id=None,
        unsubscribe_url=None,
        unsubscribe_mailto=None,
        feedback_id=None,
    )
    message = parse(assert_same_as_stdlib(envelope, "Please confirm", TEXT, HTML))

    assert [name for name, _ in message.items()] == [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
    ]


def test_every_header_in_its_place_with_the_feedback_id_after_the_list_headers() -> None:
    message = parse(assert_same_as_stdlib(ENVELOPE, "Lesson 1", TEXT, HTML))

    assert [name for name, _ in message.items()] == [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Reply-To",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Feedback-ID",
        "MIME-Version",
        "Content-Type",
    ]
    assert message["Feedback-ID"] == "runners:feet-first:dripcourse"


@pytest.mark.parametrize(
    "envelope",
    [
        replace(ENVELOPE, unsubscribe_url=None),
        replace(ENVELOPE, unsubscribe_mailto=None),
        replace(ENVELOPE, list_name="Läufer-Kurs"),
        replace(ENVELOPE, list_name="Runners, the E-Course (2026)"),
        replace(ENVELOPE, list_name=""),
        replace(ENVELOPE, recipient_email="ada@bücher.example"),
        replace(ENVELOPE, date=datetime(2026, 3, 29, 1, 30)),  # naive: "-0000"
        replace(ENVELOPE, date=datetime(2026, 7, 1, 8, 0, tzinfo=timezone(timedelta(hours=-4)))),
    ],
    ids=[
        "no-url",
        "no-mailto",
        "utf-8-list",
        "specials-list",
        "unnamed-list",
        "idn",
        "naive",
        "edt",
    ],
)
def test_unusual_header_values_read_back_exactly(envelope: Envelope) -> None:
    message = read_back(compose(envelope, "Lesson 1", TEXT, HTML))

    if envelope.recipient_email.endswith("bücher.example"):
        # The domain goes out in its ASCII form (RFC 5890), never as an encoded-word.
        assert message["To"].addresses[0].addr_spec == "ada@xn--bcher-kva.example"
        envelope = replace(envelope, recipient_email="ada@xn--bcher-kva.example")
    assert_reads_back(envelope, "Lesson 1", message)


@pytest.mark.parametrize(
    ("envelope", "why"),
    [
        (replace(ENVELOPE, reply_to="Front Desk <hello@northside-physio.example>"), "SMTPUTF8"),
        (replace(ENVELOPE, recipient_email='"odd local"@example.com'), "SMTPUTF8"),
        (replace(ENVELOPE, recipient_email="jörg@example.com"), "SMTPUTF8"),
        (replace(ENVELOPE, recipient_email="ada@[127.0.0.1]"), "not an address"),
        (replace(ENVELOPE, recipient_email="ada@exa_mple.com"), "not an address"),
        (replace(ENVELOPE, sender_email="nobody"), "SMTPUTF8"),
        (replace(ENVELOPE, list_id="Läufer <laeufer.example>"), "List-Id"),
        (replace(ENVELOPE, feedback_id="läufer:füße:dripcourse"), "Feedback-ID"),
        (replace(ENVELOPE, feedback_id="runners:" + "x" * 1000 + ":dripcourse"), "Feedback-ID"),
        (replace(ENVELOPE, message_id="<not quite a message id"), "Message-ID"),
        (replace(ENVELOPE, unsubscribe_url="https://a.example/ u"), "List-Unsubscribe"),
    ],
)
def test_a_value_no_header_can_carry_is_refused_not_rewritten(envelope: Envelope, why: str) -> None:
    with pytest.raises(Unsendable, match=why):
        compose(envelope, "Lesson 1", TEXT, HTML)


@pytest.mark.parametrize("excess", [-1, 0, 1, 2])
def test_a_header_is_one_line_up_to_998_characters_and_a_longer_url_is_refused(
    excess: int,
) -> None:
    base = "https://courses.example.org/unsubscribe/"
    header = f"List-Unsubscribe: <{base}>"
    url = base + "x" * (998 + excess - len(header))
    envelope = replace(ENVELOPE, unsubscribe_url=url, unsubscribe_mailto=None)

    if excess > 0:
        # Folding would break the URL (the stdlib made encoded-words of it, which no client follows).
        with pytest.raises(Unsendable, match="List-Unsubscribe URL"):
            compose(envelope, "Lesson 1", TEXT, HTML)
        return
    data = assert_same_as_stdlib(envelope, "Lesson 1", TEXT, HTML)
    assert f"List-Unsubscribe: <{url}>\r\n".encode() in data


def test_two_long_unsubscribe_targets_are_folded_between_them() -> None:
    url = "https://courses.example.org/unsubscribe/" + "x" * 900
    data = compose(replace(ENVELOPE, unsubscribe_url=url), "Lesson 1", TEXT, HTML)

    assert f"List-Unsubscribe: <{url}>,\r\n <mailto:".encode() in data
    assert read_back(data)["List-Unsubscribe"] == f"<{url}>, <{ENVELOPE.unsubscribe_mailto}>"


@pytest.mark.parametrize("length", [997, 998, 999, 1200])
def test_long_subjects_and_names_read_back_exactly(length: int) -> None:
    words = ("Feet first and " * 100)[: length - len("Subject: ")]
    envelope = replace(
        ENVELOPE, recipient_name=words[:MAX_NAME].strip(), sender_name="Zoë " * 49 + "Zoë"
    )
    assert_same_as_stdlib(envelope, words, TEXT, HTML)


def test_a_name_at_the_length_limit_is_one_encoded_word_on_one_line() -> None:
    name = "🏃" * (MAX_NAME_BYTES // 4)
    data = compose(replace(ENVELOPE, recipient_name=name), "Lesson 1", TEXT, HTML)

    to = data.split(b"\r\nTo: ")[1].split(b"\r\n")[0]
    assert to.count(b"=?utf-8?") == 1 and len(to) < 998
    assert read_back(data)["To"].addresses[0].display_name == name


# -- body encodings ------------------------------------------------------------------------------


def test_lines_up_to_998_bytes_go_as_they_are_and_longer_ones_quoted_printable() -> None:
    fits, too_long = "a" * 998, "b" * 999
    utf8_too_long = "ü" * 500  # 1000 bytes

    message = parse(assert_same_as_stdlib(ENVELOPE, "Lesson 1", fits, utf8_too_long + "\n"))
    assert transfer_encodings(message) == ["7bit", "quoted-printable"]
    message = parse(assert_same_as_stdlib(ENVELOPE, "Lesson 1", too_long, "<p>" + fits[3:]))
    assert transfer_encodings(message) == ["quoted-printable", "7bit"]
    text_part = next(message.iter_parts())
    assert text_part.get_content() == too_long + "\r\n"


def test_a_body_holding_the_boundary_gets_another_boundary() -> None:
    state = random.getstate()
    try:
        random.seed(2920)
        first_draw = f"==============={random.randrange(sys.maxsize):019d}=="
        random.seed(2920)
        data = compose(ENVELOPE, "Lesson 1", f"--{first_draw}\n--{first_draw}--\n", HTML)
    finally:
        random.setstate(state)

    assert boundary_of(data) != first_draw
    text_part = next(parse(data).iter_parts())
    assert text_part.get_content() == f"--{first_draw}\r\n--{first_draw}--\r\n"


# -- anything, read back exactly -----------------------------------------------------------------

# What the rest of dripcourse hands to compose(): names as `validation.clean_name` leaves them and
# subjects as `rendering.one_line` does (one line, runs of whitespace made one space).
printable = st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"])
names = st.text(printable, max_size=60).map(lambda name: " ".join(name.split()))
ascii_names = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(
    lambda name: " ".join(name.split())
)
subjects = st.text(printable, max_size=200).map(lambda subject: " ".join(subject.split()))
line_parts = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    st.sampled_from([".", "..", ".dot", "From ", "From me", "--", "=", " ", "\t", "\r", "\n"]),
    st.text("aü", min_size=990, max_size=1010),
)
bodies = st.lists(line_parts, max_size=12).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sender=names | ascii_names,
    recipient=names | ascii_names,
    subject=subjects,
    text=bodies,
    html=bodies,
)
def test_names_subjects_and_bodies_read_back_exactly(
    sender: str, recipient: str, subject: str, text: str, html: str
) -> None:
    envelope = replace(ENVELOPE, sender_name=sender, recipient_name=recipient)

    data = assert_same_as_stdlib(envelope, subject, text, html)

    message = parse(data)
    assert message["From"].addresses[0].display_name == sender
    assert message["To"].addresses[0].display_name == recipient
    assert message["Subject"] == subject
    text_part, html_part = message.iter_parts()
    assert text_of(text_part) == lines_of(text)
    assert text_of(html_part) == lines_of(html)
    for body, part in [(text, text_part), (html, html_part)]:
        too_long = any(len(line) > 998 for line in body.encode().splitlines())
        assert (part["Content-Transfer-Encoding"] == "quoted-printable") == too_long
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert b"\n" not in data.replace(b"\r\n", b"")


# Anything but a line break, as the stdlib is given it: control characters, runs of spaces, "=?".
raw_text = st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=40)
raw_ascii = st.text(st.characters(max_codepoint=127, exclude_characters="\r\n"), max_size=40)


@settings(max_examples=300)
@given(
    sender=raw_text | raw_ascii,
    recipient=raw_text | raw_ascii,
    subject=raw_text | raw_ascii,
    list_name=raw_text | raw_ascii,
)
def test_any_header_text_but_a_line_break_reads_back_exactly(
    sender: str, recipient: str, subject: str, list_name: str
) -> None:
    envelope = replace(ENVELOPE, sender_name=sender, recipient_name=recipient, list_name=list_name)
    values = (sender, recipient, subject, list_name)

    if any(has_control_characters(value) for value in values):
        with pytest.raises(Unsendable, match="control characters"):
            compose(envelope, subject, TEXT, HTML)
    else:
        assert_same_as_stdlib(envelope, subject, TEXT, HTML)


@given(address=st.emails(), name=ascii_names)
def test_any_valid_address_comes_out_as_the_stdlib_writes_it(address: str, name: str) -> None:
    envelope = replace(ENVELOPE, recipient_name=name, recipient_email=address, reply_to=address)
    assert_same_as_stdlib(envelope, "Lesson 1", TEXT, HTML)


# -- header injection ----------------------------------------------------------------------------

HEADER_FIELDS = [f.name for f in fields(Envelope) if f.name != "date"]


@given(
    field=st.sampled_from([*HEADER_FIELDS, "subject"]),
    breaker=st.sampled_from(["\r", "\n", "\r\n"]),
    where=st.floats(0, 1),
    value=st.text(printable, max_size=40),
)
def test_a_line_break_anywhere_in_any_header_value_is_refused(
    field: str, breaker: str, where: float, value: str
) -> None:
    at = int(len(value) * where)
    sneaky = value[:at] + breaker + value[at:]
    envelope, subject = ENVELOPE, "Lesson 1"
    if field == "subject":
        subject = sneaky
    else:
        envelope = replace(ENVELOPE, **{field: sneaky})

    with pytest.raises(ValueError, match="linefeed or carriage return"):
        compose(envelope, subject, TEXT, HTML)
