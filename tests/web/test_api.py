"""The operator API as an operator's script uses it: real HTTP to the real app served by uvicorn,
a real SQLite file underneath, the dispatcher sending to a real SMTP server.

Each test asserts on what changed where it matters: the rows in the database, the answer of a later
GET, the email that arrived.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from api_server import serving
from sqlalchemy import func, select

from dripcourse.app import subscriptions
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.sending.dispatch import Dispatcher, Sent
from dripcourse.store.db import Database
from dripcourse.store.models import (
    Delivery,
    Enrollment,
    Subscriber,
    Suppression,
    SuppressionReason,
)
from dripcourse.web.app import create_app

ADA = {
    "email": "ada@example.com",
    "course": "runners",
    "name": "Ada Lovelace",
    "timezone": "America/Toronto",
    "confirmed": True,
}
# 08:00 in Toronto on the day after the fixtures' start (Monday 2 March 2026, 15:00 UTC).
FIRST_SLOT = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)


@dataclass
class Api:
    url: str
    client: httpx.Client
    """Sends `Authorization: Bearer t1`."""
    database: Database
    settings: Settings
    clock: FixedClock
    wakes: list[datetime] = field(default_factory=list)

    def dispatch(self) -> list[Sent]:
        """One dispatcher pass at the clock's instant; what happened to each message."""
        outcomes: list[Sent] = []
        backend = load_backend(self.settings.email_backend)
        Dispatcher(self.database, self.settings, backend, self.clock).run_pass(outcomes.append)
        return outcomes

    def subscribe(self, **changes: object) -> dict[str, object]:
        response = self.client.post("/api/v1/subscribers", json={**ADA, **changes})
        assert response.status_code == 201, response.text
        body: dict[str, object] = response.json()
        return body


@pytest.fixture
def api(settings: Settings, synced: Database, clock: FixedClock) -> Iterator[Api]:
    """The app with the tokens t1 and t2, its clock fixed, served on a free loopback port."""
    settings = settings.with_overrides(api_token="t1,t2")
    wakes: list[datetime] = []
    app = create_app(settings, synced, clock, wake=lambda: wakes.append(clock.now()))
    with (
        serving(app) as url,
        httpx.Client(base_url=url, headers={"Authorization": "Bearer t1"}, timeout=10.0) as client,
    ):
        yield Api(url, client, synced, settings, clock, wakes)


def rows(database: Database, model: type, *where: object) -> int:
    with database.transaction() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


# -- tokens -------------------------------------------------------------------------------------


