"""The images of a lesson as a reader gets them: sent through a real SMTP server, read back from
the message, and fetched from the live server at the address the email gives (or from the CDN
address `DRIPCOURSE_MEDIA_URL` names). Hostile addresses get a 404 with an explanation, never a 500.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import httpx
import pytest
from PIL import Image

from dripcourse.app import subscriptions

WALL_ALT = (
    "The knee-to-wall test from the side: the big toe 10 cm from a wall, the heel flat on the "
    "floor, and the knee bent forward until it touches the wall"
)


def images_of(html: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []

    class Images(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "img":
                found.append({name: value or "" for name, value in attrs})

    Images().feed(html)
    return found


def lesson(number: int, live_server, inbox, email="ada@example.com"):
    """Lesson `number` as it arrived, a pass eight days after the one before: each lesson is due
    at 08:00 in Toronto a week after the last was sent, so a pass a week and a minute on would
    come too early whenever the last went before 08:00 there (this ran at the real time of day)."""
    now = datetime.now(UTC)
    with live_server.database.transaction() as session:
        subscriptions.subscribe(
            session,
            email=email,
            course_slug="runners",
            name="Ada Lovelace",
            timezone="America/Toronto",
            confirmed=True,
            now=now,
        )
    for week in range(1, number + 1):
        live_server.dispatch_as_of(now + timedelta(days=8 * week))
    return inbox.wait_for(email, f"Lesson {number}:")


def test_a_lessons_images_arrive_as_absolute_urls_the_server_answers(live_server, inbox) -> None:
    message = lesson(2, live_server, inbox)
    logo, wall = images_of(inbox.html_of(message))

    media = f"{live_server.url}/media/runners/"
    assert logo["src"].startswith(media) and logo["src"].endswith("-logo.png")
    assert (logo["alt"], logo["width"], logo["height"]) == ("Northside Physio", "200", "60")
    assert wall["src"].startswith(media) and wall["src"].endswith("-knee-to-wall.png")
    assert (wall["alt"], wall["width"], wall["height"]) == (WALL_ALT, "552", "320")
    assert "max-width: 100%" in wall["style"] and "height: auto" in wall["style"]
    text = " ".join(inbox.text_of(message).split())
    assert f"[image: {WALL_ALT}]" in text

    for image, stored in ((logo, (400, 120)), (wall, (1104, 640))):
        answer = httpx.get(image["src"])
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/png"
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert Image.open(io.BytesIO(answer.content)).size == stored  # twice the display size


def test_a_related_article_shows_its_thumbnail_beside_it(live_server, inbox) -> None:
    """Lesson 6's second related article has a thumbnail (the lesson's illustration, small)."""
    message = lesson(6, live_server, inbox)

    thumbnails = [i for i in images_of(inbox.html_of(message)) if i.get("class") == "thumbnail"]

    (thumbnail,) = thumbnails
    assert (thumbnail["alt"], thumbnail["role"]) == ("", "presentation")  # the title says it
    assert (thumbnail["width"], thumbnail["height"]) == ("120", "61")
    assert thumbnail["src"].endswith("-dead-bug.png")
    answer = httpx.get(thumbnail["src"])
    assert answer.status_code == 200
    assert Image.open(io.BytesIO(answer.content)).size == (240, 122)


@pytest.mark.server_settings(media_url="https://cdn.northside.example/course-media/")
def test_with_a_media_url_the_images_point_at_the_cdn(live_server, inbox) -> None:
    message = lesson(2, live_server, inbox)

    sources = [image["src"] for image in images_of(inbox.html_of(message))]

    assert len(sources) == 2  # the logo, the illustration
    for src in sources:
        assert re.fullmatch(
            r"https://cdn\.northside\.example/course-media/runners/[0-9a-f]{12}-[a-z-]+\.png", src
        )
    # The server still answers at its own address, for whoever has not switched over yet.
    name = sources[0].rsplit("/", 1)[1]
    assert httpx.get(f"{live_server.url}/media/runners/{name}").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/media/runners/000000000000-knee-to-wall.png",  # well formed, unknown
        "/media/nope/000000000000-knee-to-wall.png",
        "/media/runners/..%2F..%2Fcourse.toml",
        "/media/runners/%2e%2e",
        "/media/runners/logo.png",  # the author's name, not the served one
        "/media/runners/foot%00.png",
        "/media/runners/" + "a" * 5000,
        "/media/%C3%28/x.png",
        "/media/runners/",
        "/media/runners/x.png/extra",
        "/media/../etc/passwd",
    ],
)
def test_unknown_and_hostile_names_are_a_404_with_an_explanation(live_server, path: str) -> None:
    page = httpx.get(live_server.url + path)
    api = httpx.get(live_server.url + path, headers={"Accept": "application/json"})

    assert page.status_code == 404 and api.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "Not found" in page.text
    assert api.json()["error"]
    assert "immutable" not in page.headers.get("cache-control", "")
