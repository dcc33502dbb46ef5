"""`--log-format json` (or DRIPCOURSE_LOG_FORMAT=json): every line on stderr is one JSON object
with time, level, event; text stays the default; no token, password or URL credential passed
through a log call is written, in either format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.telemetry import logs

API_TOKEN = "tok-Wv3distinctive-api-token-55k"
SMTP_PASSWORD = "s3cret-pass-Hq8"
DB_PASSWORD = "db-pw-Zr4distinctive"
SECRETS = [API_TOKEN, SMTP_PASSWORD, DB_PASSWORD]


def json_lines(text: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    for line in lines:
        assert {"time", "level", "event", "logger"} <= set(line), line
    return lines


@pytest.fixture
def authed_smtpd() -> Iterator[CapturingSMTPServer]:
    with CapturingSMTPServer(credentials=("mailuser", SMTP_PASSWORD)) as server:
        yield server


def test_a_sending_tick_logs_json_lines_without_secrets(
    cli_process, cli_env: dict[str, str], authed_smtpd: CapturingSMTPServer, synced
) -> None:
    cli_env["DRIPCOURSE_API_TOKEN"] = API_TOKEN
    cli_env["DRIPCOURSE_EMAIL_BACKEND"] = (
        f"smtp://mailuser:{SMTP_PASSWORD}@127.0.0.1:{authed_smtpd.port}?tls=none"
    )
    cli_env["DRIPCOURSE_LOG_FORMAT"] = "json"
    assert (
        cli_process("subscribe", "ada@example.com", "--course", "runners", "--confirmed").code == 0
    )
    done = cli_process("-v", "tick", "--now", "2030-01-01T12:00:00Z")
    assert done.code == 0, done.err
    assert "1 sent" in done.out
    lines = json_lines(done.err)
    assert any(line["event"].startswith("pass done") for line in lines), lines  # type: ignore[union-attr]
    assert {line["level"] for line in lines} <= {"debug", "info", "warning", "error"}
    for secret in SECRETS:
        assert secret not in done.err


def test_text_is_the_default(cli_process, synced) -> None:
    done = cli_process("-v", "tick", "--now", "2030-01-01T12:00:00Z")
    assert done.code == 0, done.err
    assert " INFO " in done.err and not done.err.lstrip().startswith("{")


def test_an_unknown_format_is_bad_input(cli_process) -> None:
    done = cli_process("--log-format", "xml", "status")
    assert done.code == 2
    assert "xml" in done.err


@pytest.mark.parametrize("form", logs.FORMATS)
def test_secrets_given_to_log_calls_are_not_written(form: str) -> None:
    """Log calls that carry secrets (as arguments, in an exception, in `extra`): the registered
    values, a URL's password and a bearer token come out as [redacted]."""
    logs.keep_secret([API_TOKEN, None, "short"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter() if form == "json" else logs.TextFormatter())
    log = logging.getLogger("dripcourse.test.secrets")
    log.addHandler(handler)
    log.propagate, log.level = False, logging.DEBUG
    try:
        log.info("called with token %s", API_TOKEN, extra={"delivery_id": 42})
        log.warning("cannot reach smtp://mailuser:%s@mail.example:587", SMTP_PASSWORD)
        log.warning("database postgresql+psycopg://app:%s@db/prod is gone", DB_PASSWORD)
        log.info("header was Authorization: Bearer %s", "unregistered-bearer-token-77")
        try:
            raise RuntimeError(f"login failed with {API_TOKEN}")
        except RuntimeError:
            log.exception("sending failed", extra={"worker": f"w1 {API_TOKEN}"})
    finally:
        log.removeHandler(handler)
    written = stream.getvalue()
    for secret in [*SECRETS, "unregistered-bearer-token-77"]:
        assert secret not in written
    assert "smtp://mailuser:[redacted]@mail.example:587" in written
    assert "short" not in logs._SECRETS  # too short to be a secret: ordinary words stay
    if form == "json":
        lines = json_lines(written)
        assert lines[0]["delivery_id"] == 42
        assert lines[0]["level"] == "info"
        assert "RuntimeError" in str(lines[-1]["exception"])
        assert lines[-1]["worker"] == "w1 [redacted]"
