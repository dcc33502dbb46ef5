"""What people type, checked and normalised: addresses, names, time zones, instants.

Every check raises `BadInput` with a message fit to show the person as it is.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from email_validator import EmailNotValidError, validate_email

from dripcourse.errors import BadInput

MAX_NAME = 200
# A name goes out as one RFC 2047 encoded-word (see mime.py), which must fit on a header line:
# 600 bytes are at most 812 characters of base64.
MAX_NAME_BYTES = 600
MAX_EMAIL = 254


def normalise_email(address: str) -> str:
    """The form an address is kept and sent in, or `BadInput`.

    The domain is lower-cased and written in its ASCII (IDNA, "xn--") form, as it goes on the
    envelope and in headers; the local part keeps the spelling the person typed. A local part
    with non-ASCII letters is refused: it could only be sent over SMTPUTF8 (RFC 6531), which
    few of the servers between us and the recipient promise, and one refused address must not
    be found out only when its lesson cannot be sent.
    """
    address = address.strip()
    if not address:
        raise BadInput("an email address is required", field="email")
    if len(address) > MAX_EMAIL or has_control_characters(address):
        raise BadInput(f"not a valid email address: {_shown(address)}", field="email")
    try:
        valid = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise BadInput(
            f"not a valid email address: {_shown(address)} ({exc})", field="email"
        ) from None
    ascii_form = valid.ascii_email
    if ascii_form is None or len(ascii_form) > MAX_EMAIL:
        raise BadInput(f"not a valid email address: {_shown(address)}", field="email")
    return ascii_form


def mailbox_key(address: str) -> str:
    """What makes two spellings of an address one mailbox: the normalised address, lower-cased.

    RFC 5321 lets a server treat local parts as case-sensitive, but no large mailbox provider
    does, and a person who typed `Bob@` once and `bob@` later is one person who unsubscribed once.
    """
    return address.lower()


def search_key(text: str) -> str:
    """What a search by name compares: every letter in lower case, not only ASCII ones, so that
    "émi" and "ÉMI" find "Émile". Accents stay: "Emi" is another name than "Émi"."""
    return text.lower()


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def address_hash(address: str) -> str:
    """SHA-256 (hex) of a normalised address's `mailbox_key`: how suppressions recognise an address
    in any spelling, even one whose person was forgotten and of which only this hash is kept.

    Deliberately not keyed with the secret key: a suppression must survive a change of
    `DRIPCOURSE_SECRET_KEY` and a restore onto another installation. A key would not hide much
    either: the hash is there to be matched against addresses, and whoever holds an address can test
    it either way (by default the key lives in the same database).
    """
    return hashlib.sha256(mailbox_key(address).encode("utf-8")).hexdigest()


def clean_name(name: str | None) -> str:
    """A display name: one line, no control characters, at most 200 characters and 600 bytes.

    Text, never markup or encoding: `=?utf-8?q?...?=` in a name is those characters, and is
    written out so that a mail client shows them (mime.py encodes it; nothing here decodes it).
    """
    if name is None:
        return ""
    if has_control_characters(name):
        raise BadInput("a name may not contain line breaks or control characters", field="name")
    name = " ".join(name.split())
    if len(name) > MAX_NAME or len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise BadInput(
            f"a name may be at most {MAX_NAME} characters ({MAX_NAME_BYTES} bytes of UTF-8) long",
            field="name",
        )
    return name


def check_timezone(zone: str) -> str:
    """An IANA time zone name such as 'Europe/Berlin', as given; `BadInput` otherwise."""
    zone = zone.strip()
    if zone not in _zone_names():
        raise BadInput(
            f"unknown time zone {_shown(zone)}: use an IANA name such as "
            "'Europe/Berlin' or 'America/Toronto'",
            field="timezone",
        )
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"unknown time zone {_shown(zone)}", field="timezone") from None
    if zone in _FIXED_LEGACY:
        raise BadInput(
            f"{zone} is a fixed offset that never follows daylight saving time; use the zone "
            f"of a place, such as {_FIXED_LEGACY[zone]}",
            field="timezone",
        )
    return zone


# Legacy abbreviations kept in the IANA database as fixed offsets: someone who types `EST` means
# New York's time, and would get lessons an hour off for half of the year.
_FIXED_LEGACY = {"EST": "America/New_York", "MST": "America/Denver", "HST": "Pacific/Honolulu"}


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant; without an offset it is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadInput(
            f"not an ISO-8601 date and time: {_shown(text)} (example: 2026-03-02T08:00:00+01:00)"
        ) from None


def parse_local_instant(text: str, zone: str) -> datetime:
    """A date and time as typed on a person's page (`2026-03-02T08:00`, what a browser's
    datetime-local field sends), taken in their zone; an explicit offset wins. A time that a
    daylight-saving change skips is read as the offset before the change would have it."""
    try:
        value = datetime.fromisoformat(text.strip())
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo(zone))
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadInput(f"not a date and time: {_shown(text)} (example: 2026-03-02T08:00)") from None


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    # The system's zoneinfo folder also lists files that are not zones of the world.
    return (frozenset(available_timezones()) - {"localtime", "posixrules", "Factory"}) | {"UTC"}


def has_control_characters(text: str) -> bool:
    """Whether `text` holds a character that has no place in a one-line value: a control
    character, a line or paragraph separator, a lone surrogate."""
    if text.isascii():
        # The common case, and a hot one (every header of every message): the only such ASCII
        # characters are the C0 controls and DEL, all of category Cc.
        return _ASCII_CONTROL.search(text) is not None
    # Cs: a lone surrogate, which is what an undecodable byte in a command-line argument becomes.
    return any(unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") for ch in text)


_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _shown(text: str) -> str:
    """Input echoed in an error: quoted, control characters escaped, shortened."""
    shown = repr(text[:80] + ("..." if len(text) > 80 else ""))
    return re.sub(r"\s+", " ", shown)
