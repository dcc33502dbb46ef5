"""Fixtures for the HTTP side: the real app served by uvicorn on loopback, and Chromium driven by
Playwright.

`live_server` is wired exactly as `dripcourse serve` wires it: the app, the real clock, and a running
scheduler whose `wake` the app calls when a confirmation email is waiting. Its mail goes to the
conftest's `smtpd`, and its links point at itself, so a test can follow them like a reader would.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page
from sqlalchemy import select

from dripcourse.app.housekeeping import daily
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock, SystemClock
from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.sending.dispatch import Dispatcher, PassReport
from dripcourse.sending.scheduler import Scheduler
from dripcourse.store.db import Database
from dripcourse.store.models import Enrollment, Subscriber
from dripcourse.web.app import create_app
from dripcourse.web.context import SignInLimits
from dripcourse.web.ratelimit import RateLimiter

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PHONE_WIDTH, DESKTOP_WIDTH, HEIGHT = 375, 800, 900
STARTUP_TIMEOUT = 10.0
MAIL_TIMEOUT = 10.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "server_settings(**changes): settings of `live_server` that differ from the defaults",
    )


def standing_still() -> float:
    return 0.0


@dataclass(frozen=True)
class LiveServer:
    url: str
    """Where the server answers, without a trailing slash: `http://127.0.0.1:PORT`."""
    settings: Settings
    database: Database

    def dispatch_as_of(self, instant: datetime) -> PassReport:
        """One dispatcher pass as if it were `instant`: lessons are weekly, so tests move time
        instead of waiting for it (what `dripcourse tick --now` does)."""
        backend = load_backend(self.settings.email_backend)
        return Dispatcher(self.database, self.settings, backend, FixedClock(instant)).run_pass()

    def enrollment_status(self, email: str) -> str | None:
        """The status of `email`'s enrolment (in the runners course, the only one), or None."""
        with self.database.transaction() as session:
            return session.scalar(
                select(Enrollment.status).join(Subscriber).where(Subscriber.email == email)
            )


@pytest.fixture
def live_server(
    request: pytest.FixtureRequest, settings: Settings, synced: Database
) -> Iterator[LiveServer]:
    """The app with its scheduler, served on a free port of 127.0.0.1, the runners course loaded."""
    # Bound before the settings are made: the server's links must point at its own port.
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    marker = request.node.get_closest_marker("server_settings")
    live_settings = settings.with_overrides(base_url=url, **(marker.kwargs if marker else {}))

    clock = SystemClock()
    backend = load_backend(live_settings.email_backend)
    dispatcher = Dispatcher(synced, live_settings, backend, clock)
    scheduler = Scheduler(live_settings, dispatcher, clock, daily(synced, live_settings, clock))
    app = create_app(live_settings, synced, clock, wake=scheduler.wake)
    # The rate limits read a clock that stands still: a test of "the eleventh attempt within a
    # minute is refused" must not depend on how fast the machine makes ten (a busy one took
    # longer than the six seconds in which a bucket of ten a minute earns a token back).
    context = app.state.context
    context.limiter = RateLimiter(
        live_settings.signup_rate_per_minute, timedelta(minutes=1), monotonic=standing_still
    )
    context.signins = SignInLimits.per_minute(live_settings.signin_rate_per_minute, standing_still)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", proxy_headers=True))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    scheduler.start()
    try:
        thread.start()
        _wait_until_it_answers(url, thread)
        yield LiveServer(url=url, settings=live_settings, database=synced)
    finally:
        server.should_exit = True
        if thread.is_alive():
            thread.join(timeout=STARTUP_TIMEOUT)
        scheduler.shutdown()
        listener.close()


def _wait_until_it_answers(url: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if not thread.is_alive():
            pytest.fail("the live server stopped while starting; see the captured log")
        try:
            httpx.get(f"{url}/subscribe?course=runners", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.02)
    pytest.fail(f"the live server did not answer at {url} within {STARTUP_TIMEOUT:.0f} s")


class Inbox:
    """The mail that reached the test's SMTP server, by recipient."""

    def __init__(self, smtpd: CapturingSMTPServer) -> None:
        self.smtpd = smtpd

    def of(self, address: str) -> list[EmailMessage]:
        return [m.message for m in self.smtpd.messages if address in m.rcpt_tos]

    def wait_for(self, address: str, subject: str, timeout: float = MAIL_TIMEOUT) -> EmailMessage:
        """The first message to `address` whose subject contains `subject`, once it arrives."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.of(address):
                if subject in str(message["Subject"]):
                    return message
            if time.monotonic() > deadline:
                got = [str(m["Subject"]) for m in self.of(address)]
                pytest.fail(f"no {subject!r} email for {address} within {timeout:.0f} s: {got}")
            time.sleep(0.05)

    @staticmethod
    def text_of(message: EmailMessage) -> str:
        """The text/plain part, as a reader's mail client shows it."""
        part = message.get_body(preferencelist=("plain",))
        assert part is not None, "the message has no text part"
        return str(part.get_content())

    @staticmethod
    def html_of(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("html",))
        assert part is not None, "the message has no HTML part"
        return str(part.get_content())

    @staticmethod
    def link_in(message: EmailMessage, path: str) -> str:
        """The one URL in the text part whose path starts with `path` (`/confirm/`, `/view/`)."""
        found = set(re.findall(rf"https?://[^/\s]+{re.escape(path)}\S+", Inbox.text_of(message)))
        assert len(found) == 1, f"expected one {path} link in the text part, found {found}"
        return found.pop()

    @staticmethod
    def unsubscribe_url(message: EmailMessage) -> str:
        """The https/http target of List-Unsubscribe (RFC 2369), the one RFC 8058 POSTs to."""
        targets = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
        [url] = [target for target in targets if target.startswith("http")]
        return url


@pytest.fixture
def inbox(smtpd: CapturingSMTPServer) -> Inbox:
    return Inbox(smtpd)


@pytest.fixture
def browser_page(browser: Browser) -> Iterator[Page]:
    """A fresh page (no cookies, no history) of a visitor in Berlin, at desktop width."""
    context = browser.new_context(
        timezone_id="Europe/Berlin",
        locale="en-GB",
        viewport={"width": DESKTOP_WIDTH, "height": HEIGHT},
    )
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


Screenshot = Callable[..., None]


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Screenshot:
    """`screenshot(page, "subscribe-form")` saves the page as it looks at 375 and 800 px wide, as
    test-artifacts/screenshots/<test>--<name>--<width>.png, and fails if a phone would have to
    scroll sideways to read it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")

    def take(page: Page, name: str, widths: tuple[int, ...] = (PHONE_WIDTH, DESKTOP_WIDTH)) -> None:
        for width in widths:
            page.set_viewport_size({"width": width, "height": HEIGHT})
            page.screenshot(path=SCREENSHOTS / f"{test}--{name}--{width}.png", full_page=True)
            if width == PHONE_WIDTH:
                scroll_width = page.evaluate("document.documentElement.scrollWidth")
                assert scroll_width <= PHONE_WIDTH, (
                    f"{name}: at {PHONE_WIDTH} px wide the page is {scroll_width} px wide, "
                    "so a phone has to scroll sideways"
                )

    return take
