"""The log formats: text (the default, for a person at a terminal) and JSON (one object a line, for
log shippers), both with secrets taken out.

A JSON line holds `time` (UTC, ISO 8601), `level`, `logger`, `event` (the message), the ids given
to the log call as `extra` (`delivery_id`, `enrollment_id`, `worker`...), and `exception` when
there is one. Every string written, in either format, goes through `scrub` first: the values
registered as secret at start-up (the secret key, the API tokens, the passwords of the database
and SMTP URLs, the webhook secret, Postmark's password and Mailgun's signing key), the password
part of any URL (`smtp://user:...@host`), and a bearer token are replaced by `[redacted]`. Logs
travel further than the database; a secret that reaches one through an exception's text must not
go with it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from dripcourse.config import Settings

FORMATS = ("text", "json")
REDACTED = "[redacted]"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/@:]*):[^\s/@]*@")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
_SECRETS: set[str] = set()
# Shorter values would blank out ordinary words: a secret that short is no secret anyway.
_SHORTEST_SECRET = 6

# What every LogRecord has; anything else on a record came from a call's `extra`.
# uvicorn's `color_message` is its message again with terminal colours: noise for a shipper.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
}


def keep_secret(values: Iterable[str | None]) -> None:
    """Never write these values (and their URL-decoded forms) in a log line."""
    for value in values:
        if value and len(value) >= _SHORTEST_SECRET:
            _SECRETS.update({value, unquote(value)})


def scrub(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _URL_PASSWORD.sub(rf"\g<head>:{REDACTED}@", text)
    return _BEARER.sub(rf"\1 {REDACTED}", text)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": scrub(record.getMessage()),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_") and name not in line:
                line[name] = _plain(value)
        if record.exc_info:
            line["exception"] = scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = scrub(record.exc_text)
        return json.dumps(line, ensure_ascii=False, default=str)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub(str(value))


def configure(log_format: str, level: int, stream: TextIO | None = None) -> None:
    """The root logger writes `log_format` lines at `level` and above to stderr (or `stream`).

    Like `logging.basicConfig`, this does nothing when the root logger already has handlers of
    someone else's (a program that embeds dripcourse, pytest's capture): theirs are kept.
    """
    if log_format not in FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; use one of {FORMATS}")
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if getattr(handler, _OURS, False)]
    if len(ours) != len(root.handlers):
        return
    for old in ours:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _OURS, True)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)


_OURS = "_dripcourse_handler"


def secret_values(settings: Settings) -> list[str | None]:
    """What the settings hold that no log line may show."""
    passwords = []
    for url in (settings.database_url, settings.email_backend):
        try:
            passwords.append(urlsplit(url).password)
        except ValueError:  # not a URL at all: the settings' own check says so
            continue
    return [
        settings.secret_key,
        *settings.api_tokens,
        *passwords,
        settings.webhook_secret,
        settings.postmark_password,
        settings.mailgun_signing_key,
    ]
