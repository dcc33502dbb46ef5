"""A course's settings as one frozen value (domain/course_settings.py): what `course.toml` says, stored
in the shape older versions wrote as a plain dict, and read back from rows of every version."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, replace
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dripcourse.courses.files import read_course
from dripcourse.domain.cohort import EARLIEST_START, LATEST_START, Cohort, LateJoiners
from dripcourse.domain.course_settings import (
    CallToAction,
    Contact,
    CourseSettings,
    Related,
    Sender,
)
from dripcourse.domain.schedule import Rhythm

EXAMPLE = Path(__file__).resolve().parents[2] / "emails" / "runners"

texts = st.text(max_size=30)
maybe_texts = st.none() | texts
rhythms = st.builds(
    Rhythm,
    cadence_days=st.integers(1, 400),
    # Stored as "HH:MM": a send time has no seconds.
    send_time=st.builds(time, st.integers(0, 23), st.integers(0, 59)),
    send_days=st.frozensets(st.integers(0, 6), min_size=1),
)
all_settings = st.builds(
    CourseSettings,
    title=texts,
    brand=texts,
    sender=st.builds(Sender, texts, texts, maybe_texts, maybe_texts, maybe_texts),
    postal_address=texts,
    description=maybe_texts,
    language=texts,
    double_opt_in=st.booleans(),
    rhythm=rhythms,
    timezone=st.sampled_from(["UTC", "America/Toronto", "Europe/London", "Asia/Kathmandu"]),
    contact=st.builds(Contact, maybe_texts, maybe_texts),
    call_to_action=st.none() | st.builds(CallToAction, texts, texts, texts, maybe_texts),
    links=st.dictionaries(texts, texts, max_size=4).map(lambda links: tuple(links.items())),
    related=st.lists(st.builds(Related, texts, texts, maybe_texts), max_size=3).map(tuple),
    accent=texts,
    tracks_clicks=st.booleans(),
    cohort=st.none()
    | st.builds(Cohort, st.dates(EARLIEST_START, LATEST_START), st.sampled_from(list(LateJoiners))),
)


@given(all_settings)
def test_any_settings_read_back_from_their_json_as_they_were(settings: CourseSettings) -> None:
    stored = json.loads(json.dumps(settings.to_json()))  # what the JSON column keeps

    assert CourseSettings.from_json(stored) == settings


@given(all_settings)
def test_the_json_read_back_is_written_again_unchanged(settings: CourseSettings) -> None:
    stored = json.loads(json.dumps(settings.to_json()))

    assert CourseSettings.from_json(stored).to_json() == stored


def test_the_shipped_course_is_stored_in_the_shape_templates_and_older_versions_know() -> None:
    source = read_course(EXAMPLE)
    assert source.problems == [] and source.settings is not None

    shape = source.settings.to_json()

    assert set(shape) == {
        *("title", "description", "brand", "language", "double_opt_in", "sender", "schedule"),
        *("contact", "footer", "call_to_action", "links", "theme", "tracking", "related"),
        "logo",  # only when written, as `[brand] logo`
    }
    assert shape["brand"] == "Northside Physio" and shape["logo"] == "logo.png"
    assert shape["sender"] == {
        "name": "Northside Physio",
        "email": "course@northside-physio.example",
        "reply_to": "hello@northside-physio.example",
        # Not written: the sender's address. No bounce_email key at all: templates test for it.
        "unsubscribe_email": "course@northside-physio.example",
    }
    assert shape["schedule"] == {
        "cadence_days": 7,
        "send_time": "08:00",
        "send_days": [0, 1, 2, 3, 4, 5, 6],
        "timezone": "America/Toronto",
    }
    assert shape["links"] == {
        "website": "https://northside-physio.example",
        "equipment": "https://northside-physio.example/equipment",
    }
    assert shape["theme"] == {"accent": "#1d4ed8"}
    assert shape["tracking"] == {"clicks": False}
    assert shape["double_opt_in"] is True
    assert shape["related"][0] == {
        "title": "Picking a running shoe without the guesswork",
        "url": "https://northside-physio.example/blog/choosing-running-shoes",
        "summary": "What actually matters when you try on running shoes, and why comfort is a "
        "better guide than labels.",
        "thumbnail": "images/thumb-shoe.png",  # only when written
    }
    assert CourseSettings.from_json(shape) == source.settings


# The first version stored no double_opt_in (the sign-up form came later), no [tracking] (click
# tracking came with migration 0004) and no sender.bounce_email (VERP came with 0003).
FIRST_VERSION_ROW: dict[str, Any] = {
    "title": "Runners E-Course",
    "description": None,
    "brand": "Northside Physio",
    "language": "en",
    "sender": {
        "name": "Northside Physio",
        "email": "course@northside-physio.example",
        "reply_to": None,
        "unsubscribe_email": "course@northside-physio.example",
    },
    "schedule": {
        "cadence_days": 7,
        "send_time": "08:00",
        "send_days": [0, 2, 4],
        "timezone": "America/Toronto",
    },
    "contact": {"email": None, "phone": None},
    "footer": {"postal_address": "418 Birchmount Lane"},
    "call_to_action": None,
    "links": {},
    "theme": {"accent": "#0f766e"},
    "related": [],
}


def test_a_row_written_by_the_first_version_reads_with_todays_defaults() -> None:
    settings = CourseSettings.from_json(FIRST_VERSION_ROW)

    assert settings.double_opt_in is True  # what the sign-up form always assumed for such a row
    assert settings.tracks_clicks is False
    assert settings.sender.bounce_email is None
    assert settings.rhythm == Rhythm(7, time(8, 0), frozenset({0, 2, 4}))
    assert settings.timezone == "America/Toronto"
    assert settings.to_json() == {
        **FIRST_VERSION_ROW,
        "double_opt_in": True,
        "tracking": {"clicks": False},
    }


def test_missing_optional_keys_get_the_defaults_course_toml_gives() -> None:
    row = {
        "title": "T",
        "brand": "B",
        "sender": {"name": "N", "email": "n@example.com"},
        "footer": {"postal_address": "1 Street"},
    }

    settings = CourseSettings.from_json(row)

    assert settings == CourseSettings(
        title="T",
        brand="B",
        sender=Sender("N", "n@example.com", unsubscribe_email="n@example.com"),
        postal_address="1 Street",
    )
    assert settings.rhythm == Rhythm()
    assert (settings.language, settings.timezone, settings.accent) == ("en", "UTC", "#0f766e")


def test_a_row_without_a_title_is_refused_not_guessed() -> None:
    row = {k: v for k, v in FIRST_VERSION_ROW.items() if k != "title"}

    with pytest.raises(KeyError):
        CourseSettings.from_json(row)


def test_the_settings_are_frozen_all_the_way_down() -> None:
    settings = CourseSettings.from_json(FIRST_VERSION_ROW)

    with pytest.raises(FrozenInstanceError):
        settings.title = "Changed"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        settings.sender.email = "someone@example.org"  # type: ignore[misc]
    assert not hasattr(settings, "__dict__")  # slotted: nowhere to add an attribute either
    hash(settings)  # nothing mutable inside: links and related are tuples


def test_changing_the_json_given_out_changes_nothing() -> None:
    settings = CourseSettings.from_json(FIRST_VERSION_ROW)
    shape = settings.to_json()

    shape["title"] = "Changed"
    shape["links"]["shop"] = "https://shop.example"
    shape["sender"]["email"] = "someone@example.org"

    assert settings.to_json() == {
        **FIRST_VERSION_ROW,
        "double_opt_in": True,
        "tracking": {"clicks": False},
    }


def test_a_changed_copy_is_a_new_value() -> None:
    settings = CourseSettings.from_json(FIRST_VERSION_ROW)

    tracked = replace(settings, tracks_clicks=True)

    assert tracked.tracks_clicks and not settings.tracks_clicks
    assert tracked.to_json()["tracking"] == {"clicks": True}


def test_a_cohort_course_stores_its_start_where_templates_find_it() -> None:
    settings = replace(
        CourseSettings.from_json(FIRST_VERSION_ROW),
        cohort=Cohort(date(2027, 3, 1), LateJoiners.JOIN_IN_PROGRESS),
    )

    shape = settings.to_json()

    assert shape["schedule"]["starts_on"] == "2027-03-01"
    assert shape["schedule"]["late_joiners"] == "join_in_progress"
    assert CourseSettings.from_json(json.loads(json.dumps(shape))) == settings
    # Without a cohort the keys are not there at all: the shape older versions wrote.
    assert "starts_on" not in CourseSettings.from_json(FIRST_VERSION_ROW).to_json()["schedule"]
