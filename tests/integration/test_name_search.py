"""A search by the start of a name finds people however they came in (signed up one by one,
imported in bulk, renamed), in any case, with their accents, and nobody else."""

from __future__ import annotations

import io

import pytest

from dripcourse.app import overview, people, roster, subscriptions
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.store.models import Subscriber

pytestmark = pytest.mark.both_databases


def found(database, search: str) -> list[str]:
    with database.read() as session:
        page = overview.subscriber_page(session, search=search)
    return [person.email for person, _ in page.rows]


def test_names_are_found_by_their_start_however_the_people_came_in(database, courses_dir, clock):
    csv = "email,name\nsoren@example.com,Søren Østergaard\nzoe@example.com,ZOË Brontë\n"
    with database.transaction() as session:
        for source in load_sources(courses_dir):
            sync_course(session, source, clock.now())
        subscriptions.subscribe(
            session,
            email="emile@example.com",
            course_slug="runners",
            name="Émile Zola",
            timezone="Europe/Paris",
            confirmed=True,
            now=clock.now(),
        )
        report = roster.import_subscribers(
            session,
            roster.read_rows(io.StringIO(csv)),
            "runners",
            clock.now(),
            confirmed=True,
        )
    assert not report.rejected

    assert found(database, "émi") == ["emile@example.com"]
    assert found(database, "ÉMILE Z") == ["emile@example.com"]
    assert found(database, "emi") == ["emile@example.com"]  # the address, not the name
    assert found(database, "søren ø") == ["soren@example.com"]
    assert found(database, "zoë") == ["zoe@example.com"]
    assert found(database, "zoe") == ["zoe@example.com"]  # the address again
    assert found(database, "zoë b") == ["zoe@example.com"]
    assert found(database, "zo%") == [] and found(database, "_oë") == []

    with database.transaction() as session:
        emile = session.query(Subscriber).filter_by(email="emile@example.com").one()
        people.update_subscriber(session, emile.id, clock.now(), name="Ada Lovelace", actor="test")
    assert found(database, "émi") == []
    assert found(database, "ada l") == ["emile@example.com"]