def test_no_token_or_a_wrong_one_is_refused_with_a_bearer_challenge(api):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dDE6dDE="}):
        response = httpx.get(f"{api.url}/api/v1/status", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json() == {"error": "a valid bearer token is required"}


def test_a_caller_without_a_token_learns_nothing_about_their_body(api):
    response = httpx.post(
        f"{api.url}/api/v1/subscribers",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401
    assert rows(api.database, Subscriber) == 0


def test_each_configured_token_works(api):
    for token in ("t1", "t2"):
        response = httpx.get(
            f"{api.url}/api/v1/status", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, token


def test_every_documented_operation_needs_a_token(api):
    document = api.client.get("/openapi.json").json()
    operations = [(m, path) for path, ops in document["paths"].items() for m in ops]
    assert len(operations) == 19  # 18, and PATCH of an enrolment (its custom fields)
    for method, path in operations:
        url = api.url + path.format(subscriber_id=1, course="runners", lesson=1)
        response = httpx.request(method, url, json={} if method in ("post", "patch") else None)
        assert response.status_code == 401, (method, path)


def test_a_method_the_resource_lacks_is_405_naming_the_ones_it_has(api):
    for method, path, allow in [
        ("PUT", "/api/v1/subscribers/1", "DELETE, GET, PATCH"),
        ("DELETE", "/api/v1/subscribers", "GET, POST"),
        ("GET", "/api/v1/courses/runners/lessons/1/queue", "POST"),
    ]:
        response = api.client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["Allow"] == allow


def test_without_configured_tokens_the_api_refuses_everyone(settings, synced, clock):
    app = create_app(settings.with_overrides(api_token=""), synced, clock)
    with serving(app) as url:
        for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer t1"}):
            assert httpx.get(f"{url}/api/v1/status", headers=headers).status_code == 401


# -- subscribers --------------------------------------------------------------------------------


def test_a_confirmed_subscriber_is_enrolled_and_lesson_one_is_due_at_eight_their_time(api):
    created = api.subscribe()
    assert created["email"] == "ada@example.com"
    assert created["name"] == "Ada Lovelace"
    assert created["timezone"] == "America/Toronto"
    [enrollment] = created["enrollments"]
    assert enrollment["course"] == "runners"
    assert enrollment["status"] == "active"
    assert enrollment["next_due_at"] == "2026-03-03T13:00:00Z"
    with api.database.transaction() as session:
        stored = session.scalars(select(Enrollment)).one()
        assert (stored.source, stored.status) == ("api", "active")
    assert api.wakes == [], "nothing to send now: no reason to wake the dispatcher"


def test_an_unconfirmed_subscriber_gets_a_confirmation_email_at_once(api, smtpd):
    created = api.subscribe(email="bea@example.com", confirmed=False)
    assert created["enrollments"][0]["status"] == "pending"
    assert api.wakes == [api.clock.now()], "the dispatcher is asked for a pass now"
    assert [(o.email, o.kind, o.status) for o in api.dispatch()] == [
        ("bea@example.com", "confirmation", "sent")
    ]
    [message] = [m.message for m in smtpd.messages]
    assert message["To"].addresses[0].addr_spec == "bea@example.com"


def test_subscribing_again_changes_nothing(api):
    first = api.subscribe()
    again = api.subscribe(name="Someone Else")
    assert again["id"] == first["id"]
    assert rows(api.database, Enrollment) == 1


def test_the_list_filters_by_course_and_status_and_pages(api):
    for address in ("c@example.com", "a@example.com", "b@example.com"):
        api.subscribe(email=address)
    api.subscribe(email="p@example.com", confirmed=False)

    page = api.client.get("/api/v1/subscribers", params={"limit": 2, "offset": 1}).json()
    assert [s["email"] for s in page["items"]] == ["b@example.com", "c@example.com"]
    assert (page["limit"], page["offset"]) == (2, 1)

    pending = api.client.get("/api/v1/subscribers", params={"status": "pending"}).json()
    assert [s["email"] for s in pending["items"]] == ["p@example.com"]
    in_course = api.client.get("/api/v1/subscribers", params={"course": "runners"}).json()
    assert len(in_course["items"]) == 4
    elsewhere = api.client.get("/api/v1/subscribers", params={"course": "yoga"})
    assert elsewhere.status_code == 404 and "yoga" in elsewhere.json()["error"]


def test_the_list_finds_a_person_by_address_in_any_spelling(api):
    for address in ("a@example.com", "Bob@example.com", "c@example.com"):
        api.subscribe(email=address)
    for spelling in ("Bob@example.com", "BOB@EXAMPLE.COM", " bob@example.com "):
        found = api.client.get("/api/v1/subscribers", params={"email": spelling}).json()
        assert [s["email"] for s in found["items"]] == ["Bob@example.com"], spelling
    nobody = api.client.get("/api/v1/subscribers", params={"email": "zed@example.com"}).json()
    assert nobody["items"] == []


def test_an_unknown_query_parameter_is_a_400_not_a_filter_ignored(api):
    api.subscribe()
    for path, params in (
        ("/api/v1/subscribers", {"emial": "ada@example.com"}),
        ("/api/v1/subscribers", {"course": "runners", "sort": "name"}),
        ("/api/v1/status", {"verbose": "1"}),
        ("/api/v1/courses", {"x": ""}),
    ):
        response = api.client.get(path, params=params)
        assert response.status_code == 400, (path, params, response.text)
        assert "unknown query parameter" in response.json()["error"]


def test_show_has_enrolments_and_the_delivery_history(api, smtpd):
    ada = api.subscribe()
    api.clock.set(FIRST_SLOT)
    api.dispatch()
    response = api.client.get(f"/api/v1/subscribers/{ada['id']}")
    assert response.status_code == 200
    shown = response.json()
    assert shown["enrollments"][0]["status"] == "active"
    [delivery] = shown["deliveries"]
    assert delivery["course"] == "runners"
    assert (delivery["lesson_number"], delivery["lesson_key"]) == (1, "feet")
    assert (delivery["kind"], delivery["status"], delivery["attempts"]) == ("lesson", "sent", 1)
    assert delivery["sent_at"] == "2026-03-03T13:00:00Z"
    assert delivery["last_error"] is None
    [message] = [m.message for m in smtpd.messages]
    assert message["Message-ID"] == delivery["message_id"]


def test_a_new_name_and_zone_are_kept_and_the_next_lesson_moves_to_eight_there(api):
    ada = api.subscribe()
    response = api.client.patch(
        f"/api/v1/subscribers/{ada['id']}",
        json={"name": "  Ada   King ", "timezone": "Europe/Berlin"},
    )
    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["timezone"]) == ("Ada King", "Europe/Berlin")
    with api.database.transaction() as session:
        subscriber = session.scalars(select(Subscriber)).one()
        assert (subscriber.name, subscriber.timezone) == ("Ada King", "Europe/Berlin")
        due = subscriber.enrollments[0].next_due_at
    # It was due on Tuesday 3 March at 08:00 in Toronto: now at 08:00 in Berlin that same day.
    assert due is not None
    assert due.astimezone(ZoneInfo("Europe/Berlin")) == datetime(
        2026, 3, 3, 8, 0, tzinfo=ZoneInfo("Europe/Berlin")
    )


def test_a_zone_change_never_puts_the_next_lesson_in_the_past(api):
    # 15:00 UTC is 05:00 in Honolulu: lesson 1 is due at 08:00 there today (18:00 UTC).
    ada = api.subscribe(timezone="Pacific/Honolulu")
    assert ada["enrollments"][0]["next_due_at"] == "2026-03-02T18:00:00Z"
    api.client.patch(f"/api/v1/subscribers/{ada['id']}", json={"timezone": "Asia/Tokyo"})
    with api.database.transaction() as session:
        due = session.scalars(select(Enrollment)).one().next_due_at
    # 08:00 in Tokyo on 2 March has passed (23:00 UTC on the 1st): the next slot is on the 3rd.
    assert due == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)


def test_an_empty_change_changes_nothing_and_an_empty_name_clears_it(api):
    ada = api.subscribe()
    unchanged = api.client.patch(f"/api/v1/subscribers/{ada['id']}", json={}).json()
    assert (unchanged["name"], unchanged["timezone"]) == ("Ada Lovelace", "America/Toronto")
    cleared = api.client.patch(f"/api/v1/subscribers/{ada['id']}", json={"name": ""}).json()
    assert cleared["name"] == ""


def test_delete_erases_the_person_but_keeps_their_suppression(api):
    ada = api.subscribe()
    api.clock.set(FIRST_SLOT)
    api.dispatch()
    with api.database.transaction() as session:
        subscriptions.suppress(
            session, "ada@example.com", SuppressionReason.COMPLAINT, api.clock.now()
        )
    assert rows(api.database, Delivery) == 1

    response = api.client.delete(f"/api/v1/subscribers/{ada['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert rows(api.database, Subscriber) == 0
    assert rows(api.database, Enrollment) == 0
    assert rows(api.database, Delivery) == 0
    assert rows(api.database, Suppression, Suppression.email == "ada@example.com") == 1
    assert api.client.get(f"/api/v1/subscribers/{ada['id']}").status_code == 404
    assert api.client.delete(f"/api/v1/subscribers/{ada['id']}").status_code == 404
    # And they are never mailed again: an operator's new sign-up is refused.
    again = api.client.post("/api/v1/subscribers", json=ADA)
    assert again.status_code == 409
    assert "suppressed" in again.json()["error"]


def test_pause_holds_resume_continues_and_each_twice_is_a_conflict(api):
    ada = api.subscribe()
    base = f"/api/v1/subscribers/{ada['id']}/enrollments/runners"

    paused = api.client.post(f"{base}/pause")
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    shown = api.client.get(f"/api/v1/subscribers/{ada['id']}").json()
    assert shown["enrollments"][0]["status"] == "paused"
    twice = api.client.post(f"{base}/pause")
    assert twice.status_code == 409
    assert "not active" in twice.json()["error"]
    api.clock.set(FIRST_SLOT)
    assert api.dispatch() == [], "nothing goes out while paused"

    resumed = api.client.post(f"{base}/resume")
    assert resumed.status_code == 200
    assert resumed.json()["status"] == "active"
    again = api.client.post(f"{base}/resume")
    assert again.status_code == 409
    assert "not paused" in again.json()["error"]


def test_unsubscribe_ends_one_course_without_suppressing_the_address(api):
    ada = api.subscribe()
    response = api.client.post(f"/api/v1/subscribers/{ada['id']}/enrollments/runners/unsubscribe")
    assert response.status_code == 200
    assert response.json()["status"] == "unsubscribed"
    assert response.json()["next_due_at"] is None
    with api.database.transaction() as session:
        assert session.scalars(select(Enrollment.status)).one() == "unsubscribed"
    assert rows(api.database, Suppression) == 0
    api.clock.set(FIRST_SLOT)
    assert api.dispatch() == []


def test_unknown_subscribers_courses_and_enrolments_are_404(api):
    ada = api.subscribe()
    for method, path in [
        ("GET", "/api/v1/subscribers/999"),
        ("PATCH", "/api/v1/subscribers/999"),
        ("DELETE", "/api/v1/subscribers/999"),
        ("POST", "/api/v1/subscribers/999/enrollments/runners/pause"),
        ("POST", f"/api/v1/subscribers/{ada['id']}/enrollments/yoga/pause"),
        ("POST", f"/api/v1/subscribers/{ada['id']}/enrollments/yoga/unsubscribe"),
        ("GET", "/api/v1/courses/yoga"),
        ("GET", "/api/v1/courses/yoga/lessons"),
        ("GET", "/api/v1/courses/runners/lessons/0"),
        ("GET", "/api/v1/courses/runners/lessons/11"),
        ("GET", "/api/v1/courses/runners/lessons/elbows"),
        ("GET", "/api/v1/courses/runners/lessons/elbows/preview"),
    ]:
        kwargs = {"json": {}} if method == "PATCH" else {}
        response = api.client.request(method, path, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]
    create = api.client.post("/api/v1/subscribers", json={**ADA, "course": "yoga"})
    assert create.status_code == 404
    assert "unknown course 'yoga'" in create.json()["error"]


# -- bad input ----------------------------------------------------------------------------------


BAD_VALUES = [
    ({"email": "not-an-address"}, "not a valid email address"),
    ({"email": "ada@example.com\r\nBcc: all@example.com"}, "not a valid email address"),
    ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
    ({"name": "Ada\r\nBcc: all@example.com"}, "line breaks"),
    ({"name": "Ada\nLovelace"}, "line breaks"),
]


def test_bad_values_are_400_and_nothing_is_written(api):
    for changes, message in BAD_VALUES:
        response = api.client.post("/api/v1/subscribers", json={**ADA, **changes})
        assert response.status_code == 400, (changes, response.text)
        assert message in response.json()["error"], changes
    assert rows(api.database, Subscriber) == 0


def test_a_bad_change_is_400_and_the_person_stays_as_they_were(api):
    ada = api.subscribe()
    for changes, message in [
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"timezone": ""}, "unknown time zone"),
        ({"name": "Ada\r\nLovelace"}, "line breaks"),
        ({"name": "Ada", "timezone": "Nowhere"}, "unknown time zone"),
    ]:
        response = api.client.patch(f"/api/v1/subscribers/{ada['id']}", json=changes)
        assert response.status_code == 400, (changes, response.text)
        assert message in response.json()["error"], changes
    shown = api.client.get(f"/api/v1/subscribers/{ada['id']}").json()
    assert (shown["name"], shown["timezone"]) == ("Ada Lovelace", "America/Toronto")


