"""Custom fields over HTTP: the sign-up form shows the course's fields and takes them (also as hidden
inputs of a form on the clinic's own site, and in JSON), the operator API sets and changes them, and
hostile values are refused with a 4xx that says why, writing nothing. Real HTTP to the real app."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from api_server import serving
from fieldcourse import field_course
from sqlalchemy import func, select

from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.store.db import Database
from dripcourse.store.models import Enrollment, Subscriber
from dripcourse.web.app import create_app

HOSTILE = {
    "unknown field": ({"field.shoe_size": "42"}, "unknown field 'shoe_size'"),
    "not a choice": ({"field.level": "expert"}, "level must be one of beginner, returning"),
    "markup choice": ({"field.level": "<script>"}, "level must be one of beginner, returning"),
    "line break": ({"field.club": "a\r\nBcc: x@example.com"}, "club may not contain line breaks"),
    "too long": ({"field.club": "x" * 201}, "club may be at most 200 characters"),
    "control": ({"field.club": "a\x00b"}, "club may not contain"),
}


@pytest.fixture
def courses_dir(tmp_path: Path) -> Path:
    return field_course(tmp_path / "emails")


@pytest.fixture
def client(settings: Settings, synced: Database, clock: FixedClock) -> Iterator[httpx.Client]:
    settings = settings.with_overrides(api_token="t1")
    app = create_app(settings, synced, clock, wake=lambda: None)
    with serving(app) as url, httpx.Client(base_url=url, timeout=10.0) as client:
        yield client


def stored(database: Database) -> dict[str, dict[str, str]]:
    with database.read() as session:
        rows = session.execute(select(Subscriber.email, Enrollment.fields).join(Enrollment)).all()
    return {email: fields for email, fields in rows}


def count(database: Database) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(Subscriber)) or 0


def test_the_form_offers_the_fields_and_keeps_what_was_chosen(client, synced) -> None:
    page = client.get("/subscribe", params={"course": "runners"})
    assert page.status_code == 200
    assert '<label for="field-level">Your running</label>' in page.text
    assert '<select id="field-level" name="field.level">' in page.text
    assert '<option value="beginner" selected>beginner</option>' in page.text
    assert '<input id="field-club" name="field.club" type="text" maxlength="200"' in page.text

    sent = client.post(
        "/subscribe",
        data={
            "course": "runners",
            "email": "ann@example.com",
            "field.level": "returning",
            "field.club": "  <b>Tom & Jerry's</b> ",
        },
    )
    assert sent.status_code == 200, sent.text
    assert stored(synced) == {
        "ann@example.com": {"level": "returning", "club": "<b>Tom & Jerry's</b>"}
    }


def test_a_json_sign_up_takes_the_same_keys(client, synced) -> None:
    sent = client.post(
        "/subscribe",
        json={"course": "runners", "email": "bob@example.com", "field.level": "beginner"},
    )
    assert sent.status_code == 202, sent.text
    assert stored(synced) == {"bob@example.com": {"level": "beginner"}}


@pytest.mark.parametrize(("values", "says"), HOSTILE.values(), ids=HOSTILE)
def test_a_hostile_value_in_the_form_is_explained_beside_the_form(client, synced, values, says):
    sent = client.post(
        "/subscribe", data={"course": "runners", "email": "eve@example.com", **values}
    )
    assert sent.status_code == 400
    assert sent.headers["content-type"].startswith("text/html")
    assert says.lower() in html.unescape(sent.text).lower()
    assert "<script>" not in sent.text  # what was typed is shown escaped
    assert count(synced) == 0


@pytest.mark.parametrize(("values", "says"), HOSTILE.values(), ids=HOSTILE)
def test_a_hostile_value_in_json_is_a_400_saying_why(client, synced, values, says):
    sent = client.post("/subscribe", json={"course": "runners", "email": "e@example.com", **values})
    assert sent.status_code == 400
    assert says in sent.json()["error"]
    assert count(synced) == 0


def test_the_api_sets_and_changes_fields(client, synced) -> None:
    auth = {"Authorization": "Bearer t1"}
    body = {"email": "ann@example.com", "course": "runners", "confirmed": True}
    made = client.post(
        "/api/v1/subscribers", json={**body, "fields": {"level": "returning"}}, headers=auth
    )
    assert made.status_code == 201, made.text
    assert made.json()["enrollments"][0]["fields"] == {"level": "returning"}
    person = made.json()["id"]

    url = f"/api/v1/subscribers/{person}/enrollments/runners"
    changed = client.patch(url, json={"fields": {"club": "Riverside", "level": None}}, headers=auth)
    assert changed.status_code == 200, changed.text
    assert changed.json()["fields"] == {"club": "Riverside"}  # level: back to the default

    for fields, status, says in (
        ({"level": "expert"}, 400, "level must be one of"),
        ({"shoe_size": "42"}, 400, "unknown field 'shoe_size'"),
        ({"club": "a\nb"}, 400, "club may not contain line breaks"),
        ({"club": "x" * 5000}, 422, ""),  # beyond the documented size: the shape is wrong
        ({"club": 7}, 422, ""),
    ):
        refused = client.patch(url, json={"fields": fields}, headers=auth)
        assert refused.status_code == status, (fields, refused.text)
        assert says in refused.text
    refused = client.post(
        "/api/v1/subscribers",
        json={**body, "email": "x@example.com", "fields": {"level": "x"}},
        headers=auth,
    )
    assert refused.status_code == 400
    assert stored(synced) == {"ann@example.com": {"club": "Riverside"}}
    missing = client.patch(
        "/api/v1/subscribers/999/enrollments/runners", json={"fields": {}}, headers=auth
    )
    assert missing.status_code == 404
    schema = client.get("/openapi.json").json()
    assert "patch" in schema["paths"]["/api/v1/subscribers/{subscriber_id}/enrollments/{course}"]
    assert "fields" in schema["components"]["schemas"]["NewSubscriber"]["properties"]


def test_the_timeline_payload_names_the_skipped_lesson(client, synced, clock) -> None:
    auth = {"Authorization": "Bearer t1"}
    body = {"email": "bob@example.com", "course": "runners", "confirmed": True}
    person = client.post("/api/v1/subscribers", json=body, headers=auth).json()["id"]
    shown = client.get(f"/api/v1/subscribers/{person}/timeline", headers=auth).json()
    [enrollment] = shown["enrollments"]
    assert enrollment["skipped"] == [
        {"number": 4, "key": "knees", "audience": "for level returning"}
    ]
    assert [lesson["number"] for lesson in enrollment["owed"]] == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert datetime.fromisoformat(shown["now"]) == clock.now().astimezone(UTC)
