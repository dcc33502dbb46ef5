"""The webhook outbox against a real database (SQLite, and PostgreSQL when its URL is given) and a
real HTTP receiver on loopback: events are written in the transaction of their change, delivered
signed (verified with `standardwebhooks`), in order per person, and still all delivered to an
endpoint that was down for a day."""

from __future__ import annotations

import socket
import threading
from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from webhook_receiver import Receiver, verify

from dripcourse.app import people, subscriptions, webhooks
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.domain.webhooks import MAX_REASON, Event, EventType
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.sending.webhooks import NOT_TRIED, deliver_due
from dripcourse.store.db import Database
from dripcourse.store.outbox import emit
from dripcourse.store.webhook_models import WebhookMessage, WebhookStatus

# The outbox's transaction and the down-for-a-day story run on both databases; the rest on SQLite.
both = pytest.mark.both_databases


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def add_endpoint(database: Database, url: str, clock: FixedClock, events=()) -> str:
    with database.transaction() as session:
        return webhooks.add_endpoint(session, url, list(events), clock.now()).secret


def subscribe(database: Database, clock: FixedClock, email: str) -> None:
    with database.transaction() as session:
        subscriptions.subscribe(
            session, email=email, course_slug="runners", confirmed=True, now=clock.now()
        )


def stored(database: Database) -> list[WebhookMessage]:
    with database.read() as session:
        return list(session.scalars(select(WebhookMessage).order_by(WebhookMessage.id)))


def run_pass(database: Database, settings: Settings, clock: FixedClock) -> None:
    Dispatcher(database, settings, load_backend(settings.email_backend), clock).run_pass()


def test_without_an_endpoint_nothing_is_written(synced, settings, clock):
    subscribe(synced, clock, "ada@example.com")
    clock.set(clock.now() + timedelta(days=2))
    run_pass(synced, settings, clock)
    assert stored(synced) == []


@both
def test_a_rolled_back_change_writes_no_event(synced, clock, receiver):
    add_endpoint(synced, receiver.url, clock)
    with pytest.raises(RuntimeError), synced.transaction() as session:
        subscriptions.subscribe(
            session, email="ada@example.com", course_slug="runners", confirmed=True, now=clock.now()
        )
        assert session.scalar(select(func.count()).select_from(WebhookMessage)) == 2
        raise RuntimeError("the change fails after its events were written")
    assert stored(synced) == []
    subscribe(synced, clock, "ada@example.com")
    assert [m.event_type for m in stored(synced)] == ["subscriber.created", "subscriber.confirmed"]


def test_an_endpoint_gets_only_the_events_it_asked_for(synced, clock, receiver):
    add_endpoint(synced, receiver.url, clock, events=["subscriber.unsubscribed"])
    subscribe(synced, clock, "ada@example.com")
    with synced.transaction() as session:
        subscriptions.unsubscribe(session, "ada@example.com", clock.now())
    assert [m.event_type for m in stored(synced)] == ["subscriber.unsubscribed"]


@both
def test_down_for_a_day_then_every_event_arrives_once_in_order(synced, settings, clock, receiver):
    secret = add_endpoint(synced, receiver.url, clock)
    for email in ("ada@example.com", "bruno@example.com"):
        subscribe(synced, clock, email)
    with synced.transaction() as session:  # an event of nobody in particular
        emit(
            session, [Event(EventType.BOUNCE_RECEIVED, None, {"note": "independent"})], clock.now()
        )
    receiver.down = True
    start = clock.now()
    # Passes over a day (lessons go out meanwhile, adding lesson.sent events), the receiver
    # answering 503 with a long hostile body to every attempt.
    for hours in (0, 0.01, 0.2, 1, 3, 8, 14, 20, 24):
        clock.set(start + timedelta(hours=hours))
        run_pass(synced, settings, clock)
    assert receiver.requests and not receiver.accepted()
    waiting = stored(synced)
    assert {m.status for m in waiting} == {WebhookStatus.PENDING}
    assert all(m.last_error and len(m.last_error) <= MAX_REASON for m in waiting if m.attempts)
    assert all(m.last_error is None or "\x1b" not in m.last_error for m in waiting)
    # Each person's later events were held back behind their first: only heads were tried.
    tried = {m.message_id for m in waiting if m.attempts}
    assert len(tried) == 3  # Ada's first, Bruno's first, the independent one
    with synced.read() as session:
        assert len(webhooks.recent_failures(session)) == 3

    receiver.down = False
    for hours in (26, 31):  # the seventh attempt, at 20 h, set the eighth 10 h later
        clock.set(start + timedelta(hours=hours))
        run_pass(synced, settings, clock)

    final = stored(synced)
    assert {m.status for m in final} == {WebhookStatus.DELIVERED}
    accepted = receiver.accepted()
    payloads = [verify(secret, each, clock.now()) for each in accepted]
    ids = [each.headers["webhook-id"] for each in accepted]
    assert sorted(ids) == sorted(m.message_id for m in final)  # each once, none missing
    by_person: dict[object, list[str]] = defaultdict(list)
    for payload, each in zip(payloads, accepted, strict=True):
        by_person[payload["data"].get("subscriber_id")].append(each.headers["webhook-id"])
    for person, got in by_person.items():
        if person is not None:
            assert got == [m.message_id for m in final if m.subscriber_id == person]
    kinds = [p["type"] for p in payloads]
    assert kinds.count("subscriber.created") == 2 and "lesson.sent" in kinds
    # The same webhook-id on every attempt: the first failed ones and the one that succeeded.
    first = next(m for m in final if m.subscriber_id is not None)
    attempts = [r for r in receiver.requests if r.headers["webhook-id"] == first.message_id]
    assert len(attempts) == first.attempts > 1
    assert len({r.body for r in attempts}) == 1


