"""An operator's first visit to the dashboard in a real browser: sign in, read the overview after a
lesson went out, sign out. Photographed at 375 and 1280 px (test-artifacts/screenshots/); a phone
never scrolls sideways."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from dripcourse.app import operators, subscriptions
from dripcourse.domain.roles import Role

PASSWORD = "correct horse battery"
AXE = Axe()


def serious_accessibility_problems(page: Page) -> list[str]:
    """What axe-core (bundled by axe-playwright-python) finds of serious or critical impact."""
    found = AXE.run(page).response["violations"]
    return [f"{v['id']}: {v['help']}" for v in found if v["impact"] in ("serious", "critical")]


def three_runners_had_lesson_1(live_server, inbox, zone: str, *accounts: tuple[str, Role]) -> None:
    """Operators with these roles, and three runners in `zone` who got lesson 1 a moment ago."""
    now = datetime.now(UTC)
    with live_server.database.transaction() as session:
        for email, role in accounts:
            operators.add_operator(session, email, role, PASSWORD, now, "test set-up")
        for number in range(3):
            subscriptions.subscribe(
                session,
                email=f"runner{number}@example.com",
                course_slug="runners",
                name=f"Runner {number}",
                timezone=zone,
                confirmed=True,
                now=now - timedelta(days=7),
            )
    live_server.dispatch_as_of(now)
    inbox.wait_for("runner2@example.com", "Lesson 1")


def test_an_operator_signs_in_reads_the_overview_and_signs_out(
    live_server, browser_page, inbox, screenshot
):
    three_runners_had_lesson_1(
        live_server, inbox, "Europe/Berlin", ("ada@clinic.example", Role.EDITOR)
    )
    now = datetime.now(UTC)
    page = browser_page
    widths = (375, 800, 1280)  # a phone, a small laptop, a desk

    page.goto(f"{live_server.url}/admin/")
    expect(page).to_have_url(f"{live_server.url}/admin/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to dripcourse")
    screenshot(page, "1-sign-in", widths)
    assert serious_accessibility_problems(page) == []

    page.get_by_label("Email").fill("ada@clinic.example")
    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That email and password do not match.")
    expect(page.get_by_label("Email")).to_have_value("ada@clinic.example")
    screenshot(page, "2-wrong-password", widths)
    assert serious_accessibility_problems(page) == []

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    expect(page.get_by_text("ada@clinic.example · editor")).to_be_visible()
    active = page.locator(".card", has_text="active subscribers").locator(".figure")
    expect(active).to_have_text("3")
    sent = page.locator(".card", has_text="sent in the last 7 days").locator(".figure")
    expect(sent).to_have_text("3")
    # The chart's numbers, for screen readers and the curious: today's row says 3.
    page.get_by_text("The numbers").first.click()
    today = page.get_by_role("row", name=f"{now.date().isoformat()} 3")
    expect(today.first).to_be_visible()
    screenshot(page, "3-overview", widths)
    assert serious_accessibility_problems(page) == []

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to dripcourse")
    page.goto(f"{live_server.url}/admin/")
    expect(page).to_have_url(f"{live_server.url}/admin/login")


def sign_in_as(page: Page, url: str, email: str) -> None:
    page.goto(f"{url}/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")


def test_an_editor_finds_a_subscriber_pauses_and_resumes_them_and_the_admin_sees_it(
    live_server, browser_page, inbox, screenshot
):
    three_runners_had_lesson_1(
        live_server, inbox, "America/Toronto", ("ada@clinic.example", Role.ADMIN)
    )
    page = browser_page
    widths = (375, 800, 1280)

    # The admin invites the editor, who chooses a password from the emailed link.
    sign_in_as(page, live_server.url, "ada@clinic.example")
    page.get_by_role("link", name="Operators").click()
    page.get_by_label("Email").fill("ed@clinic.example")
    page.get_by_label("Role", exact=True).select_option("editor")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_role("status")).to_contain_text("Invited ed@clinic.example as editor")
    screenshot(page, "0-operators", widths)
    assert serious_accessibility_problems(page) == []
    page.get_by_role("button", name="Sign out").click()
    invitation = inbox.wait_for("ed@clinic.example", "Your dripcourse dashboard account")
    link = re.search(r"http://\S+/admin/invitation\?token=\S+", inbox.text_of(invitation))
    page.goto(link.group(0))
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose your password")
    page.locator("#password").fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD + "?")
    page.get_by_role("button", name="Set my password").click()
    expect(page.locator("#repeat-error")).to_have_text("The two passwords are not the same.")
    screenshot(page, "0-choose-password", widths)
    assert serious_accessibility_problems(page) == []
    page.locator("#password").fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD)
    page.get_by_role("button", name="Set my password").click()
    expect(page.get_by_role("status")).to_have_text("Your password is set. Sign in with it.")

    sign_in_as(page, live_server.url, "ed@clinic.example")
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)  # admins only
    page.get_by_role("link", name="Subscribers").click()
    page.get_by_label("Address or name starts with").fill("RUNNER 1")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="runner1@example.com")).to_be_visible()
    expect(page.get_by_role("link", name="runner0@example.com")).to_have_count(0)
    screenshot(page, "1-subscribers", widths)
    assert serious_accessibility_problems(page) == []

    page.get_by_role("link", name="runner1@example.com").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("runner1@example.com")
    runners = page.locator("section", has_text="Runners E-Course").first
    expect(runners.get_by_role("row").nth(1)).to_contain_text("sent")
    expect(runners.get_by_text("ankles", exact=True)).to_be_visible()  # lesson 2, still to come
    runners.get_by_role("button", name="Pause").click()
    expect(page.locator("section .status").first).to_have_text("paused")
    expect(page.get_by_text("Nothing goes out while paused.")).to_be_visible()
    screenshot(page, "2-subscriber-paused", widths)
    assert serious_accessibility_problems(page) == []
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("section .status").first).to_have_text("active")

    # Lesson 3 now, outside the rhythm. Queueing wakes the server's scheduler, which may send it
    # at once; a pass of our own makes sure, and either way it arrives once.
    page.get_by_label("Queue a lesson").select_option("3")
    page.get_by_role("button", name="Queue").click()
    expect(page.get_by_role("row", name=re.compile(r"^3 calves-achilles "))).to_have_count(2)
    live_server.dispatch_as_of(datetime.now(UTC) + timedelta(minutes=1))
    inbox.wait_for("runner1@example.com", "Lesson 3")
    assert len([m for m in inbox.of("runner1@example.com") if "Lesson 3" in str(m["Subject"])]) == 1
    page.reload()
    expect(page.get_by_role("row", name=re.compile(r"^3 calves-achilles sent"))).to_be_visible()
    changes = page.locator("section", has_text="Changes and bounces")
    expect(changes.get_by_role("row")).to_have_count(4)  # the heading row and three changes
    expect(changes.get_by_role("row").nth(1)).to_contain_text("operator ed@clinic.example")
    expect(changes.get_by_role("row").nth(1)).to_contain_text("lesson queued")
    expect(changes.get_by_role("row").nth(2)).to_contain_text("resumed")
    expect(changes.get_by_role("row").nth(3)).to_contain_text("paused")
    screenshot(page, "3-lesson-queued-and-sent", widths)
    assert serious_accessibility_problems(page) == []
    page.get_by_role("button", name="Sign out").click()

    sign_in_as(page, live_server.url, "ada@clinic.example")
    page.get_by_role("link", name="Audit log").click()
    rows = page.get_by_role("row")
    expect(rows.nth(1)).to_contain_text("lesson queued")
    expect(rows.nth(2)).to_contain_text("resumed")
    expect(rows.nth(3)).to_contain_text("paused")
    expect(rows.nth(1)).to_contain_text("runner1@example.com")
    expect(rows.nth(4)).to_contain_text("password chosen")
    expect(rows.nth(5)).to_contain_text("invitation sent")
    expect(rows.nth(6)).to_contain_text("operator added")
    expect(rows.nth(6)).to_contain_text("ed@clinic.example")
    screenshot(page, "4-audit-log", widths)
    assert serious_accessibility_problems(page) == []
