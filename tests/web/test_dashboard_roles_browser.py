"""The dashboard in Chromium for the people who may not change things, and for those who try
anyway: a viewer sees every page and no action works, not even sent by hand; a form without its
token does nothing; ten wrong passwords slow the next sign-in down; a signed-out cookie opens
nothing. And an editor's heavier actions: a new time zone, and forgetting a person."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select
from test_dashboard_browser import (
    PASSWORD,
    serious_accessibility_problems,
    sign_in_as,
    three_runners_had_lesson_1,
)

from dripcourse.app import audit
from dripcourse.domain.roles import Role
from dripcourse.store.models import Subscriber

WIDTHS = (375, 1280)


def form_token(page: Page) -> str:
    return page.locator('input[name="csrf"]').first.get_attribute("value") or ""


def test_a_viewer_reads_every_page_and_no_change_goes_through(
    live_server, browser_page, inbox, screenshot
):
    three_runners_had_lesson_1(
        live_server, inbox, "Asia/Kolkata", ("vi@clinic.example", Role.VIEWER)
    )
    page = browser_page
    sign_in_as(page, live_server.url, "vi@clinic.example")
    expect(page.get_by_role("link", name="Operators")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)
    page.get_by_role("link", name="Subscribers").click()
    page.get_by_role("link", name="runner0@example.com").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("runner0@example.com")
    for label in ("Pause", "Resume", "Queue", "Save"):
        expect(page.get_by_role("button", name=label, exact=True)).to_have_count(0)
    expect(page.get_by_text("Forget this person")).to_have_count(0)
    screenshot(page, "viewer-subscriber", WIDTHS)
    assert serious_accessibility_problems(page) == []

    person = re.search(r"/admin/subscribers/(\d+)$", page.url).group(1)
    token = form_token(page)  # the sign-out form's: a valid token of this very session
    base = f"{live_server.url}/admin/subscribers/{person}"
    tries = {
        f"{base}/enrollments/runners/pause": {},
        f"{base}/enrollments/runners/unsubscribe": {},
        f"{base}/enrollments/runners/queue": {"lesson": "2"},
        f"{base}/details": {"name": "Changed", "timezone": "UTC"},
        f"{base}/forget": {"confirm": "runner0@example.com"},
        f"{live_server.url}/admin/operators": {"email": "me@clinic.example", "role": "admin"},
    }
    for url, fields in tries.items():
        answer = page.request.post(url, form={**fields, "csrf": token}, max_redirects=0)
        assert answer.status == 403, url
    assert page.request.get(f"{live_server.url}/admin/operators").status == 403
    assert page.request.get(f"{live_server.url}/admin/audit").status == 403
    assert live_server.enrollment_status("runner0@example.com") == "active"
    with live_server.database.read() as session:
        assert session.scalar(select(Subscriber.name).where(Subscriber.email.like("runner0%"))) == (
            "Runner 0"
        )
        assert [e.action for e in audit.entries(session)] == ["operator added"]


def test_without_its_token_a_form_does_nothing_and_signing_out_ends_the_session(
    live_server, browser_page, inbox
):
    three_runners_had_lesson_1(live_server, inbox, "UTC", ("ed@clinic.example", Role.EDITOR))
    page = browser_page
    sign_in_as(page, live_server.url, "ed@clinic.example")
    page.get_by_role("link", name="Subscribers").click()
    page.get_by_role("link", name="runner2@example.com").click()
    pause = f"{page.url}/enrollments/runners/pause"
    for fields in ({}, {"csrf": "0" * 64}, {"csrf": form_token(page)[:-1] + "x"}):
        assert page.request.post(pause, form=fields, max_redirects=0).status == 403
    assert live_server.enrollment_status("runner2@example.com") == "active"

    cookies = page.context.cookies()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to dripcourse")
    page.context.add_cookies(cookies)  # the old cookie, put back as a thief would
    page.goto(f"{live_server.url}/admin/")
    expect(page).to_have_url(f"{live_server.url}/admin/login")


def test_ten_wrong_passwords_and_even_the_right_one_must_wait(
    live_server, browser_page, inbox, screenshot
):
    three_runners_had_lesson_1(live_server, inbox, "UTC", ("ed@clinic.example", Role.EDITOR))
    page = browser_page
    page.goto(f"{live_server.url}/admin/login")
    for attempt in range(10):
        page.get_by_label("Email").fill("ed@clinic.example")
        page.get_by_label("Password").fill(f"guess number {attempt}")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("That email and password do not match.")
    page.get_by_label("Email").fill("ed@clinic.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Too many sign-in attempts. Wait a minute and try again."
    )
    screenshot(page, "slowed-down", WIDTHS)
    assert serious_accessibility_problems(page) == []


def test_an_editor_moves_a_person_to_another_zone_and_forgets_another(
    live_server, browser_page, inbox, screenshot
):
    three_runners_had_lesson_1(
        live_server, inbox, "Europe/Berlin", ("ed@clinic.example", Role.EDITOR)
    )
    page = browser_page
    sign_in_as(page, live_server.url, "ed@clinic.example")
    page.get_by_role("link", name="Subscribers").click()
    page.get_by_role("link", name="runner1@example.com").click()
    runners = page.locator("section", has_text="Still to come").first
    before = runners.get_by_role("row").nth(1).inner_text()

    page.get_by_text("Change name or time zone").click()
    page.get_by_label("Time zone").fill("Mars/Olympus_Mons")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#timezone-error")).to_contain_text("unknown time zone")
    screenshot(page, "bad-zone", WIDTHS)
    assert serious_accessibility_problems(page) == []
    page.get_by_label("Time zone").fill("America/Vancouver")
    page.get_by_label("Name").fill("Runner One")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("America/Vancouver", exact=False).first).to_be_visible()
    after = page.locator("section", has_text="Still to come").first.get_by_role("row").nth(1)
    # Same send time, now on Vancouver's clock: the lesson moved in UTC.
    expect(after).not_to_have_text(before)
    changes = page.locator("section", has_text="Changes and bounces")
    expect(changes.get_by_role("row").nth(1)).to_contain_text(
        "details changed (name; time zone Europe/Berlin -> America/Vancouver)"
    )

    page.get_by_role("link", name="Subscribers").click()
    page.get_by_role("link", name="runner2@example.com").click()
    page.get_by_label("to confirm").fill("runner1@example.com")
    page.get_by_role("button", name="Forget runner2@example.com").click()
    expect(page.locator("#confirm-error")).to_contain_text("type runner2@example.com exactly")
    screenshot(page, "forget-refused", WIDTHS)
    assert serious_accessibility_problems(page) == []
    page.get_by_label("to confirm").fill("runner2@example.com")
    page.get_by_role("button", name="Forget runner2@example.com").click()
    expect(page.get_by_role("status")).to_contain_text("The person was forgotten")
    expect(page.get_by_role("link", name="runner2@example.com")).to_have_count(0)
    screenshot(page, "forgotten", WIDTHS)
