"""An editor looks after a course in a real browser: opens Courses, a course and its report, picks
the zone of someone about to subscribe for the calendar (a zone that is not one is said beside the
field), opens a lesson as subscribers get it, sends a test to themself, and the test arrives at the
real SMTP server. Every page photographed at 375 and 1280 px (test-artifacts/screenshots/), checked
by axe-core, and never wider than a phone."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from playwright.sync_api import expect
from test_dashboard_browser import (
    serious_accessibility_problems,
    sign_in_as,
    three_runners_had_lesson_1,
)

from dripcourse.app import subscriptions
from dripcourse.domain.roles import Role

WIDTHS = (375, 1280)


def test_an_editor_reads_a_course_its_calendar_and_a_lesson_and_sends_a_test_to_themself(
    live_server, browser_page, inbox, screenshot
):
    three_runners_had_lesson_1(
        live_server, inbox, "America/Toronto", ("ed@clinic.example", Role.EDITOR)
    )
    with live_server.database.transaction() as session:  # one of them leaves after lesson 1
        subscriptions.unsubscribe(session, "runner0@example.com", datetime.now(UTC), "runners")
    page = browser_page

    sign_in_as(page, live_server.url, "ed@clinic.example")
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Courses").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Courses")
    course_row = page.get_by_role("row", name=re.compile("Runners E-Course"))
    expect(course_row).to_contain_text("10")  # lessons
    expect(course_row.get_by_role("cell").last).to_have_text("2")  # active subscribers
    screenshot(page, "1-courses", WIDTHS)
    assert serious_accessibility_problems(page) == []

    page.get_by_role("link", name="Runners E-Course").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Runners E-Course")
    report = page.locator("section", has_text="Lessons and how they did")
    first = report.get_by_role("row").nth(1)
    expect(first.get_by_role("cell").nth(0)).to_have_text("1")
    expect(first.get_by_role("cell").nth(2)).to_have_text("3")  # sent: the three runners
    expect(first.get_by_role("cell").nth(5)).to_have_text("1")  # unsubscribed right after it
    expect(report.locator("svg.chart")).to_be_visible()
    expect(report.locator("svg.chart rect.left")).to_have_count(1)
    expect(report.get_by_text("Still with the course at each lesson")).to_be_visible()
    # The calendar is in the course's zone until another is chosen.
    calendar = page.locator("section", has_text="Calendar of someone subscribing now")
    expect(calendar.get_by_role("columnheader", name="In America/Toronto")).to_be_visible()
    screenshot(page, "2-course", WIDTHS)
    assert serious_accessibility_problems(page) == []

    zone = page.get_by_label("Their time zone")
    zone.fill("Mars/Olympus_Mons")
    page.get_by_role("button", name="Show the calendar").click()
    expect(page.get_by_role("alert")).to_contain_text("Unknown time zone 'Mars/Olympus_Mons'")
    expect(zone).to_have_value("Mars/Olympus_Mons")
    expect(zone).to_have_attribute("aria-invalid", "true")
    screenshot(page, "3-course-bad-zone", WIDTHS)
    assert serious_accessibility_problems(page) == []

    zone.fill("Australia/Sydney")
    page.get_by_role("button", name="Show the calendar").click()
    expect(page).to_have_url(re.compile(r"\?zone=Australia%2FSydney$"))
    expect(calendar.get_by_role("columnheader", name="In Australia/Sydney")).to_be_visible()
    rows = calendar.get_by_role("row")
    expect(rows).to_have_count(11)
    expect(rows.nth(1).get_by_role("cell").nth(1)).to_contain_text("08:00")  # 08:00 in Sydney
    expect(rows.nth(1).get_by_role("cell").nth(2)).to_contain_text(re.compile(r"2[12]:00"))
    screenshot(page, "4-course-calendar-sydney", WIDTHS)
    assert serious_accessibility_problems(page) == []

    report.get_by_role("link", name=re.compile("^Lesson 2: ")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("^Lesson 2: "))
    email = page.frame_locator("iframe.email")
    expect(email.get_by_text("Hi Sam,").first).to_be_visible()
    expect(page.locator("pre.text")).to_contain_text("LESSON 2 OF 10")
    # The frame fits the email: our script file runs under the page's policy (no inline script).
    fitted = page.locator("iframe.email")
    expect(fitted).not_to_have_attribute("style", re.compile("^$"))
    assert fitted.evaluate("frame => frame.style.height.endsWith('px')")
    screenshot(page, "5-lesson", WIDTHS)
    assert serious_accessibility_problems(page) == []

    page.get_by_role("button", name="Send a test to me").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Sent: lesson 2 (ankles) went to ed@clinic.example"
    )
    message = inbox.wait_for("ed@clinic.example", "[Test] Lesson 2: ")
    assert "Hi Sam," in inbox.text_of(message)
    screenshot(page, "6-lesson-test-sent", WIDTHS)
    assert serious_accessibility_problems(page) == []
