"""The lesson images where authors and editors look at a lesson, in the real Chromium: the
author's preview (`dripcourse preview`, which serves the images of the files as they are) and the
dashboard's lesson page (a srcdoc frame under the dashboard's Content-Security-Policy, the images
served by `/media`). An image that did not load has a natural width of 0."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import FrameLocator, Page, expect
from test_dashboard_browser import PASSWORD, sign_in_as

from dripcourse.app import operators
from dripcourse.config import Settings
from dripcourse.domain.roles import Role
from dripcourse.web.preview import create_preview_app

LOADED = """frame => [...frame.querySelectorAll('img')].map(i => ({
    src: i.getAttribute('src'), loaded: i.complete && i.naturalWidth > 0,
    shown: i.getBoundingClientRect().width, alt: i.alt}))"""


@pytest.fixture
def preview_url(courses_dir: Path) -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    settings = Settings(courses_dir=courses_dir, base_url="https://example.org")
    app = create_preview_app(settings, address=url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/version", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def images_in(frame: FrameLocator) -> list[dict[str, object]]:
    images: list[dict[str, object]] = frame.locator("html").evaluate(
        LOADED.replace("frame =>", "root =>").replace("frame.", "root.")
    )
    return images


def test_the_authors_preview_shows_the_logo_and_the_illustration(
    preview_url: str, browser_page: Page
) -> None:
    page = browser_page
    page.goto(f"{preview_url}/courses/runners/lessons/ankles")
    phone = page.frame_locator('iframe[title="The email at phone width"]')
    expect(phone.locator("img.logo")).to_be_visible()
    expect(phone.locator(".lesson-body img")).to_be_visible()
    page.wait_for_load_state("networkidle")

    images = images_in(phone)

    assert len(images) == 2  # the logo, the illustration
    for image in images:
        assert str(image["src"]).startswith(f"{preview_url}/media/runners/")
        assert image["loaded"], f"{image['src']} did not load"
    # The author is not warned about the preview's own (plain http) image addresses.
    assert "/media/" not in page.locator("body").inner_text()


def test_the_dashboards_lesson_page_shows_the_images_under_its_policy(
    live_server, browser_page: Page
) -> None:
    with live_server.database.transaction() as session:
        operators.add_operator(
            session, "ed@clinic.example", Role.EDITOR, PASSWORD, datetime.now(UTC), "test"
        )
    page = browser_page
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    sign_in_as(page, live_server.url, "ed@clinic.example")

    page.goto(f"{live_server.url}/admin/courses/runners/lessons/ankles")
    email = page.frame_locator("iframe.email")
    expect(email.locator("img.logo")).to_be_visible()
    page.wait_for_load_state("networkidle")

    images = images_in(email)

    assert [image["loaded"] for image in images] == [True, True]
    assert all(str(i["src"]).startswith(f"{live_server.url}/media/runners/") for i in images)
    assert refused == []
