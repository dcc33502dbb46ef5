"""A cohort course on the web side: the API's timeline of someone who joined in progress (the
lessons skipped before they joined, the owed ones against the cohort's dates), and the dashboard's
calendar of a late joiner."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import httpx
import pytest
from api_server import serving
from test_dashboard_courses_http import Tables
from test_dashboard_people_http import signed_in

from dripcourse.app import subscriptions
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.catalog import sync_course
from dripcourse.courses.files import read_course
from dripcourse.domain.roles import Role
from dripcourse.store.db import Database
from dripcourse.web.app import create_app


def make_cohort(courses_dir: Path, starts_on: str, mode: str) -> None:
    toml = courses_dir / "runners" / "course.toml"
    text = toml.read_text(encoding="utf-8")
    schedule = f'[schedule]\nstarts_on = {starts_on}\nlate_joiners = "{mode}"\n'
    toml.write_text(text.replace("[schedule]\n", schedule), encoding="utf-8")


@pytest.fixture
def cohort_files(courses_dir: Path) -> Path:
    make_cohort(courses_dir, "2027-03-01", "join_in_progress")
    return courses_dir


@pytest.fixture
def api_client(
    cohort_files: Path, settings: Settings, synced: Database, clock: FixedClock
) -> Iterator[httpx.Client]:
    settings = settings.with_overrides(api_token="t1")
    app = create_app(settings, synced, clock, wake=None)
    with (
        serving(app) as url,
        httpx.Client(base_url=url, headers={"Authorization": "Bearer t1"}, timeout=10.0) as client,
    ):
        yield client


def test_the_api_timeline_of_someone_who_joined_in_progress(api_client, synced, clock):
    clock.set(datetime(2027, 3, 17, 15, 0, tzinfo=UTC))
    with synced.transaction() as session:
        subscriber_id = subscriptions.subscribe(
            session,
            email="eve@example.com",
            course_slug="runners",
            timezone="Europe/London",
            confirmed=True,
            now=clock.now(),
        ).enrollment.subscriber_id

    response = api_client.get(f"/api/v1/subscribers/{subscriber_id}/timeline")

    assert response.status_code == 200, response.text
    [runners] = response.json()["enrollments"]
    assert runners["before_joining"] == [
        {
            "number": 1,
            "key": "feet",
            "cohort_date": "2027-03-01T08:00:00Z",
            "reason": "before you joined",
        },
        {
            "number": 2,
            "key": "ankles",
            "cohort_date": "2027-03-08T08:00:00Z",
            "reason": "before you joined",
        },
    ]
    owed = runners["owed"]
    assert [lesson["number"] for lesson in owed] == list(range(3, 11))
    assert owed[0]["local_time"] == "2027-03-18 08:00 Europe/London"
    assert owed[0]["note"] == "behind the cohort, which had it Mon 15 Mar"
    assert (owed[2]["due_at"], owed[2]["note"]) == ("2027-03-29T07:00:00Z", None)  # BST


def test_the_dashboard_calendar_shows_a_late_joiner_against_the_cohort(live_server, courses_dir):
    # A cohort that ended long ago: whoever joins now is a late joiner, whatever today's date.
    make_cohort(courses_dir, "2020-01-06", "join_in_progress")
    with signed_in(live_server, Role.VIEWER) as browser:
        in_progress = browser.get("/admin/courses/runners", params={"zone": "Europe/London"})
        make_cohort_catch_up(courses_dir)
        catch_up = browser.get("/admin/courses/runners", params={"zone": "Europe/London"})

    rows = Tables(in_progress.text).tables[1][1:]
    assert [row[1] for row in rows[:9]] == [
        f"skipped: before you joined (the cohort had it {day})"
        for day in (
            "Mon 06 Jan",
            "Mon 13 Jan",
            "Mon 20 Jan",
            "Mon 27 Jan",
            "Mon 03 Feb",
            "Mon 10 Feb",
            "Mon 17 Feb",
            "Mon 24 Feb",
            "Mon 02 Mar",
        )
    ]
    assert "behind the cohort, which had it Mon 09 Mar" in rows[9][1]
    rows = Tables(catch_up.text).tables[1][1:]
    assert len(rows) == 10
    assert "behind the cohort, which had it Mon 06 Jan" in rows[0][1]
    assert not any("skipped" in row[1] for row in rows)


def make_cohort_catch_up(courses_dir: Path) -> None:
    toml = courses_dir / "runners" / "course.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text.replace('"join_in_progress"', '"catch_up"'), encoding="utf-8")


def test_the_subscriber_page_says_which_lessons_were_before_they_joined(live_server, courses_dir):
    make_cohort(courses_dir, "2020-01-06", "join_in_progress")
    with live_server.database.transaction() as session:
        sync_course(session, read_course(courses_dir / "runners"), datetime.now(UTC))
        subscriber_id = subscriptions.subscribe(
            session,
            email="eve@example.com",
            course_slug="runners",
            timezone="Europe/London",
            confirmed=True,
            now=datetime.now(UTC),
        ).enrollment.subscriber_id
    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get(f"/admin/subscribers/{subscriber_id}")

    assert page.status_code == 200
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", page.text)).split())
    assert "Not owed, the cohort had them before they joined: 1 feet, 2 ankles," in text
    assert "9 building-mileage." in text