def test_a_body_of_the_wrong_shape_or_size_is_422(api):
    for body, where in [
        ({**ADA, "email": "a" * 250 + "@example.com"}, ["body", "email"]),
        ({**ADA, "name": "A" * 201}, ["body", "name"]),
        ({**ADA, "timezone": "A/" + "b" * 63}, ["body", "timezone"]),
        ({**ADA, "course": "r" * 65}, ["body", "course"]),
        ({**ADA, "confirmed": "perhaps"}, ["body", "confirmed"]),
        ({**ADA, "confirmed": 1}, ["body", "confirmed"]),
        ({**ADA, "admin": True}, ["body", "admin"]),
        ({"course": "runners"}, ["body", "email"]),
        (["ada@example.com"], ["body"]),
    ]:
        response = api.client.post("/api/v1/subscribers", json=body)
        assert response.status_code == 422, (body, response.text)
        assert where in [issue["loc"] for issue in response.json()["detail"]], body
    assert rows(api.database, Subscriber) == 0


def test_malformed_json_and_other_content_types_are_422(api):
    malformed = api.client.post(
        "/api/v1/subscribers",
        content=b'{"email": "ada@example.com",',
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["type"] == "json_invalid"
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = api.client.post(
            "/api/v1/subscribers",
            content=b'{"email": "ada@example.com", "course": "runners"}',
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 422, content_type
    assert rows(api.database, Subscriber) == 0


def test_a_body_over_64_kib_is_413(api):
    response = api.client.post("/api/v1/subscribers", json={**ADA, "name": "A" * (65 * 1024)})
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]


def test_ids_out_of_range_are_422_not_a_crash(api):
    for subscriber_id in ("0", "-1", "9223372036854775808", "1e3", "one"):
        for method, path in [
            ("GET", f"/api/v1/subscribers/{subscriber_id}"),
            ("PATCH", f"/api/v1/subscribers/{subscriber_id}"),
            ("DELETE", f"/api/v1/subscribers/{subscriber_id}"),
            ("POST", f"/api/v1/subscribers/{subscriber_id}/enrollments/runners/pause"),
        ]:
            kwargs = {"json": {}} if method == "PATCH" else {}
            response = api.client.request(method, path, **kwargs)
            assert response.status_code == 422, (method, path)
            assert response.json()["detail"][0]["loc"] == ["path", "subscriber_id"]


def test_list_parameters_out_of_range_are_422(api):
    for params in [
        {"limit": 0},
        {"limit": 1001},
        {"offset": -1},
        {"offset": 2**64},
        {"course": "x" * 65},
    ]:
        for path in ("/api/v1/subscribers", "/api/v1/deliveries"):
            assert api.client.get(path, params=params).status_code == 422, (path, params)
    for path in ("/api/v1/subscribers", "/api/v1/deliveries"):
        assert api.client.get(path, params={"status": "asleep"}).status_code == 422


# -- courses and lessons ------------------------------------------------------------------------


def test_courses_are_listed_with_their_lessons_and_enrolments(api):
    api.subscribe()
    [course] = api.client.get("/api/v1/courses").json()
    assert course["slug"] == "runners"
    assert course["title"] == "Runners E-Course"
    assert course["lesson_count"] == 10
    assert course["enrollments"]["active"] == 1

    detail = api.client.get("/api/v1/courses/runners").json()
    assert detail["schedule"] == {
        "cadence_days": 7,
        "send_time": "08:00",
        "send_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "timezone": "America/Toronto",
    }
    assert detail["sender"]["email"] == "course@northside-physio.example"
    assert [lesson["number"] for lesson in detail["lessons"]] == list(range(1, 11))
    assert api.client.get("/api/v1/courses/runners/lessons").json() == detail["lessons"]


def test_a_lesson_is_found_by_number_or_key(api):
    by_number = api.client.get("/api/v1/courses/runners/lessons/3").json()
    by_key = api.client.get(f"/api/v1/courses/runners/lessons/{by_number['key']}").json()
    assert by_number == by_key
    assert by_number["number"] == 3
    assert by_number["subject"].startswith("Lesson 3")
    assert by_number["body"]
    assert "preheader" in by_number["front_matter"]


def test_a_preview_is_the_lesson_rendered_for_the_sample_reader(api):
    response = api.client.get(
        "/api/v1/courses/runners/lessons/1/preview",
        params={"name": "Grace Hopper", "email": "grace@example.com"},
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["subject"].startswith("Lesson 1")
    assert "Grace" in preview["text"]
    assert "Grace" in preview["html"]
    assert preview["html"].lstrip().lower().startswith("<!doctype html")
    bad = api.client.get("/api/v1/courses/runners/lessons/1/preview", params={"email": "nobody"})
    assert bad.status_code == 400


# -- queueing a lesson --------------------------------------------------------------------------


def test_a_queued_lesson_reaches_the_person_on_the_next_pass(api, smtpd):
    api.subscribe()
    response = api.client.post(
        "/api/v1/courses/runners/lessons/5/queue", json={"to": "ada@example.com"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"queued": 1}
    assert api.wakes == [api.clock.now()]

    assert [(o.email, o.kind, o.number, o.status) for o in api.dispatch()] == [
        ("ada@example.com", "extra", 5, "sent")
    ]
    [message] = [m.message for m in smtpd.messages]
    assert str(message["Subject"]).startswith("Lesson 5")
    assert message["To"].addresses[0].addr_spec == "ada@example.com"


def test_a_lesson_queued_for_later_for_everyone_waits_until_then(api, smtpd):
    api.subscribe()
    api.subscribe(email="bob@example.com")
    api.subscribe(email="pending@example.com", confirmed=False)
    later = api.clock.now() + timedelta(hours=2)
    response = api.client.post(
        "/api/v1/courses/runners/lessons/knees/queue",
        json={"all_active": True, "at": "2026-03-02T12:00:00-05:00"},
    )
    assert response.json() == {"queued": 2}
    pending = api.client.get("/api/v1/deliveries", params={"status": "pending"}).json()
    extras = [d for d in pending["items"] if d["kind"] == "extra"]
    assert {d["email"] for d in extras} == {"ada@example.com", "bob@example.com"}
    assert {d["due_at"] for d in extras} == {"2026-03-02T17:00:00Z"}

    assert [o.kind for o in api.dispatch()] == ["confirmation"]
    api.clock.set(later)
    assert sorted(o.email for o in api.dispatch()) == [
        "ada@example.com",
        "bob@example.com",
    ]


def test_queue_needs_exactly_one_of_to_and_all_active(api):
    api.subscribe()
    for body in ({}, {"to": "ada@example.com", "all_active": True}, {"all_active": False}):
        response = api.client.post("/api/v1/courses/runners/lessons/2/queue", json=body)
        assert response.status_code == 400, body
        assert "exactly one" in response.json()["error"]
    assert rows(api.database, Delivery) == 0


def test_queue_refuses_strangers_the_unsubscribed_and_bad_instants(api):
    ada = api.subscribe()
    queue = "/api/v1/courses/runners/lessons/2/queue"
    assert api.client.post(queue, json={"to": "who@example.com"}).status_code == 404
    assert api.client.post(queue, json={"to": "bad address"}).status_code == 400
    for at in (
        "next tuesday",
        "2026-03-09T08:00:00",  # no offset: whose 08:00?
        "2026-02-30T08:00:00Z",
        "9999-12-31T23:59:59-23:59",  # after the end of the calendar in UTC
        1772438400,
    ):
        response = api.client.post(queue, json={"to": "ada@example.com", "at": at})
        assert response.status_code == 422, at
    api.client.post(f"/api/v1/subscribers/{ada['id']}/enrollments/runners/unsubscribe")
    gone = api.client.post(queue, json={"to": "ada@example.com"})
    assert gone.status_code == 409
    assert rows(api.database, Delivery) == 0


# -- the ledger and the whole -------------------------------------------------------------------


def test_deliveries_page_newest_first_and_filter(api):
    for address in ("a@example.com", "b@example.com", "c@example.com"):
        api.subscribe(email=address, confirmed=False)
    page = api.client.get("/api/v1/deliveries", params={"limit": 2}).json()
    assert [d["email"] for d in page["items"]] == ["c@example.com", "b@example.com"]
    rest = api.client.get("/api/v1/deliveries", params={"limit": 2, "offset": 2}).json()
    assert [d["email"] for d in rest["items"]] == ["a@example.com"]
    api.dispatch()
    sent = api.client.get("/api/v1/deliveries", params={"status": "sent"}).json()
    assert len(sent["items"]) == 3
    assert all(d["kind"] == "confirmation" and d["sent_at"] for d in sent["items"])
    assert api.client.get("/api/v1/deliveries", params={"status": "failed"}).json()["items"] == []
    assert api.client.get("/api/v1/deliveries", params={"course": "yoga"}).json()["items"] == []


def test_status_counts_everything(api, smtpd):
    api.subscribe()
    api.subscribe(email="gone@example.com")
    api.subscribe(email="new@example.com", confirmed=False)
    smtpd.fail_recipient("gone@example.com", 550)
    api.clock.set(FIRST_SLOT)
    api.dispatch()

    status = api.client.get("/api/v1/status").json()
    assert status["subscribers"] == 3
    assert status["enrollments"] == {
        "pending": 1,
        "active": 2,
        "paused": 0,
        "completed": 0,
        "unsubscribed": 0,
    }
    assert status["deliveries"]["sent"] == 2
    assert status["deliveries"]["failed"] == 1
    assert status["suppressions"] == {"hard_bounce": 1}
    assert status["failed_last_day"] == 1
    assert status["recent_failures"][0]["email"] == "gone@example.com"
    assert status["next_due"] is not None
