"""The Deliveries page in a real browser: an editor finds a lesson that a mail server kept
refusing, retries it once the server takes mail again, and it arrives once; a retry for someone
whose address hard-bounced is refused beside their row. Photographed at 375 and 1280 px
(test-artifacts/screenshots/); axe-core finds nothing serious; a phone never scrolls sideways."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from test_dashboard_browser import PASSWORD, serious_accessibility_problems, sign_in_as

from dripcourse.app import operators, subscriptions
from dripcourse.domain.roles import Role

WIDTHS = (375, 1280)
BUSY = "runner1@example.com"
GONE = "runner2@example.com"


def lesson_1_refused(live_server, smtpd) -> datetime:
    """Three runners in Toronto owed lesson 1: runner0 gets it; runner1's server answers 451
    until the retry window (a minute here) closes; runner2's answers 550 (a hard bounce)."""
    now = datetime.now(UTC)
    with live_server.database.transaction() as session:
        operators.add_operator(session, "ed@clinic.example", Role.EDITOR, PASSWORD, now, "set-up")
        for number in range(3):
            subscriptions.subscribe(
                session,
                email=f"runner{number}@example.com",
                course_slug="runners",
                name=f"Runner {number}",
                timezone="America/Toronto",
                confirmed=True,
                now=now - timedelta(days=7),
            )
    smtpd.fail_recipient(BUSY, 451, "4.2.1 <runner1@example.com>: mailbox busy, try later")
    smtpd.fail_recipient(GONE, 550, "5.1.1 <runner2@example.com>: no such user")
    live_server.dispatch_as_of(now)
    live_server.dispatch_as_of(now + timedelta(minutes=6))  # the second try gives up
    return now


@pytest.mark.server_settings(retry_give_up_after=60)
def test_an_editor_retries_a_refused_lesson_and_it_arrives_once(
    live_server, browser_page, inbox, smtpd, screenshot
):
    lesson_1_refused(live_server, smtpd)
    assert len(inbox.of("runner0@example.com")) == 1
    smtpd.reset()  # runner1's server takes mail again (runner2's address is gone for good)
    page = browser_page

    sign_in_as(page, live_server.url, "ed@clinic.example")
    page.get_by_role("link", name="Deliveries").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Deliveries")
    busy = page.get_by_role("row").filter(has=page.get_by_role("link", name=BUSY))
    expect(busy).to_contain_text("failed")
    expect(busy).to_contain_text("2 attempts")
    expect(busy).to_contain_text("mailbox busy, try later")
    expect(busy).to_contain_text("1 feet")
    gone = page.get_by_role("row").filter(has=page.get_by_role("link", name=GONE))
    expect(gone).to_contain_text("no such user")
    suppressed = page.locator("section", has_text="Suppressed after a bounce or complaint")
    expect(suppressed.get_by_role("row", name=re.compile(GONE))).to_contain_text("hard bounce")
    screenshot(page, "1-deliveries", WIDTHS)
    assert serious_accessibility_problems(page) == []
    person = busy.get_by_role("link", name=BUSY).get_attribute("href")

    # The address that hard-bounced may not be mailed: refused, the reason beside its row.
    gone.get_by_role("button", name="Retry now").click()
    gone = page.get_by_role("row").filter(has=page.get_by_role("link", name=GONE))
    expect(gone.get_by_role("alert")).to_contain_text(
        f"{GONE} may not be mailed: suppressed after a hard bounce"
    )
    screenshot(page, "2-retry-refused", WIDTHS)
    assert serious_accessibility_problems(page) == []

    # Retrying wakes the server's scheduler, which may send it at once; a pass of our own makes
    # sure, and either way it arrives once.
    busy = page.get_by_role("row").filter(has=page.get_by_role("link", name=BUSY))
    busy.get_by_role("button", name="Retry now").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Deliveries")
    live_server.dispatch_as_of(datetime.now(UTC) + timedelta(minutes=1))
    inbox.wait_for(BUSY, "Lesson 1")
    page.reload()
    expect(page.get_by_role("link", name=BUSY)).to_have_count(0)
    expect(page.get_by_role("link", name=GONE).first).to_be_visible()
    screenshot(page, "3-retried-and-sent", WIDTHS)
    assert serious_accessibility_problems(page) == []
    assert [str(m["Subject"]).split(":")[0] for m in inbox.of(BUSY)] == ["Lesson 1"]
    assert inbox.of(GONE) == []

    page.goto(f"{live_server.url}{person}")
    changes = page.locator("section", has_text="Changes and bounces")
    expect(changes.get_by_role("row").nth(1)).to_contain_text("operator ed@clinic.example")
    expect(changes.get_by_role("row").nth(1)).to_contain_text("delivery retried")


def test_a_viewer_sees_when_a_lesson_is_tried_next_in_the_persons_zone_and_no_button(
    live_server, browser_page, inbox, smtpd, screenshot
):
    now = datetime.now(UTC)
    with live_server.database.transaction() as session:
        operators.add_operator(session, "vi@clinic.example", Role.VIEWER, PASSWORD, now, "set-up")
        subscriptions.subscribe(
            session,
            email=BUSY,
            course_slug="runners",
            name="Runner 1",
            timezone="Asia/Kolkata",  # UTC+05:30: the two times differ in their minutes
            confirmed=True,
            now=now - timedelta(days=7),
        )
    smtpd.fail_recipient(BUSY, 451, "4.2.1 <runner1@example.com>: mailbox busy, try later")
    live_server.dispatch_as_of(now)
    page = browser_page

    sign_in_as(page, live_server.url, "vi@clinic.example")
    page.get_by_role("link", name="Deliveries").click()
    busy = page.get_by_role("row").filter(has=page.get_by_role("link", name=BUSY))
    expect(busy).to_contain_text("retrying")
    expect(busy).to_contain_text("1 attempt")
    next_try = now + timedelta(minutes=5)  # the first retry comes five minutes later
    kolkata = next_try + timedelta(hours=5, minutes=30)
    expect(busy).to_contain_text(f"{kolkata:%Y-%m-%d %H:%M} Asia/Kolkata")
    expect(busy).to_contain_text(f"{next_try:%Y-%m-%d %H:%M} UTC")
    expect(page.get_by_role("button", name="Retry now")).to_have_count(0)
    screenshot(page, "deliveries-as-viewer", WIDTHS)
    assert serious_accessibility_problems(page) == []
