"""An editor fills the list from a browser: adds one person with the confirmation email (it
arrives at the real SMTP server), imports a small CSV file with one bad row and watches it go
through, then exports the list and finds everyone in the file. Every page is photographed at 375
and 1280 px (test-artifacts/screenshots/), checked by axe-core, and never scrolls sideways on a
phone."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import expect
from test_dashboard_browser import PASSWORD, serious_accessibility_problems, sign_in_as

from dripcourse.app import operators
from dripcourse.domain.roles import Role

WIDTHS = (375, 1280)
SPRING = (
    "email,name,timezone\r\n"
    "zoe@example.com,Zoë,Europe/Paris\r\n"
    "yan@example.com,Yan,Mars/Olympus\r\n"
    "xia@example.com,Xia,Asia/Shanghai\r\n"
)


def test_an_editor_adds_one_imports_a_file_and_exports_the_list(
    live_server, browser_page, inbox, screenshot, tmp_path: Path
):
    with live_server.database.transaction() as session:
        operators.add_operator(
            session, "ed@clinic.example", Role.EDITOR, PASSWORD, datetime.now(UTC), "set-up"
        )
    page = browser_page
    sign_in_as(page, live_server.url, "ed@clinic.example")
    page.get_by_role("link", name="Subscribers").click()
    screenshot(page, "1-subscribers-with-actions", WIDTHS)
    assert serious_accessibility_problems(page) == []

    # Add one person; a typo first, named beside its field.
    page.get_by_role("link", name="Add a subscriber").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a subscriber")
    screenshot(page, "2-add-form", WIDTHS)
    assert serious_accessibility_problems(page) == []
    page.get_by_label("Email address").fill("walt@example")
    page.get_by_label("Name", exact=False).first.fill("Walt")
    page.get_by_label("Time zone").fill("America/Toronto")
    page.get_by_label("Course", exact=True).select_option("runners")
    page.get_by_label("Send the confirmation email").check()
    page.get_by_role("button", name="Add subscriber").click()
    expect(page.locator("#email-error")).to_contain_text("not a valid email address")
    expect(page.get_by_label("Name", exact=False).first).to_have_value("Walt")
    screenshot(page, "3-add-form-error", WIDTHS)
    assert serious_accessibility_problems(page) == []
    page.get_by_label("Email address").fill("walt@example.com")
    page.get_by_role("button", name="Add subscriber").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("walt@example.com")
    expect(page.locator("section .status").first).to_have_text("pending")
    expect(
        page.get_by_role("cell", name="subscribed (course runners, confirmation email)")
    ).to_be_visible()
    screenshot(page, "4-added-person", WIDTHS)
    assert serious_accessibility_problems(page) == []
    confirmation = inbox.wait_for("walt@example.com", "onfirm")
    assert "/confirm/" in inbox.text_of(confirmation)

    # Import a small file with one bad row. The test holds the database's write lock a moment,
    # so that the status page is seen while the import waits, whatever the machine's speed.
    upload = tmp_path / "spring.csv"
    upload.write_text(SPRING, encoding="utf-8")
    page.goto(f"{live_server.url}/admin/subscribers")
    page.get_by_role("link", name="Import a CSV file").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import subscribers")
    screenshot(page, "5-import-form", WIDTHS)
    assert serious_accessibility_problems(page) == []
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#file-error")).to_have_text("choose a CSV file")
    screenshot(page, "6-import-form-error", WIDTHS)
    assert serious_accessibility_problems(page) == []
    page.get_by_label("CSV file").set_input_files(upload)
    page.get_by_label("Course", exact=True).select_option("runners")
    page.get_by_label("They have all agreed already").check()
    with live_server.database.transaction():
        page.get_by_role("button", name="Import").click()
        expect(page.get_by_role("heading", name="Importing…")).to_be_visible()
        expect(page.get_by_text("rows read")).to_be_visible()
        screenshot(page, "7-import-running", WIDTHS)
        assert serious_accessibility_problems(page) == []
    # The page refreshes itself until the report is there.
    expect(page.get_by_role("heading", name="Done")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("imported 2, already enrolled 0, skipped 1")).to_be_visible()
    expect(page.get_by_role("listitem")).to_have_text(
        "spring.csv:3: unknown time zone 'Mars/Olympus': use an IANA name such as "
        "'Europe/Berlin' or 'America/Toronto'"
    )
    screenshot(page, "8-import-report", WIDTHS)
    assert serious_accessibility_problems(page) == []

    # Export: the file has everyone.
    page.goto(f"{live_server.url}/admin/subscribers")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export everyone as CSV").click()
    assert download.value.suggested_filename.startswith("subscribers-")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [(r["email"], r["name"], r["status"]) for r in rows] == [
        ("walt@example.com", "Walt", "pending"),
        ("xia@example.com", "Xia", "active"),
        ("zoe@example.com", "Zoë", "active"),
    ]
