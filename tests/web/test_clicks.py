"""Click tracking as readers and attackers meet it: a course that turned it on sends lessons whose web
links lead through the live server, which counts each person's first click on each link and sends
them on to the link's target, and nowhere else."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from sqlalchemy import select

from dripcourse.app import subscriptions
from dripcourse.app.report import course_report
from dripcourse.store.models import Click

ADA = "ada@example.com"
BOOKING = "https://northside-physio.example/book"  # the course's call to action
FLAT_FEET = "https://northside-physio.example/blog/flat-feet-and-running"  # a related article


@pytest.fixture
def untracked() -> None:
    """Asked for by a test of a course that keeps the default: no click tracking."""


@pytest.fixture
def courses_dir(courses_dir: Path, request: pytest.FixtureRequest) -> Path:
    """The example course with `[tracking] clicks = true`, unless the test asks for `untracked`."""
    if "untracked" not in request.fixturenames:
        toml = courses_dir / "runners" / "course.toml"
        toml.write_text(toml.read_text() + "\n[tracking]\nclicks = true\n")
    return courses_dir


def lesson_1_for(live_server, inbox, email=ADA):
    now = datetime.now(UTC)
    with live_server.database.transaction() as session:
        subscriptions.subscribe(
            session,
            email=email,
            course_slug="runners",
            name="Ada Lovelace",
            timezone="Europe/Berlin",
            confirmed=True,
            now=now,
        )
    live_server.dispatch_as_of(now + timedelta(days=7))
    return inbox.wait_for(email, "Lesson 1")


def links_of(page: str) -> list[str]:
    """Every href of the HTML part, as a mail client follows it."""
    return [html.unescape(href) for href in re.findall(r'<a\s[^>]*?href="([^"]*)"', page)]


def tracked_link_to(live_server, inbox, message, target: str) -> str:
    """The tracked link of `message` whose signed target is `target`."""
    found = [
        link
        for link in links_of(inbox.html_of(message))
        if link.startswith(f"{live_server.url}/c/")
        and parse_qs(urlsplit(link).query).get("u") == [target]
    ]
    assert found, f"no tracked link to {target}"
    return found[0]


def clicks_recorded(live_server) -> list[tuple[int, str]]:
    with live_server.database.read() as session:
        return [(row.enrollment_id, row.url) for row in session.scalars(select(Click))]


def shown_to_the_user(response) -> str:
    body = response.text.split("<body>", 1)[1]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def test_a_tracked_link_leads_to_its_target_and_counts_once_per_person(live_server, inbox):
    lesson = lesson_1_for(live_server, inbox)
    link = tracked_link_to(live_server, inbox, lesson, BOOKING)

    first = httpx.get(link)
    again = httpx.get(link)
    other = httpx.get(tracked_link_to(live_server, inbox, lesson, FLAT_FEET))

    for answer, target in ((first, BOOKING), (again, BOOKING), (other, FLAT_FEET)):
        assert answer.status_code == 302
        assert answer.headers["location"] == target
    assert sorted(url for _, url in clicks_recorded(live_server)) == sorted([BOOKING, FLAT_FEET])
    with live_server.database.read() as session:
        [lesson_1] = [row for row in course_report(session, "runners") if row.lesson == 1]
    assert lesson_1.clicked == 1  # one person, however many links and clicks


def test_a_target_with_a_query_and_fragment_arrives_exactly(live_server, inbox):
    """The query parser must hand back exactly the text that was signed: `&`, `+`, `#`, `%`."""
    toml = live_server.settings.courses_dir / "runners" / "course.toml"
    target = "https://northside-physio.example/book?a=1&b=x+y&c=%C3%A9#slot"
    toml.write_text(toml.read_text().replace(BOOKING, target))
    from dripcourse.courses.catalog import load_sources, sync_course

    with live_server.database.transaction() as session:
        for source in load_sources(live_server.settings.courses_dir):
            sync_course(session, source, datetime.now(UTC))
    lesson = lesson_1_for(live_server, inbox)

    answer = httpx.get(tracked_link_to(live_server, inbox, lesson, target))

    assert answer.status_code == 302
    assert answer.headers["location"] == target


def test_a_changed_token_is_refused_with_an_explanation_and_no_redirect(live_server, inbox):
    lesson = lesson_1_for(live_server, inbox)
    link = tracked_link_to(live_server, inbox, lesson, BOOKING)
    path, query = link.split("?", 1)
    last = path[-1]
    changed = [
        f"{path[:-1]}{'A' if last != 'A' else 'B'}?{query}",  # a letter of the signature
        path.replace("/c/d", "/c/d9", 1) + "?" + query,  # another delivery
        f"{path}?u=",  # the target left out
    ]

    for url in changed:
        answer = httpx.get(url)
        assert answer.status_code == 400, url
        assert "location" not in answer.headers
        assert "This link is not valid: it was changed or cut short" in shown_to_the_user(answer)
    assert clicks_recorded(live_server) == []


def test_an_attackers_target_cannot_borrow_a_valid_signature(live_server, inbox):
    """No open redirect: the signature covers the target, so a real token with another `u` (or
    with a second `u` beside the real one) leads nowhere."""
    lesson = lesson_1_for(live_server, inbox)
    link = tracked_link_to(live_server, inbox, lesson, BOOKING)
    path = link.split("?", 1)[0]
    evil = "https://evil.example/login"
    attempts = [
        f"{path}?u={quote(evil, safe=':/')}",
        f"{path}?u={quote(BOOKING + '.evil.example', safe=':/')}",
        f"{path}?u={quote(evil, safe=':/')}&u={quote(BOOKING, safe=':/')}",
        f"{path}?u={quote(BOOKING, safe=':/')}&u={quote(evil, safe=':/')}",
    ]

    for url in attempts:
        answer = httpx.get(url)
        assert "evil.example" not in answer.headers.get("location", ""), url
        if answer.status_code == 302:  # only ever to the signed target
            assert answer.headers["location"] == BOOKING
        else:
            assert answer.status_code == 400
    assert {url for _, url in clicks_recorded(live_server)} <= {BOOKING}


def test_unsubscribe_view_online_and_mailto_links_and_the_text_part_are_left_as_written(
    live_server, inbox
):
    lesson = lesson_1_for(live_server, inbox)
    links = links_of(inbox.html_of(lesson))
    text = inbox.text_of(lesson)

    assert any(link.startswith(f"{live_server.url}/unsubscribe/") for link in links)
    assert any(link.startswith(f"{live_server.url}/view/") for link in links)
    assert "mailto:hello@northside-physio.example" in links
    web = [link for link in links if link.startswith("http")]
    own = ("/unsubscribe/", "/view/", "/c/")
    assert all(any(f"{live_server.url}{path}" in link for path in own) for link in web)
    # The text part shows where each link goes, untracked.
    assert BOOKING in text and FLAT_FEET in text and "/c/" not in text
    # And no tracking pixel: the only images from us are the course's own, the same files for
    # everyone (`/media/<course>/<content hash>-<name>`), nothing that names the person.
    sources = re.findall(r'<img[^>]*\bsrc="([^"]*)"', inbox.html_of(lesson))
    ours = [src for src in sources if src.startswith(live_server.url)]
    assert ours, "the logo comes from our /media"
    media = re.compile(re.escape(live_server.url) + r"/media/runners/[0-9a-f]{12}-[a-z0-9.-]+")
    assert all(media.fullmatch(src) for src in ours), ours


def test_following_the_unsubscribe_link_of_a_tracked_lesson_still_works(live_server, inbox):
    lesson = lesson_1_for(live_server, inbox)
    [unsubscribe] = [
        link
        for link in links_of(inbox.html_of(lesson))
        if link.startswith(f"{live_server.url}/unsubscribe/")
    ]
    answer = httpx.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    assert live_server.enrollment_status(ADA) == "unsubscribed"


def test_without_tracking_links_are_untouched_and_the_report_shows_no_clicks(
    untracked, live_server, inbox
):
    lesson = lesson_1_for(live_server, inbox)
    links = links_of(inbox.html_of(lesson))

    assert BOOKING in links and FLAT_FEET in links
    assert not [link for link in links if "/c/" in link]
    with live_server.database.read() as session:
        report = course_report(session, "runners")
    assert [row.clicked for row in report] == [None] * 10
