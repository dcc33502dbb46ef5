"""`GET /api/v1/subscribers/{id}/timeline` over real HTTP: the real app served by uvicorn, a real
SQLite file, the dispatcher sending to a real SMTP server with the app's fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from api_server import serving

from dripcourse.app import subscriptions
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.store.db import Database
from dripcourse.web.app import create_app


@dataclass
class Api:
    client: httpx.Client
    database: Database
    settings: Settings
    clock: FixedClock

    def tick(self, at: datetime) -> None:
        self.clock.set(at)
        backend = load_backend(self.settings.email_backend)
        Dispatcher(self.database, self.settings, backend, self.clock).run_pass()

    def timeline(self, subscriber_id: int) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/subscribers/{subscriber_id}/timeline")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def api(settings: Settings, synced: Database, clock: FixedClock) -> Iterator[Api]:
    settings = settings.with_overrides(api_token="t1")
    app = create_app(settings, synced, clock)
    with (
        serving(app) as url,
        httpx.Client(base_url=url, headers={"Authorization": "Bearer t1"}, timeout=10.0) as client,
    ):
        yield Api(client, synced, settings, clock)


def enrol(api: Api) -> int:
    with api.database.transaction() as session:
        result = subscriptions.subscribe(
            session,
            email="bruno@example.com",
            course_slug="runners",
            name="Bruno Schulz",
            timezone="Europe/Berlin",
            confirmed=True,
            now=api.clock.now(),
        )
        return result.enrollment.subscriber_id


def test_the_timeline_of_someone_in_the_middle_of_the_course(api, smtpd: CapturingSMTPServer):
    subscriber_id = enrol(api)
    for day in (3, 10, 17):
        api.tick(datetime(2026, 3, day, 7, 0, tzinfo=UTC))
    api.clock.set(datetime(2026, 3, 20, 12, 0, tzinfo=UTC))
    body = api.timeline(subscriber_id)

    assert (body["id"], body["email"], body["timezone"]) == (
        subscriber_id,
        "bruno@example.com",
        "Europe/Berlin",
    )
    assert body["now"] == "2026-03-20T12:00:00Z"
    [runners] = body["enrollments"]
    assert (runners["course"], runners["status"], runners["held"]) == ("runners", "active", None)
    sent = runners["deliveries"]
    assert [(d["lesson_number"], d["lesson_key"], d["status"]) for d in sent] == [
        (1, "feet", "sent"),
        (2, "ankles", "sent"),
        (3, "calves-achilles", "sent"),
    ]
    assert [d["message_id"] for d in sent] == [str(m.message["Message-ID"]) for m in smtpd.messages]
    assert [d["sent_at"] for d in sent] == [
        "2026-03-03T07:00:00Z",
        "2026-03-10T07:00:00Z",
        "2026-03-17T07:00:00Z",
    ]
    owed = runners["owed"]
    assert [lesson["number"] for lesson in owed] == list(range(4, 11))
    assert owed[0] == {
        "number": 4,
        "key": "knees",
        "due_at": "2026-03-24T07:00:00Z",
        "local_time": "2026-03-24 08:00 Europe/Berlin",
        "moved_from": None,
        "note": None,
    }
    # Summer time from 29 March: still 08:00 on their clock.
    assert (owed[1]["due_at"], owed[1]["local_time"]) == (
        "2026-03-31T06:00:00Z",
        "2026-03-31 08:00 Europe/Berlin",
    )


def test_a_paused_enrolment_is_held_with_its_lessons(api):
    subscriber_id = enrol(api)
    api.tick(datetime(2026, 3, 3, 7, 0, tzinfo=UTC))
    pause = api.client.post(f"/api/v1/subscribers/{subscriber_id}/enrollments/runners/pause")
    assert pause.status_code == 200, pause.text
    [runners] = api.timeline(subscriber_id)["enrollments"]
    assert runners["owed"] == []
    held = runners["held"]
    assert (held["reason"], held["since"]) == ("paused", "2026-03-03T07:00:00Z")
    assert held["lessons"][0] == {"number": 2, "key": "ankles"}
    assert len(held["lessons"]) == 9


def test_an_unknown_subscriber_is_404_and_the_token_is_required(api):
    missing = api.client.get("/api/v1/subscribers/999999/timeline")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no subscriber with id 999999"}
    assert api.client.get("/api/v1/subscribers/0/timeline").status_code == 422
    anonymous = httpx.get(api.client.base_url.join("/api/v1/subscribers/1/timeline"))
    assert anonymous.status_code == 401
