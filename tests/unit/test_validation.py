"""What people type, checked: addresses, names, time zones and instants (validation.py).

Whatever arrives from a form, a CSV import or a command line, each check either gives back a clean value
or raises `BadInput` with a message fit to show; nothing else escapes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dripcourse.domain.validation import (
    check_timezone,
    clean_name,
    mailbox_key,
    normalise_email,
    parse_instant,
)
from dripcourse.errors import BadInput

# -- normalise_email -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  ada@example.com\n", "ada@example.com"),
        ("Ada.Lovelace@EXAMPLE.Com", "Ada.Lovelace@example.com"),
        ("ada+runners@mail.example.org", "ada+runners@mail.example.org"),
        # The domain goes out in its ASCII (IDNA) form, typed either way; never decoded.
        ("user@bücher.example", "user@xn--bcher-kva.example"),
        ("user@xn--bcher-kva.example", "user@xn--bcher-kva.example"),
        ("user@XN--BCHER-KVA.example", "user@xn--bcher-kva.example"),
    ],
)
def test_a_good_address_is_stored_in_its_canonical_form(typed: str, stored: str) -> None:
    assert normalise_email(typed) == stored


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "an email address is required"),
        ("   ", "an email address is required"),
        ("ada", "not a valid email address: 'ada'"),
        ("ada@localhost", "not a valid email address"),
        ("ada@@example.com", "not a valid email address"),
        ("ada@example.com\r\nBcc: everyone@example.com", "not a valid email address"),
        ("ada@exa\nmple.com", "not a valid email address"),
        ("ada\x00@example.com", "not a valid email address"),
        ("a" * 250 + "@example.com", "not a valid email address"),
        # Non-ASCII local parts need SMTPUTF8 all the way to the mailbox: refused, and said why.
        ("jörg@example.com", "Internationalized characters before the @-sign are not supported"),
        ("josé@bücher.example", "not a valid email address"),
    ],
)
def test_a_bad_address_is_refused_with_a_message(typed: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        normalise_email(typed)


@pytest.mark.parametrize(
    "spellings",
    [
        ("bob@example.com", "BOB@example.com", "Bob@Example.COM", " bob@EXAMPLE.com "),
        ("user@bücher.example", "USER@xn--bcher-kva.example"),
    ],
)
def test_every_spelling_of_a_mailbox_has_one_key(spellings: tuple[str, ...]) -> None:
    assert len({mailbox_key(normalise_email(each)) for each in spellings}) == 1


def test_the_refusal_shows_the_address_on_one_line() -> None:
    with pytest.raises(BadInput) as refused:
        normalise_email("ada@example.com\r\nBcc: everyone@example.com")

    assert "\n" not in str(refused.value) and "\r" not in str(refused.value)


# -- clean_name ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        (None, ""),
        ("", ""),
        ("Ada Lovelace", "Ada Lovelace"),
        ("  Ada    Lovelace  ", "Ada Lovelace"),
        ("Zoë Ñúñez-山田", "Zoë Ñúñez-山田"),
        ("a" * 200, "a" * 200),
        ("  " + "a" * 200 + "  ", "a" * 200),
    ],
)
def test_a_name_is_kept_on_one_line_with_single_spaces(typed: str | None, stored: str) -> None:
    assert clean_name(typed) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "Ada\nLovelace",
        "Ada\r\nBcc: everyone@example.com",
        "Ada\rLovelace",
        "Ada\tLovelace",
        "Ada\x00",
        "Ada\x1b[31mred",
        "Ada\x7f",
        "Ada\u2028Lovelace",
        "Ada\u0085Lovelace",
    ],
)
def test_a_name_with_a_line_break_or_control_character_is_refused(typed: str) -> None:
    with pytest.raises(BadInput, match="line breaks or control characters"):
        clean_name(typed)


def test_a_name_of_201_characters_is_refused() -> None:
    with pytest.raises(BadInput, match="at most 200 characters"):
        clean_name("a" * 201)


def test_a_name_with_an_unpaired_surrogate_is_refused() -> None:
    # "\udcff" is what Python makes of a byte that is not UTF-8 in a command-line argument
    # (surrogateescape); no database or email header can store it.
    with pytest.raises(BadInput):
        clean_name("Ada \udcff")


# -- check_timezone ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("America/Toronto", "America/Toronto"),
        ("UTC", "UTC"),
        (" Australia/Sydney\r\n", "Australia/Sydney"),
    ],
)
def test_an_iana_zone_is_accepted(typed: str, stored: str) -> None:
    assert check_timezone(typed) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "Mars/Olympus_Mons",
        "europe/berlin",
        "Europe/Ber\nlin",
        "Europe/Berlin\x00",
        "../../../etc/passwd",
        "/usr/share/zoneinfo/Europe/Berlin",
        "+01:00",
    ],
)
def test_an_unknown_zone_is_refused_with_an_example(typed: str) -> None:
    with pytest.raises(BadInput, match=r"unknown time zone .*Europe/Berlin"):
        check_timezone(typed)


# -- parse_instant -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "instant"),
    [
        ("2026-03-02T08:00:00", datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
        ("2026-03-02 08:00", datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
        ("2026-03-02", datetime(2026, 3, 2, 0, 0, tzinfo=UTC)),
        ("2026-03-02T08:00:00Z", datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
        ("2026-03-02T08:00:00+01:00", datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),
        ("2026-03-02T08:00:00-05:00", datetime(2026, 3, 2, 13, 0, tzinfo=UTC)),
        (" 2026-03-02T08:00:00+05:30\n", datetime(2026, 3, 2, 2, 30, tzinfo=UTC)),
    ],
)
def test_an_instant_is_read_as_utc(typed: str, instant: datetime) -> None:
    parsed = parse_instant(typed)

    assert parsed == instant
    assert parsed.tzinfo is UTC


def test_a_naive_instant_is_taken_as_utc_not_as_the_local_zone() -> None:
    naive, offset = parse_instant("2026-07-01T12:00"), parse_instant("2026-07-01T12:00+02:00")

    assert naive - offset == timedelta(hours=2)


@pytest.mark.parametrize(
    "typed",
    ["", "yesterday", "2026-13-01", "2026-02-30T08:00", "2026-03-02T25:00", "08:00", "1772438400"],
)
def test_a_bad_instant_is_refused_with_an_example(typed: str) -> None:
    with pytest.raises(BadInput, match=r"not an ISO-8601 date and time.*example: 2026-03-02"):
        parse_instant(typed)


@pytest.mark.parametrize("typed", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_instant_outside_the_calendar_in_utc_is_bad_input(typed: str) -> None:
    with pytest.raises(BadInput):
        parse_instant(typed)


# -- whatever is typed: a value or BadInput, nothing else ----------------------------------------

CHECKS: dict[str, Callable[[str], Any]] = {
    "normalise_email": normalise_email,
    "clean_name": clean_name,
    "check_timezone": check_timezone,
    "parse_instant": parse_instant,
}


def returns_or_refuses(check: Callable[[str], Any], text: str) -> None:
    try:
        check(text)
    except BadInput as exc:
        assert str(exc)


typed_text = st.one_of(
    st.text(),
    # The characters these checks care about, so that near misses are common.
    st.text(alphabet=st.sampled_from("aZé山@.-_/:+ 09TZ\r\n\t\x00\x1b\u2028\u0085")),
    st.emails().map(lambda address: f" {address}\r\n"),
    st.sampled_from(["Europe/Berlin", "UTC", "America/Toronto"]).map(lambda zone: zone + "\x00"),
)
offset_instants = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
    st.datetimes(),
    st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)


@pytest.mark.parametrize("name", sorted(CHECKS))
@given(text=typed_text)
def test_any_text_gives_a_value_or_bad_input(name: str, text: str) -> None:
    returns_or_refuses(CHECKS[name], text)


@given(text=offset_instants)
@example(text="0001-01-01T00:30:00+01:00")
def test_any_iso_instant_with_an_offset_gives_a_value_or_bad_input(text: str) -> None:
    returns_or_refuses(parse_instant, text)


@given(name=st.text())
def test_a_clean_name_is_one_short_line(name: str) -> None:
    try:
        cleaned = clean_name(name)
    except BadInput:
        return
    assert cleaned == cleaned.strip()
    assert len(cleaned) <= 200
    assert len(cleaned.splitlines()) <= 1
    assert "  " not in cleaned
