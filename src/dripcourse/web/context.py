"""What every request handler needs, built once per app and reached through `request.app.state`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import Request

from dripcourse.clock import Clock
from dripcourse.config import Settings
from dripcourse.mail.tokens import Signer
from dripcourse.store.db import Database
from dripcourse.store.queries import secret_key
from dripcourse.web.ratelimit import RateLimiter


@dataclass
class WebContext:
    settings: Settings
    database: Database
    clock: Clock
    wake: Callable[[], None] = lambda: None
    """Asks the dispatcher for a pass now (a confirmation email is waiting)."""
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(10, timedelta(minutes=1)))
    _signer: Signer | None = None

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            with self.database.transaction() as session:
                self._signer = Signer(secret_key(session, self.settings.secret_key))
        return self._signer

    @property
    def confirm_max_age(self) -> timedelta:
        return timedelta(hours=self.settings.confirmation_expiry_hours)


def context_of(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context
