"""A visitor's story in a real browser: sign up, confirm, get lesson 1, unsubscribe from it.

Chromium (Debian's) driven by Playwright against the live server; the mail goes through a real SMTP
server and the weeks pass through dispatcher passes with a fixed clock. Every page is photographed
at phone and desktop width (test-artifacts/screenshots/).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

VISITOR = "ada@example.com"


def test_a_visitor_signs_up_confirms_reads_lesson_1_and_unsubscribes(
    live_server, browser_page, inbox, screenshot
):
    page = browser_page

    # The sign-up form, the visitor's own time zone (Berlin, from the browser) already chosen.
    page.goto(f"{live_server.url}/subscribe?course=runners")
    expect(page).to_have_title("Sign up: Runners E-Course")
    expect(page.get_by_role("heading", level=1)).to_have_text("Runners E-Course")
    expect(page.get_by_label("Email address")).to_be_empty()
    expect(page.get_by_label("First name")).to_be_empty()
    expect(page.get_by_label("Your time zone")).to_have_value("Europe/Berlin")
    screenshot(page, "1-subscribe")

    page.get_by_label("Email address").fill(VISITOR)
    page.get_by_label("First name").fill("Ada")
    page.get_by_role("button", name="Sign me up").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Almost there")
    expect(page.get_by_text("Check your inbox")).to_be_visible()
    screenshot(page, "2-check-your-inbox")

    # The confirmation email arrives within seconds: the sign-up woke the scheduler.
    confirmation = inbox.wait_for(VISITOR, "onfirm", timeout=10)
    assert "Hi Ada," in inbox.text_of(confirmation)
    page.goto(inbox.link_in(confirmation, "/confirm/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("You're in")
    expect(page.get_by_text("Thank you for confirming.")).to_be_visible()
    screenshot(page, "3-confirmed")
    assert live_server.enrollment_status(VISITOR) == "active"

    # A week later lesson 1 has arrived, greeting Ada by name.
    a_week_later = datetime.now(UTC) + timedelta(days=7)
    live_server.dispatch_as_of(a_week_later)
    lesson = inbox.wait_for(VISITOR, "Lesson 1: Feet first")
    assert "Hi Ada," in inbox.text_of(lesson) and "Hi Ada," in inbox.html_of(lesson)
    page.goto(inbox.link_in(lesson, "/view/"))
    expect(page.get_by_text("Hi Ada,")).to_be_visible()
    screenshot(page, "4-lesson-online")

    # The List-Unsubscribe link shows a choice and a button, and changes nothing by itself.
    page.goto(inbox.unsubscribe_url(lesson))
    expect(page.get_by_role("heading", level=1)).to_have_text("Unsubscribe")
    expect(page.get_by_role("radio", name="Only Runners E-Course")).to_be_checked()
    expect(page.get_by_role("radio", name="All email from Northside Physio")).not_to_be_checked()
    expect(page.get_by_role("button")).to_have_count(1)
    screenshot(page, "5-unsubscribe")
    assert live_server.enrollment_status(VISITOR) == "active"

    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    expect(page.get_by_text("You will get no more lessons of Runners E-Course.")).to_be_visible()
    screenshot(page, "6-unsubscribed")
    assert live_server.enrollment_status(VISITOR) == "unsubscribed"

    # Weeks later, nothing more arrives.
    received = len(inbox.of(VISITOR))
    later = live_server.dispatch_as_of(a_week_later + timedelta(weeks=4))
    assert later.count("sent") == 0
    assert len(inbox.of(VISITOR)) == received == 2


def test_a_mistyped_address_is_explained_and_the_typed_values_stay(
    live_server, browser_page, screenshot
):
    page = browser_page
    page.goto(f"{live_server.url}/subscribe?course=runners")
    # "ada@example" passes the browser's own check of type=email, so the server has to catch it.
    page.get_by_label("Email address").fill("ada@example")
    page.get_by_label("First name").fill("Ada")

    with page.expect_response(re.compile(r"/subscribe$")) as answer:
        page.get_by_role("button", name="Sign me up").click()

    assert answer.value.status == 400
    expect(page.get_by_role("alert")).to_contain_text("Not a valid email address: ")
    expect(page.get_by_label("Email address")).to_have_value("ada@example")
    expect(page.get_by_label("First name")).to_have_value("Ada")
    expect(page.get_by_label("Your time zone")).to_have_value("Europe/Berlin")
    screenshot(page, "form-error")
    assert live_server.enrollment_status("ada@example") is None


def test_a_forged_confirm_link_gets_a_friendly_page(live_server, browser_page, screenshot):
    page = browser_page

    answer = page.goto(f"{live_server.url}/confirm/eyJlIjoxfQ.forged.signature")

    assert answer is not None and answer.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("This did not work")
    expect(page.get_by_text("This link is not valid.")).to_be_visible()
    screenshot(page, "bad-link")
