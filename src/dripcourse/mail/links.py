"""Click tracking in a lesson's HTML: each web link made a signed redirect of its delivery.

Off unless a course turns it on (`[tracking] clicks = true` in course.toml): people's reading is
their own business by default. When on, each web link of the HTML part becomes a redirect under the
base URL, `{base}/c/{token}?u={target}`, whose token names the delivery and is signed together with
the target (`Signer.make_bound`): changing the target, the delivery or a letter of the signature
makes the link invalid, so nobody can borrow our domain to send people elsewhere (no open
redirect), and no database lookup is needed to know where a link leads.

Not rewritten: the unsubscribe and view-online links and anything else under our own pages, mailto
links, and the whole plain-text part, which keeps each address as written so that a reader can see
where a link goes before following it. There is no tracking pixel.

The clicks are recorded by `app.clicks`.
"""

from __future__ import annotations

import functools
import html
import re
from urllib.parse import quote

from dripcourse.domain.course_settings import CourseSettings
from dripcourse.mail.tokens import Purpose, Signer

CLICK_PATH = "/c/"
# Our own pages: following these must never count as reading the lesson.
OWN_PATHS = ("/unsubscribe/", "/view/", "/confirm/", CLICK_PATH)
# The href of an <a> element that leads to the web (css-inline writes attributes in double quotes).
_ANCHOR_HREF = re.compile(r'(<a\s[^>]*?\bhref=")(https?://[^"]*)(")', re.IGNORECASE)
WEB = re.compile(r"https?://", re.IGNORECASE)


def tracks_clicks(settings: CourseSettings) -> bool:
    """Whether the course asks for click tracking (courses synced before it existed: no)."""
    return settings.tracks_clicks


def track_links(signer: Signer, base_url: str, page: str, delivery_id: int) -> str:
    """The HTML `page` with each of its web links made a tracked link of this delivery."""
    base = base_url.rstrip("/")
    own = tuple(base + path for path in OWN_PATHS)

    def tracked(match: re.Match[str]) -> str:
        start, href, end = match.groups()
        target = html.unescape(href)
        if not target.startswith(own):
            href = html.escape(tracked_url(signer, base, delivery_id, target))
        return start + href + end

    return _ANCHOR_HREF.sub(tracked, page)


def tracked_url(signer: Signer, base: str, delivery_id: int, target: str) -> str:
    token = signer.make_bound(Purpose.CLICK, {"d": delivery_id}, target)
    return f"{base}{CLICK_PATH}{token}?u={_quoted(target)}"


@functools.lru_cache(maxsize=4096)
def _quoted(target: str) -> str:
    # Everything but the scheme's and path's separators is escaped, `&`, `#` and `+` above all,
    # so that the query parser hands back exactly the text that was signed.
    return quote(target, safe=":/")
