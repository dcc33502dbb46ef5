"""`GET /media/<course>/<name>`: the courses' processed images, as the lesson emails ask for them.

A name is the hash of the image's bytes (`courses/images.py`), so an answer never changes: it may
be kept for a year by every cache on the way (`immutable`: not even asked again on reload). The
content type is the one stored at processing, and `nosniff` keeps a browser from guessing another.
Any other name, or a path that tries to leave the folder, is a 404 with the usual explanation.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from dripcourse.app import media
from dripcourse.web.context import WebContext, context_of

router = APIRouter(include_in_schema=False)
Context = Annotated[WebContext, Depends(context_of)]

FOREVER = "public, max-age=31536000, immutable"


@router.api_route("/media/{course}/{name}", methods=["GET", "HEAD"])
def image(course: str, name: str, context: Context) -> Response:
    with context.database.read() as session:
        found = media.image(session, course, name)
    return Response(
        found.data,
        media_type=found.content_type,
        headers={"Cache-Control": FOREVER, "X-Content-Type-Options": "nosniff"},
    )
