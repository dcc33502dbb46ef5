"""Looks right: every shipped lesson's HTML part, opened in the real Chromium on a phone and a desktop.

A phone (375 px, mobile viewport) must never have to scroll sideways, and the column must fill it;
on a desktop (800 px) the column stays at its 600 px and is centred. A full-page PNG of each lesson
at each width is saved as test-artifacts/screenshots/email--<course>-<file>--<width>.png for a
person to look at, which is the check no assertion replaces.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import SCREENSHOTS
from playwright.sync_api import Browser, FloatRect, Page
from shipped import LessonMail

PHONE, DESKTOP, HEIGHT = 375, 800, 800
COLUMN = 600


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    # is_mobile: Chromium then honours the email's viewport meta tag, as a phone's mail app does.
    context = browser.new_context(
        viewport={"width": PHONE, "height": HEIGHT}, is_mobile=True, has_touch=True
    )
    try:
        yield _offline(context.new_page())
    finally:
        context.close()


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": DESKTOP, "height": HEIGHT})
    try:
        yield _offline(context.new_page())
    finally:
        context.close()


@pytest.fixture
def phone_at_night(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": PHONE, "height": HEIGHT}, is_mobile=True, color_scheme="dark"
    )
    try:
        yield _offline(context.new_page())
    finally:
        context.close()


def _offline(page: Page) -> Page:
    """A mail client fetches nothing it was not asked to; neither does this page."""
    page.set_default_timeout(10_000)
    page.route("**/*", lambda route: route.abort())
    return page


def _open(page: Page, lesson_mail: LessonMail, width: int, suffix: str = "") -> None:
    page.set_content(lesson_mail.html, wait_until="load")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = f"email--{lesson_mail.name}--{width}{suffix}.png"
    page.screenshot(path=SCREENSHOTS / name, full_page=True)


def _box(page: Page, selector: str) -> FloatRect:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not displayed"
    return box


def test_on_a_phone_nothing_is_wider_than_the_screen(phone: Page, lesson_mail: LessonMail) -> None:
    _open(phone, lesson_mail, PHONE)

    scroll_width = phone.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE, (
        f"{lesson_mail.name}: at {PHONE} px the lesson is {scroll_width} px wide, "
        "so a phone has to scroll sideways"
    )
    overflowing = phone.evaluate(
        """(width) => [...document.body.querySelectorAll('*')]
            .filter((e) => e.getBoundingClientRect().right > width + 0.5)
            .map((e) => e.tagName + '.' + e.className)""",
        PHONE,
    )
    assert overflowing == []
    # The column fills the phone: no desktop margins left around it.
    assert _box(phone, "table.container")["width"] == PHONE
    assert phone.get_by_role("heading", level=1).inner_text() == lesson_mail.title
    assert phone.get_by_role("link", name="Unsubscribe").is_visible()


def test_on_a_desktop_the_column_is_600px_and_centred(
    desktop: Page, lesson_mail: LessonMail
) -> None:
    _open(desktop, lesson_mail, DESKTOP)

    column = _box(desktop, "table.container")
    assert column["width"] == COLUMN
    assert abs(column["x"] - (DESKTOP - COLUMN) / 2) <= 1
    assert desktop.evaluate("document.documentElement.scrollWidth") <= DESKTOP
    assert desktop.get_by_role("heading", level=1).inner_text() == lesson_mail.title
    # The preheader is for the inbox list only; the opened lesson does not show it.
    assert not desktop.get_by_text(lesson_mail.front_matter["preheader"]).is_visible()
    button = desktop.locator("a.button-link")
    assert button.is_visible()
    assert button.inner_text().strip()
    assert _box(desktop, "a.button-link")["height"] >= 44  # a comfortable tap or click target


def test_in_dark_mode_the_lesson_is_light_on_dark(
    phone_at_night: Page, lesson_mail: LessonMail
) -> None:
    """Apple Mail and iOS apply the dark @media rules; the column then is not a white glare."""
    _open(phone_at_night, lesson_mail, PHONE, "-dark")

    colours = phone_at_night.evaluate(
        """() => {
            const of = (s, p) => getComputedStyle(document.querySelector(s))[p];
            return [of('td.content', 'backgroundColor'), of('h1', 'color'), of('.lesson-body p', 'color')];
        }"""
    )
    assert colours == ["rgb(17, 24, 39)", "rgb(229, 231, 235)", "rgb(229, 231, 235)"]
