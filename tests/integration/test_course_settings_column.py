"""Course settings in the database (store/models.CourseSettingsColumn): a synced course's settings
are stored as the JSON older versions wrote, and a row of an older version reads back with
today's defaults, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select, text

from dripcourse.courses.files import read_course
from dripcourse.courses.media import collect_media
from dripcourse.store.db import Database
from dripcourse.store.models import Course

pytestmark = pytest.mark.both_databases


def stored_json(database: Database) -> dict[str, object]:
    with database.engine.connect() as connection:
        raw = connection.execute(text("SELECT settings FROM courses")).scalar_one()
    return raw if isinstance(raw, dict) else json.loads(raw)


def test_a_synced_course_stores_its_settings_as_plain_json(
    synced: Database, courses_dir: Path
) -> None:
    source = read_course(courses_dir / "runners")
    assert source.settings is not None

    # As read, and with the images the sync processed (`CourseSettings.media`).
    expected = replace(source.settings, media=tuple(collect_media(source).pictures))
    assert expected.media
    assert stored_json(synced) == expected.to_json()
    with synced.transaction() as session:
        assert session.scalars(select(Course.settings)).one() == expected


def test_a_row_without_the_later_keys_reads_with_their_defaults(synced: Database) -> None:
    older = stored_json(synced)
    del older["tracking"], older["double_opt_in"]
    with synced.engine.begin() as connection:
        connection.execute(text("UPDATE courses SET settings = :s"), {"s": json.dumps(older)})

    with synced.transaction() as session:
        settings = session.scalars(select(Course.settings)).one()

    assert settings.double_opt_in is True
    assert settings.tracks_clicks is False
    assert settings.title == "Runners E-Course"
