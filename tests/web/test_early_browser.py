"""The early-lesson page in Chromium, as a reader meets it: the link in lesson 1 that arrived
through the live server's SMTP, the page with its button (375 and 800 px, no sideways scroll),
and the answer after pressing it, with lesson 2 arriving from the woken scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect
from strength_courses import write_strength_courses

from dripcourse.app import subscriptions
from dripcourse.courses.catalog import load_sources, sync_course


def test_a_reader_asks_for_the_next_lesson_early(
    live_server, courses_dir, browser_page, inbox, screenshot
):
    write_strength_courses(courses_dir)
    # Three days ago: the live server runs on the real clock, so lesson 1 went out in the past
    # and lesson 2 is owed in the days to come.
    sign_up = datetime.now(UTC) - timedelta(days=3)
    with live_server.database.transaction() as session:
        for source in load_sources(courses_dir):
            sync_course(session, source, sign_up)
        subscriptions.subscribe(
            session,
            email="ada@example.com",
            course_slug="strength-phase-1",
            name="Ada Lovelace",
            timezone="America/Toronto",
            confirmed=True,
            now=sign_up,
        )
    assert live_server.dispatch_as_of(sign_up + timedelta(hours=25)).count("sent") == 1
    lesson_1 = inbox.wait_for("ada@example.com", "Phase 1, lesson 1")
    link = inbox.link_in(lesson_1, "/early/")

    page = browser_page
    page.goto(link)
    expect(page.get_by_role("heading")).to_have_text("Can't wait for the next lesson?")
    screenshot(page, "early-page")
    assert len(inbox.of("ada@example.com")) == 1, "opening the page sends nothing"

    page.get_by_role("button", name="Send me the next lesson now").click()
    expect(page.get_by_role("heading")).to_have_text("It's on its way")
    assert "“The box squat” is being sent to you now" in page.content()
    screenshot(page, "early-answer")
    inbox.wait_for("ada@example.com", "Phase 1, lesson 2")

    page.go_back()
    page.get_by_role("button", name="Send me the next lesson now").click()
    expect(page.get_by_role("heading")).to_have_text("Already sent")
    assert "has already been sent to you" in page.content()
    screenshot(page, "early-again")
    assert [str(m["Subject"]) for m in inbox.of("ada@example.com")] == [
        "Phase 1, lesson 1: The glute bridge",
        "Phase 1, lesson 2: The box squat",
    ]
