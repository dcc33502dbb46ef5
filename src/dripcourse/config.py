"""Settings: read once from `DRIPCOURSE_*` variables and an optional TOML file, then passed explicitly.

Precedence, highest first: environment variables, the TOML file (`--config` or `DRIPCOURSE_CONFIG`),
defaults. The TOML file uses the same names in lower case without the prefix
(`database_url = "sqlite:///prod.db"`).
"""

from __future__ import annotations

import os
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args, get_type_hints
from urllib.parse import urlsplit

from dripcourse.domain.schedule import RetryPolicy
from dripcourse.domain.webhooks import check_url, secret_key
from dripcourse.errors import BadInput

ENV_PREFIX = "DRIPCOURSE_"


@dataclass(frozen=True)
class DkimSettings:
    """Where the DKIM key is and what it signs for; `mail.dkim.signer_for` reads the key."""

    key_file: Path
    selector: str
    domain: str


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///dripcourse.db"
    email_backend: str = "console:"
    """Where mail goes. The default prints it, so a new user never mails the world by accident."""
    base_url: str = "http://localhost:8000"
    """Public address of the HTTP side: unsubscribe and view-online links point under it."""
    courses_dir: Path = Path("emails")
    secret_key: str | None = None
    """Signs links. Unset: generated on first use and kept in the database."""
    dispatch_interval: int = 60
    """Seconds between dispatch passes of `dripcourse run`."""
    batch_size: int = 500
    """Deliveries claimed at once by one pass step."""
    lease_seconds: int = 300
    """How long a claim is held; a claim of a dead worker is taken over after this."""
    retry_first_delay: int = 300
    retry_max_delay: int = 6 * 3600
    retry_give_up_after: int = 3 * 24 * 3600
    confirmation_expiry_hours: int = 72
    """Unconfirmed sign-ups older than this are removed by housekeeping."""
    sqlite_busy_timeout_ms: int = 30_000
    workers: int = 0
    """Sending processes for a large backlog; 0: one per CPU core (at most 4). Small passes
    always run in one process."""
    send_group: int = 100
    """Messages sent between two records of their outcomes (one transaction). A crash can repeat
    at most this many messages of the crashed worker."""
    max_rate: float = 0.0
    """Messages per second at most, over all workers (0: as fast as the server takes them)."""
    max_connections: int = 0
    """SMTP connections at most (one per worker; 0: no limit beyond the worker count)."""
    api_token: str = ""
    """Bearer tokens of the operator API, comma-separated; none set: the API refuses everyone."""
    signup_rate_per_minute: int = 10
    """Sign-ups accepted from one client address per minute; more get 429."""
    admin_session_hours: int = 12
    """How long a sign-in to the dashboard (/admin/) lasts; then the operator signs in again."""
    signin_rate_per_minute: int = 10
    """Sign-in attempts to the dashboard per minute, from one client and for one address alike."""
    invitation_hours: int = 72
    """How long the emailed link that lets a new operator choose a password works."""
    dashboard_sender: str = ""
    """The From address of the dashboard's own mail (invitations); empty: the sender of the
    first course, or dripcourse@ the host of the base URL."""
    bounce_address: str = ""
    """Base of the VERP envelope senders (`bounces@example.com` -> `bounces+42-1a2b3c4d@...`);
    empty: `bounces@` the course sender's domain. A course's `sender.bounce_email` wins."""
    soft_bounce_limit: int = 3
    """Soft bounces (4.x.x) of one subscriber after which the address is suppressed."""
    dkim_key_file: Path | None = None
    """PEM file of the RSA private key that DKIM-signs every message built to be sent. DKIM takes
    all three of dkim_key_file, dkim_selector and dkim_domain, or none."""
    dkim_selector: str = ""
    """The public key is published at `<selector>._domainkey.<domain>` (a DNS TXT record)."""
    dkim_domain: str = ""
    """The signing domain (d=). Given, not guessed from each sender: it is the one domain whose DNS
    holds the key; for DMARC it must be the From domain or a parent of it."""
    feedback_id: str = ""
    """Template of the Feedback-ID header for providers' complaint reports (Gmail's feedback loop),
    such as `{course}:{lesson}:dripcourse`; empty: no such header."""
    media_url: str = ""
    """Where course images are served when a CDN serves them (`https://cdn.example/media`): their
    URLs are then `<media_url>/<course>/<name>`, and `dripcourse media export DIR` writes the files
    to upload there. Empty: the HTTP side serves them at `<base_url>/media/<course>/<name>`."""
    metrics_dir: Path | None = None
    """Where every process writes its counts for `/metrics` (Prometheus multiprocess mode); unset:
    `<file>-metrics/` beside an SQLite database, else a private folder in the temporary folder
    named after the database (`telemetry/folder.py`)."""
    sns_topic_arns: str = ""
    """Amazon SES through SNS: the ARNs of the topics whose notifications `POST /hooks/ses` takes,
    comma-separated; set, turns the hook on."""
    sns_cert_dir: Path | None = None
    """Optional: a folder of SNS signing certificates (PEM), each named as the last part of its
    SigningCertURL (`SimpleNotificationService-<hash>.pem`), read before fetching one from AWS
    (for a deployment that cannot reach AWS). Unset: every certificate is fetched, then cached."""
    postmark_user: str = ""
    """Postmark: the user and password of the basic auth in the webhook's URL
    (`https://user:password@host/hooks/postmark`); both set turn the hook on."""
    postmark_password: str = field(default="", repr=False)
    mailgun_signing_key: str = field(default="", repr=False)
    """Mailgun: the HTTP webhook signing key (Sending > Webhooks); set, turns the hook on."""
    sendgrid_public_key: str = ""
    """SendGrid: the Event Webhook's verification key (base64, as the Signed Event Webhook
    settings show it); set, turns the hook on."""
    webhook_urls: str = ""
    """Endpoints that receive every webhook event, comma-separated (`https://hooks.example/in`);
    `dripcourse webhooks add` keeps more in the database, each with its own secret and events."""
    webhook_secret: str = field(default="", repr=False)
    """The `whsec_<base64>` secret that signs what goes to `webhook_urls` (Standard Webhooks)."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            first_delay=timedelta(seconds=self.retry_first_delay),
            max_delay=timedelta(seconds=self.retry_max_delay),
            give_up_after=timedelta(seconds=self.retry_give_up_after),
        )

    @property
    def sns_topics(self) -> frozenset[str]:
        return frozenset(arn.strip() for arn in self.sns_topic_arns.split(",") if arn.strip())

    @property
    def webhook_endpoints(self) -> tuple[str, ...]:
        """`webhook_urls`, each checked (`domain.webhooks.check_url`)."""
        return tuple(check_url(url) for url in self.webhook_urls.split(",") if url.strip())

    @property
    def api_tokens(self) -> list[str]:
        return [token.strip() for token in self.api_token.split(",") if token.strip()]

    @property
    def dkim(self) -> DkimSettings | None:
        """The DKIM settings; None when DKIM is not configured, `BadInput` when only in part."""
        given = {
            "dkim_key_file": self.dkim_key_file,
            "dkim_selector": self.dkim_selector,
            "dkim_domain": self.dkim_domain,
        }
        if not any(given.values()):
            return None
        missing = [name for name, value in given.items() if not value]
        if missing or self.dkim_key_file is None:
            raise BadInput(
                "DKIM signing needs dkim_key_file, dkim_selector and dkim_domain; "
                f"missing: {', '.join(missing)}"
            )
        return DkimSettings(self.dkim_key_file, self.dkim_selector, self.dkim_domain)

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


_FIELDS = {f.name: f for f in fields(Settings) if f.name != "extra"}
# The real types of the fields (the annotations are strings: `from __future__ import annotations`).
_TYPES: dict[str, Any] = {
    name: kind for name, kind in get_type_hints(Settings).items() if name in _FIELDS
}

DAY = 24 * 3600
RANGES: dict[str, tuple[float, float]] = {
    "dispatch_interval": (1, DAY),
    "batch_size": (1, 100_000),
    "lease_seconds": (1, DAY),
    "retry_first_delay": (1, DAY),
    "retry_max_delay": (1, 30 * DAY),
    "retry_give_up_after": (1, 90 * DAY),
    "confirmation_expiry_hours": (1, 90 * 24),
    "sqlite_busy_timeout_ms": (0, 600_000),
    "workers": (0, 64),
    "send_group": (1, 10_000),
    "max_rate": (0, 100_000),
    "max_connections": (0, 1_000),
    "signup_rate_per_minute": (1, 100_000),
    "admin_session_hours": (1, 30 * 24),
    "signin_rate_per_minute": (1, 1_000),
    "invitation_hours": (1, 30 * 24),
    "soft_bounce_limit": (1, 100),
}
"""The values each number may take, checked at start-up: a negative interval would spin a core,
a batch beyond what a database takes in one statement would fail at the first pass."""


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from the TOML file (if any) overlaid with `DRIPCOURSE_*` variables."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(_read_toml(config_file))
    for name in _FIELDS:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ and environ[env_name] != "":
            values[name] = environ[env_name]
    settings = Settings(
        **{name: _in_range(name, _coerce(name, value)) for name, value in values.items()}
    )
    # All three or none; whether the key is usable is checked where it is read (`mail.dkim`),
    # by the command line at start-up.
    _ = settings.dkim
    _check_feedback_id(settings.feedback_id)
    _check_media_url(settings.media_url)
    _check_providers(settings)
    _check_webhooks(settings)
    return settings


def _check_providers(settings: Settings) -> None:
    # A hook half configured would answer 404 and lose every event without a word: refused here.
    if settings.sns_cert_dir is not None and not settings.sns_topics:
        raise BadInput("setting sns_cert_dir needs sns_topic_arns (the topics to take events of)")
    if settings.sns_cert_dir is not None and not settings.sns_cert_dir.is_dir():
        raise BadInput(f"setting sns_cert_dir: {settings.sns_cert_dir} is not a folder")
    if bool(settings.postmark_user) != bool(settings.postmark_password):
        raise BadInput("Postmark events need both postmark_user and postmark_password, or neither")


def _check_webhooks(settings: Settings) -> None:
    if settings.webhook_endpoints and not settings.webhook_secret:
        raise BadInput("setting webhook_urls needs webhook_secret (whsec_<base64>) to sign with")
    if settings.webhook_secret:
        secret_key(settings.webhook_secret)


def _check_media_url(url: str) -> None:
    # Written into every <img src="...">: an address of the web, and nothing an attribute or a
    # template would read as its own syntax.
    if not url:
        return
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.query
        or parts.fragment
        or any(c.isspace() or c in "\"'<>{}`\\" for c in url)
    ):
        raise BadInput(
            f"setting media_url: {url!r} is not an http(s) address such as "
            "https://cdn.example/media"
        )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"cannot read config file {path}: {exc}") from None
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise BadInput(f"{path}: unknown setting(s): {', '.join(unknown)}")
    return data


def _coerce(name: str, value: Any) -> Any:
    kind = _TYPES[name]
    optional = type(None) in get_args(kind)
    if optional:
        kind = next(arg for arg in get_args(kind) if arg is not type(None))
    try:
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise TypeError(f"expected a number, got {value!r}")
            return float(value)
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise TypeError(f"expected a whole number, got {value!r}")
            return int(value)
        if kind is Path:
            if not isinstance(value, str):
                raise TypeError(f"expected a file or folder name, got {value!r}")
            return None if optional and not value else Path(value)
        if kind is not str:
            raise TypeError(f"no reading of settings of type {kind!r}")  # a field added untested
        if not isinstance(value, str):
            raise TypeError(f"expected text, got {type(value).__name__}")
        return value
    except (TypeError, ValueError) as exc:
        raise BadInput(f"setting {name}: {exc}") from None


def _in_range(name: str, value: Any) -> Any:
    if name not in RANGES:
        return value
    low, high = RANGES[name]
    if not low <= value <= high:  # NaN is in no range either
        shown = (lambda n: f"{n:g}") if isinstance(value, float) else str
        raise BadInput(
            f"setting {name} ({ENV_PREFIX}{name.upper()}): {shown(value)} is out of range; "
            f"use {low:g} to {high:g}"
        )
    return value


FEEDBACK_ID_FIELDS = ("course", "lesson")
"""What a Feedback-ID template may hold: the course slug, and the lesson key (or `confirmation`)."""


def _check_feedback_id(template: str) -> None:
    # Gmail's form is `a:b:c:SenderId`: colon-separated, the last part the same for all our mail.
    # The value stays visible ASCII, so that it is written as it is and never as an encoded-word.
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise BadInput(f"setting feedback_id: {exc}") from None
    allowed = ", ".join(f"{{{name}}}" for name in FEEDBACK_ID_FIELDS)
    for literal, name, spec, conversion in parts:
        if literal and not (literal.isascii() and literal.isprintable() and " " not in literal):
            raise BadInput(f"setting feedback_id: {template!r} may hold only visible ASCII")
        if name is not None and (name not in FEEDBACK_ID_FIELDS or spec or conversion):
            raise BadInput(f"setting feedback_id: unknown field {{{name}}}; use {allowed}")
