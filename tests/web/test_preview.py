"""A course author's story with `dripcourse preview`: open a lesson in Chromium, change the sample
subscriber, edit the lesson's Markdown in an editor (here: on disk) and watch the open page show the
change by itself, break the front matter and see the file and line, fix it again.

The preview app runs in a real uvicorn server on a copy of the example courses; the command line
itself is run in-process for its errors and as a real process once, serving.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import FrameLocator, Locator, Page, expect

from dripcourse.config import Settings
from dripcourse.devtools.spamcheck import spamassassin_available
from dripcourse.web.preview import create_preview_app
from dripcourse.web.preview_lessons import version_stamp

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WIDE = {"width": 1280, "height": 1000}
RELOAD_TIMEOUT = 5_000  # ms: the page polls every second
STARTUP_TIMEOUT = 10.0
FEET = "/courses/runners/lessons/feet"


@dataclass(frozen=True)
class PreviewServer:
    url: str
    courses_dir: Path

    def lesson_file(self, name: str = "01-feet.md") -> Path:
        return self.courses_dir / "runners" / name

    def edit(self, old: str, new: str, name: str = "01-feet.md") -> None:
        """What an editor does on save: the file rewritten with one change."""
        file = self.lesson_file(name)
        text = file.read_text(encoding="utf-8")
        assert old in text, f"{old!r} is not in {file.name}"
        file.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def preview_server(courses_dir: Path) -> Iterator[PreviewServer]:
    """`dripcourse preview` on a private copy of emails/, served on a free port of 127.0.0.1."""
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    app = create_preview_app(
        Settings(courses_dir=courses_dir, base_url="https://example.org"), address=url
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    try:
        thread.start()
        _wait_until_it_answers(url)
        yield PreviewServer(url=url, courses_dir=courses_dir)
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT)
        listener.close()


def _wait_until_it_answers(url: str, process: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"the preview stopped while starting: {process.communicate()[1]}")
        try:
            httpx.get(f"{url}/version", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail(f"the preview server did not answer at {url} within {STARTUP_TIMEOUT:.0f} s")


def phone(page: Page) -> FrameLocator:
    return page.frame_locator('iframe[title="The email at phone width"]')


def desktop(page: Page) -> FrameLocator:
    return page.frame_locator('iframe[title="The email at desktop width"]')


def text_part(page: Page) -> Locator:
    return page.locator("pre.text")


def expect_the_spam_score(page: Page) -> None:
    """The score arrives after the page (SpamAssassin takes a second or more), or its absence."""
    checks = page.get_by_role("region", name="Checks")
    if spamassassin_available():
        expect(checks).to_contain_text(re.compile(r"Spam score -?\d+\.\d of the"), timeout=30_000)
    else:
        expect(checks).to_contain_text("SpamAssassin is not installed")


def photograph(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(WIDE)
    page.screenshot(path=SCREENSHOTS / f"preview--{name}.png", full_page=True)


def test_an_author_edits_a_lesson_and_the_open_page_shows_it(
    preview_server, browser_page, screenshot
):
    page = browser_page
    page.set_viewport_size(WIDE)

    # The start page lists the course and its lessons; lesson 1 is one click away.
    page.goto(preview_server.url)
    course = page.get_by_role("region", name="Runners E-Course")
    expect(course.get_by_role("listitem")).to_have_count(10)
    expect(course.get_by_role("alert")).to_have_count(0)
    course.get_by_role("link", name="Lesson 1: Feet first").click()

    # The lesson as the sample subscriber gets it: at both widths, and its text part.
    expect(page.get_by_role("heading", level=1)).to_have_text("Lesson 1: Feet first")
    expect(page.locator(".preheader")).to_contain_text("Every stride starts at your feet")
    expect(phone(page).get_by_role("heading", level=1)).to_have_text("Feet first")
    expect(desktop(page).get_by_role("heading", level=1)).to_have_text("Feet first")
    expect(text_part(page)).to_contain_text("Hi Sam,")
    expect(text_part(page)).to_contain_text("Welcome to the course.")
    expect(page.get_by_role("link", name="Lesson 2: Ankles", exact=False)).to_be_visible()
    checks = page.get_by_role("region", name="Checks")
    expect(checks).to_contain_text(re.compile(r"HTML part: \d+\.\d KB of the 102\.0 KB Gmail"))
    expect(checks).to_contain_text("No warnings.")
    expect_the_spam_score(page)

    # Another sample subscriber: the email greets her, in both parts.
    page.get_by_label("Sample subscriber's name").fill("Ada Lovelace")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_role("button", name="Show").click()
    expect(phone(page).get_by_text("Hi Ada,")).to_be_visible()
    expect(text_part(page)).to_contain_text("Hi Ada,")
    expect(page.locator("dl.envelope")).to_contain_text("Ada Lovelace")
    expect(page.locator("dl.envelope")).to_contain_text("Europe/Berlin")
    expect_the_spam_score(page)
    screenshot(page, "lesson")  # also: a phone never scrolls the page sideways
    photograph(page, "before")

    # The author saves a new title and a new first sentence; the page shows them by itself,
    # still for Ada.
    preview_server.edit('title = "Feet first"', 'title = "Happy feet"')
    preview_server.edit("Welcome to the course.", "Welcome aboard, fellow runner.")
    expect(phone(page).get_by_role("heading", level=1)).to_have_text(
        "Happy feet", timeout=RELOAD_TIMEOUT
    )
    expect(desktop(page).get_by_role("heading", level=1)).to_have_text("Happy feet")
    expect(desktop(page).get_by_text("Welcome aboard, fellow runner.")).to_be_visible()
    expect(text_part(page)).to_contain_text("Welcome aboard, fellow runner.")
    expect(text_part(page)).not_to_contain_text("Welcome to the course.")
    expect(text_part(page)).to_contain_text("Hi Ada,")
    expect(page.get_by_label("Sample subscriber's name")).to_have_value("Ada Lovelace")
    expect_the_spam_score(page)
    photograph(page, "after")


def test_a_broken_edit_shows_the_file_and_line_and_the_fix_brings_the_email_back(
    preview_server, browser_page
):
    page = browser_page
    page.goto(preview_server.url + FEET)
    expect(phone(page).get_by_role("heading", level=1)).to_have_text("Feet first")

    # Mid-edit: the title's closing quote is missing (line 4 of the file).
    preview_server.edit('title = "Feet first"', 'title = "Feet first')
    problems = page.get_by_role("alert")
    expect(problems).to_contain_text("This lesson cannot be shown", timeout=RELOAD_TIMEOUT)
    expect(problems).to_contain_text("runners/01-feet.md:4: invalid TOML")
    expect(page.locator("iframe")).to_have_count(0)
    photograph(page, "broken")
    answer = httpx.get(preview_server.url + FEET)
    assert answer.status_code == 200, "the preview itself works: it shows the author's mistake"
    assert "runners/01-feet.md:4: invalid TOML" in answer.text

    # The start page says so too, beside the course.
    overview = httpx.get(preview_server.url)
    assert overview.status_code == 200
    assert "runners/01-feet.md:4: invalid TOML" in overview.text

    # Another lesson broken does not hide this one; it is named below the email.
    preview_server.edit('title = "Feet first', 'title = "Feet first"')
    preview_server.edit('subject = "Lesson 2:', "subject = Lesson 2:", name="02-ankles.md")
    expect(
        page.get_by_role("region", name="Other files of this course have problems")
    ).to_contain_text("runners/02-ankles.md:2: invalid TOML", timeout=RELOAD_TIMEOUT)
    expect(phone(page).get_by_role("heading", level=1)).to_have_text("Feet first")
    preview_server.edit("subject = Lesson 2:", 'subject = "Lesson 2:', name="02-ankles.md")

    # A template mistake in the body points at its own line.
    expect(
        page.get_by_role("region", name="Other files of this course have problems")
    ).to_have_count(0, timeout=RELOAD_TIMEOUT)
    preview_server.edit("Hi {{ subscriber.first_name }},", "Hi {{ subscriber.nickname }},")
    expect(page.get_by_role("alert")).to_contain_text(
        re.compile(r"runners/01-feet\.md:\d+: body: .*nickname"), timeout=RELOAD_TIMEOUT
    )

    # Fixed: the email is back, without a reload by hand.
    preview_server.edit("Hi {{ subscriber.nickname }},", "Hi {{ subscriber.first_name }},")
    expect(phone(page).get_by_text("Hi Sam,")).to_be_visible(timeout=RELOAD_TIMEOUT)
    expect(page.get_by_role("alert")).to_have_count(0)


def test_an_unknown_time_zone_is_explained_beside_the_form(preview_server, browser_page):
    page = browser_page
    page.goto(preview_server.url + FEET)
    page.get_by_label("Time zone").fill("Mars/Olympus_Mons")
    with page.expect_response(lambda response: "timezone=Mars" in response.url) as answer:
        page.get_by_role("button", name="Show").click()
    assert answer.value.status == 400
    expect(page.get_by_role("alert")).to_contain_text("Unknown time zone 'Mars/Olympus_Mons'")
    expect(page.get_by_role("alert")).to_contain_text("shown for Sam Sample in America/Toronto")
    expect(page.get_by_label("Time zone")).to_have_value("Mars/Olympus_Mons")
    expect(phone(page).get_by_role("heading", level=1)).to_have_text("Feet first")

    # The email's links are inert: a click stays in the preview.
    address = page.url
    phone(page).get_by_role("link", name="Book a running assessment").click()
    expect(phone(page).get_by_role("heading", level=1)).to_have_text("Feet first")
    assert page.url == address

    # A name with a line break is refused the same way; nothing is ever a 500.
    answer = httpx.get(preview_server.url + FEET, params={"name": "Ada\nBcc: x@example.com"})
    assert answer.status_code == 400
    assert "may not contain line breaks" in answer.text


def test_unknown_courses_and_lessons_are_404_pages(preview_server, browser_page):
    page = browser_page
    answer = page.goto(preview_server.url + "/courses/runners/lessons/no-such-lesson")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.get_by_text("has no lesson 'no-such-lesson'")).to_be_visible()
    expect(page.get_by_text("feet, ankles, calves-achilles")).to_be_visible()

    for path in ("/courses/nope/lessons/feet", "/courses/nope", "/no/such/page"):
        answer = httpx.get(preview_server.url + path)
        assert answer.status_code == 404, path
        assert "Not found" in answer.text


def test_the_whole_message_can_be_downloaded_as_sent(preview_server):
    answer = httpx.get(preview_server.url + FEET + "/message.eml", params={"name": "Ada"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "message/rfc822"
    assert b"Subject: Lesson 1: Feet first\r\n" in answer.content
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in answer.content
    assert b"To: Ada <sample.reader@example.com>" in answer.content


def test_links_to_other_lessons_show_their_subjects_as_the_sample_subscriber_gets_them(
    preview_server,
):
    # Personal subjects: the links between lessons and the start page name each lesson by its
    # subject as rendered for the sample subscriber, never by the template's source.
    preview_server.edit(
        'subject = "Lesson 1: Feet first"', 'subject = "{{ subscriber.first_name }}, session 1"'
    )
    preview_server.edit(
        'subject = "Lesson 3: Calves and the Achilles"',
        'subject = "{{ subscriber.first_name }}, session {{ lesson.number }}"',
        name="03-calves-achilles.md",
    )
    ankles = "/courses/runners/lessons/ankles"
    answer = httpx.get(preview_server.url + ankles, params={"name": "Ada Lovelace"})
    assert answer.status_code == 200
    assert _nav_link(answer.text, "prev") == "\u2190 Ada, session 1"
    assert _nav_link(answer.text, "next") == "Ada, session 3 \u2192"
    overview = httpx.get(preview_server.url).text
    assert ">Sam, session 1</a>" in overview
    assert ">Sam, session 3</a>" in overview
    assert "{{" not in answer.text + overview

    # A subject broken mid-edit: the link shows the lesson's title until it is fixed.
    preview_server.edit(
        "{{ subscriber.first_name }}, session 1", "{{ subscriber.nickname }}, session 1"
    )
    answer = httpx.get(preview_server.url + ankles)
    assert _nav_link(answer.text, "prev") == "\u2190 Feet first"
    assert "{{" not in answer.text


def _nav_link(page: str, rel: str) -> str:
    found = re.search(rf'<a rel="{rel}"[^>]*>(.*?)</a>', page)
    assert found, f"no {rel} link"
    return html.unescape(found.group(1))


def test_the_version_stamp_follows_saved_files_not_editor_scratch(courses_dir):
    before = version_stamp(courses_dir)
    (courses_dir / "runners" / ".01-feet.md.swp").write_bytes(b"vim, while the author types")
    (courses_dir / "runners" / "01-feet.md~").write_text("a backup", encoding="utf-8")
    assert version_stamp(courses_dir) == before
    (courses_dir / "runners" / "02-ankles.md").rename(courses_dir / "runners" / "02-ankle.md")
    renamed = version_stamp(courses_dir)
    assert renamed != before
    (courses_dir / "runners" / "03-calves-achilles.md").touch()
    assert version_stamp(courses_dir) != renamed


# --- The command line ---


def test_preview_help_names_its_options(cli):
    result = cli("preview", "--help")
    assert result.code == 0
    for text in ("--port", "8025", "--host", "127.0.0.1", "PATH"):
        assert text in result.out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--port", "70000"), "'--port'"),
        (("--port", "eighty"), "'--port'"),
        (("/nonexistent/courses",), "no courses found in /nonexistent/courses"),
    ],
)
def test_bad_preview_arguments_are_one_line_and_exit_2(cli, args, expected):
    result = cli("preview", *args)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dripcourse: error:"), lines
    assert expected in lines[0]


def test_a_port_in_use_is_one_line_and_exit_2(cli):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = cli("preview", "--port", str(port))
    assert result.code == 2
    assert result.err.strip() == f"dripcourse: error: cannot listen on 127.0.0.1:{port}: " + (
        "Address already in use"
    )


def test_the_command_serves_the_preview_until_interrupted(cli_env, courses_dir, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    executable = shutil.which("dripcourse", path=os.path.dirname(sys.executable))
    command = [executable] if executable else [sys.executable, "-m", "dripcourse"]
    process = subprocess.Popen(
        [*command, "preview", str(courses_dir / "runners"), "--port", str(port)],
        env={**os.environ, **cli_env},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_it_answers(url, process)
        page = httpx.get(url + FEET)
        assert page.status_code == 200
        assert "Lesson 1: Feet first" in page.text
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=STARTUP_TIMEOUT)
    assert process.returncode == 0, err
    assert f"dripcourse preview of 1 course(s) on http://127.0.0.1:{port}/" in err
