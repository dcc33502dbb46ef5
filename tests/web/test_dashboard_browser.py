"""An operator's first visit to the dashboard in a real browser: sign in, read the overview after a
lesson went out, sign out. Photographed at 375 and 1280 px (test-artifacts/screenshots/); a phone
never scrolls sideways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from dripcourse.app import audit, operators, subscriptions
from dripcourse.domain.roles import Role

PASSWORD = "correct horse battery"
AXE = Axe()


def serious_accessibility_problems(page: Page) -> list[str]:
    """What axe-core (bundled by axe-playwright-python) finds of serious or critical impact."""
    found = AXE.run(page).response["violations"]
    return [f"{v['id']}: {v['help']}" for v in found if v["impact"] in ("serious", "critical")]


def test_an_operator_signs_in_reads_the_overview_and_signs_out(
    live_server, browser_page, inbox, screenshot
):
    now = datetime.now(UTC)
    with live_server.database.transaction() as session:
        operators.add_operator(
            session, "ada@clinic.example", Role.EDITOR, PASSWORD, now, audit.command_line_actor("t")
        )
        for number in range(3):
            subscriptions.subscribe(
                session,
                email=f"runner{number}@example.com",
                course_slug="runners",
                name=f"Runner {number}",
                timezone="Europe/Berlin",
                confirmed=True,
                now=now - timedelta(days=7),
            )
    live_server.dispatch_as_of(now)
    inbox.wait_for("runner2@example.com", "Lesson 1")
    page = browser_page
    widths = (375, 1280)  # a phone, and a desk

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