def test_forgetting_erases_the_address_from_stored_events(synced, clock, receiver):
    add_endpoint(synced, receiver.url, clock)
    subscribe(synced, clock, "ada@example.com")
    with synced.transaction() as session:
        people.forget(session, "ada@example.com", clock.now(), actor="test")
    messages = stored(synced)
    assert [m.event_type for m in messages][-1] == "subscriber.forgotten"
    assert all("ada@example.com" not in m.body for m in messages)
    assert all(m.subscriber_id == messages[0].subscriber_id for m in messages)


def test_a_redirect_is_a_failure_and_is_not_followed(synced, clock, receiver):
    add_endpoint(synced, receiver.url + "/redirect", clock)
    subscribe(synced, clock, "ada@example.com")
    report = deliver_due(synced, clock, "worker")
    assert report.retrying == 1 and report.delivered == 0  # the second event waits behind
    assert receiver.accepted() == []  # /hook, where it pointed, was never posted to
    first = stored(synced)[0]
    assert first.status == WebhookStatus.PENDING and first.last_error == "HTTP 307"


@pytest.mark.postgres
def test_two_workers_never_send_one_attempt_twice(synced, database_url, clock, receiver):
    secret = add_endpoint(synced, receiver.url, clock)
    with synced.transaction() as session:
        events = [
            Event(EventType.LESSON_SENT, person % 7 if person % 5 else None, {"n": person})
            for person in range(120)
        ]
        emit(session, events, clock.now())
    other = Database(database_url)
    start = threading.Barrier(2)
    reports = []

    def work(database: Database, name: str) -> None:
        start.wait()
        reports.append(deliver_due(database, clock, name, limit=7))

    threads = [
        threading.Thread(target=work, args=(synced, "worker-a")),
        threading.Thread(target=work, args=(other, "worker-b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.dispose()
    ids = [each.headers["webhook-id"] for each in receiver.accepted()]
    assert len(ids) == len(set(ids)) == 120
    assert sum(report.delivered for report in reports) == 120
    for each in receiver.accepted():
        verify(secret, each, clock.now())
    sent_order: dict[object, list[int]] = defaultdict(list)
    for each in receiver.accepted():
        payload = verify(secret, each, clock.now())
        sent_order[payload["data"].get("subscriber_id")].append(payload["data"]["n"])
    # In order per person, across both workers (the receiver records in arrival order).
    for person, numbers in sent_order.items():
        if person is not None:
            assert numbers == sorted(numbers)


def test_an_endpoint_that_gives_no_answer_costs_one_try_per_batch(synced, clock):
    """A refused connection (nothing listens on the port): the first message's attempt fails,
    the others of that endpoint in the batch are not tried but wait on the same schedule."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    add_endpoint(synced, url, clock)
    with synced.transaction() as session:
        emit(
            session,
            [Event(EventType.BOUNCE_RECEIVED, None, {"n": n}) for n in range(3)],
            clock.now(),
        )
    report = deliver_due(synced, clock, "w1")
    assert (report.delivered, report.retrying, report.failed) == (0, 3, 0)
    errors = [m.last_error for m in stored(synced)]
    assert errors[0] == "no answer: ConnectError"
    assert errors[1:] == [NOT_TRIED, NOT_TRIED]
    assert all(m.status == WebhookStatus.PENDING and m.attempts == 1 for m in stored(synced))
