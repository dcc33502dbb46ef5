"""What every request handler needs, built once per app and reached through `request.app.state`."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import Request

from dripcourse.app.providers.sns import CertificateSource
from dripcourse.app.providers.sns_certificates import SigningCertificates
from dripcourse.clock import Clock
from dripcourse.config import Settings
from dripcourse.errors import BadInput, Conflict, DripcourseError, NotFound, NotSent
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
    """Sign-ups per client."""
    signins: SignInLimits = field(default_factory=lambda: SignInLimits.per_minute(10))
    sns_certificates: CertificateSource = field(default_factory=SigningCertificates)
    """SNS's signing certificates for `POST /hooks/ses`, kept for the app's life (its cache)."""
    _signer: Signer | None = None
    _csrf_key: bytes | None = None

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            with self.database.transaction() as session:
                self._signer = Signer(secret_key(session, self.settings.secret_key))
        return self._signer

    @property
    def csrf_key(self) -> bytes:
        """A key of its own for the dashboard's form tokens, derived from the secret key."""
        if self._csrf_key is None:
            with self.database.read() as session:
                secret = secret_key(session, self.settings.secret_key)
            self._csrf_key = hmac.new(
                secret.encode(), b"dripcourse dashboard forms", "sha256"
            ).digest()
        return self._csrf_key

    @property
    def confirm_max_age(self) -> timedelta:
        return timedelta(hours=self.settings.confirmation_expiry_hours)


@dataclass(frozen=True)
class SignInLimits:
    """Sign-in attempts to the dashboard, counted per client, and failures counted per account
    (`operators.attempt_key`): guessing one operator's password from many clients is slowed down
    as much as guessing many from one. Only failures count against an account, so its owner's
    own sign-ins never use up its allowance."""

    by_client: RateLimiter
    by_account: RateLimiter

    @classmethod
    def per_minute(
        cls, allowed: int, monotonic: Callable[[], float] = time.monotonic
    ) -> SignInLimits:
        minute = timedelta(minutes=1)
        return cls(RateLimiter(allowed, minute, monotonic), RateLimiter(allowed, minute, monotonic))

    def allow(self, client: str, account: str) -> bool:
        """Whether this attempt may be checked at all (it costs the client one attempt)."""
        return self.by_client.allow(client) and self.by_account.has_room(account)

    def failed(self, account: str) -> None:
        self.by_account.allow(account)


STATUS = {BadInput: 400, NotFound: 404, Conflict: 409, NotSent: 502}


def status_of(error: DripcourseError) -> int:
    """The HTTP status of an operation's error: 400 bad input, 404 not found, 409 conflict;
    502 when the mail server would not take a message asked for now (nobody's input was bad)."""
    return next((code for kind, code in STATUS.items() if isinstance(error, kind)), 400)


def context_of(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context
