"""The shipped lessons' images as a reader sees them: every lesson with pictures opened in the real
Chromium at phone and desktop width, its images served as `/media` serves them after `courses
sync` (and nothing else fetched). Each image loads, keeps its proportions, and fits the column;
on a phone it shrinks with the screen. Screenshots are saved as
test-artifacts/screenshots/email--<course>-<file>--<width>-images.png for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import SCREENSHOTS
from playwright.sync_api import Browser, Page, Route
from shipped import LessonMail, shipped_images, shipped_lessons

WIDTHS = {"phone": 375, "desktop": 800}
WITH_IMAGES = [mail for mail in shipped_lessons() if "<img" in mail.html]


@pytest.fixture(params=list(WIDTHS), ids=list(WIDTHS))
def page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    width = WIDTHS[request.param]
    mobile = request.param == "phone"
    context = browser.new_context(
        viewport={"width": width, "height": 800}, is_mobile=mobile, has_touch=mobile
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.route("**/*", _serve_media)
    try:
        yield page
    finally:
        context.close()


def _serve_media(route: Route) -> None:
    """Our images, as the server sends them; anything else a mail client would not fetch."""
    found = shipped_images().get(route.request.url)
    if found is None:
        route.abort()
        return
    content_type, data = found
    route.fulfill(status=200, body=data, headers={"Content-Type": content_type})


@pytest.mark.parametrize("mail", WITH_IMAGES, ids=[mail.name for mail in WITH_IMAGES])
def test_every_image_loads_keeps_its_shape_and_fits(page: Page, mail: LessonMail) -> None:
    page.set_content(mail.html, wait_until="load")
    width = page.viewport_size["width"] if page.viewport_size else 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"email--{mail.name}--{width}-images.png", full_page=True)

    images = page.evaluate(
        """() => [...document.images].map(i => {
            const box = i.getBoundingClientRect();
            return {src: i.src, alt: i.alt, natural: i.naturalWidth, naturalHeight: i.naturalHeight,
                    width: box.width, height: box.height, right: box.right,
                    column: i.closest('td').getBoundingClientRect().width,
                    inBody: !!i.closest('.lesson-body')};
        })"""
    )

    assert any("-logo." in image["src"] for image in images)
    for image in images:
        assert image["natural"] > 0, f"{image['src']} did not load"
        assert image["right"] <= width
        assert image["width"] <= image["column"] + 0.5
        # Proportions kept (height: auto), to the pixel of rounding.
        expected = image["width"] * image["naturalHeight"] / image["natural"]
        assert abs(image["height"] - expected) <= 1.5
    body = [i for i in images if i["inBody"]]
    assert len(body) == mail.body_markdown.count("](images/")
    for image in body:
        # Sharp: at least as many pixels as CSS pixels shown, up to twice as many.
        assert image["natural"] >= image["width"]
    if body and width == WIDTHS["phone"]:
        assert all(i["width"] < 552 for i in body)  # shrunk with the screen
