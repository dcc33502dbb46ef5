"""The dashboard and custom fields: the subscriber page shows a person's values (the default where
they gave none) and the lessons they skip, an editor changes the values, a viewer may not, and a
hostile value is explained on the page with nothing changed. The course report says whom a lesson
is for and how many skip it."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fieldcourse import field_course
from sqlalchemy import select

from dripcourse.app import operators, subscriptions
from dripcourse.domain.roles import Role
from dripcourse.store.models import Enrollment, Subscriber

PASSWORD = "correct horse battery"


@pytest.fixture
def courses_dir(tmp_path: Path) -> Path:
    return field_course(tmp_path / "emails")


@contextmanager
def signed_in(live_server, role: Role) -> Iterator[tuple[httpx.Client, str]]:
    email = f"{role.value}@clinic.example"
    with live_server.database.transaction() as session:
        operators.add_operator(session, email, role, PASSWORD, datetime.now(UTC), "test set-up")
    with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=10) as browser:
        token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/admin/login").text)
        assert token is not None
        answer = browser.post(
            "/admin/login", data={"email": email, "password": PASSWORD, "csrf": token.group(1)}
        )
        assert answer.status_code == 303
        page = browser.get("/admin/").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        yield browser, csrf.group(1)


def bob(live_server) -> int:
    with live_server.database.transaction() as session:
        result = subscriptions.subscribe(
            session,
            email="bob@example.com",
            course_slug="runners",
            timezone="America/Toronto",
            confirmed=True,
            now=datetime.now(UTC),
            fields={"club": "<b>Tom & Jerry's</b>"},
        )
        return result.enrollment.subscriber_id


def fields_of(live_server) -> dict[str, str]:
    with live_server.database.read() as session:
        return session.scalars(select(Enrollment.fields).join(Subscriber)).one()


def test_an_editor_sees_and_changes_the_values_and_the_skip_follows(live_server) -> None:
    person = bob(live_server)
    with signed_in(live_server, Role.EDITOR) as (browser, csrf):
        page = browser.get(f"/admin/subscribers/{person}").text
        assert (
            '<dt>Your running</dt><dd>beginner <span class="muted">(not given: the default)' in page
        )
        assert "<dd>&lt;b&gt;Tom &amp; Jerry&#39;s&lt;/b&gt;</dd>" in page
        assert "<b>Tom" not in page
        assert "skipped: for level returning" in page

        url = f"/admin/subscribers/{person}/enrollments/runners/fields"
        changed = browser.post(
            url, data={"csrf": csrf, "field.level": "returning", "field.club": ""}
        )
        assert changed.status_code == 303
        assert fields_of(live_server) == {"level": "returning"}
        page = browser.get(f"/admin/subscribers/{person}").text
        assert "skipped: for level returning" not in page
        assert "fields changed" in page  # the audit log of the person

        refused = browser.post(url, data={"csrf": csrf, "field.level": "<script>x</script>"})
        assert refused.status_code == 400
        assert "level must be one of beginner, returning" in html.unescape(refused.text).lower()
        assert "<script>x</script>" not in refused.text
        assert (
            browser.post(url, data={"csrf": "forged", "field.level": "beginner"}).status_code == 403
        )
        assert fields_of(live_server) == {"level": "returning"}

        report = browser.get("/admin/courses/runners").text
        assert "for level returning; 0 of the course's people skip it" in report


def test_a_viewer_may_not_change_them(live_server) -> None:
    person = bob(live_server)
    with signed_in(live_server, Role.VIEWER) as (browser, csrf):
        assert "/fields" not in browser.get(f"/admin/subscribers/{person}").text
        url = f"/admin/subscribers/{person}/enrollments/runners/fields"
        assert browser.post(url, data={"csrf": csrf, "field.level": "returning"}).status_code == 403
    assert fields_of(live_server) == {"club": "<b>Tom & Jerry's</b>"}
