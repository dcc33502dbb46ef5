"""One line per request for `dripcourse serve`: method, path, status, time taken.

The path is the route's, with every signed token left out (`/confirm/{token}`): a confirm or
unsubscribe link is as good as the person's consent, and logs travel further than the database.
The query string and the client's address are not written either (an `?email=` filter is personal
data); an unmatched path is written as `-`, since it can be anything a stranger typed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECRET_PARAMETERS = {"token"}


class AccessLog:
    def __init__(self, app: ASGIApp, write: Callable[[str], None]) -> None:
        self.app = app
        self.write = write

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            took = (time.perf_counter() - started) * 1000
            self.write(f"{scope['method']} {logged_path(scope)} {status} {took:.1f} ms")


def logged_path(scope: Scope) -> str:
    route: BaseRoute | None = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return "-"
    values = {
        name: "{" + name + "}" if name in SECRET_PARAMETERS else str(value)
        for name, value in scope.get("path_params", {}).items()
    }
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template
