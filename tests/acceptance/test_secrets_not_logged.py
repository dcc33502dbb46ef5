"""Secrets stay out of the logs: with `-v` (INFO), neither the secret key, nor the API token, nor
the SMTP password appears on stdout or stderr of `tick` (which sends mail) or `status`; and the
live HTTP app logs nothing containing the API token it is called with."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from dripcourse.clock import SystemClock
from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.store.db import Database
from dripcourse.web.app import create_app

SECRET_KEY = "sk-Zq7very-distinctive-secret-key-91x"
API_TOKEN = "tok-Wv3distinctive-api-token-55k"
SMTP_USER = "mailuser"
SMTP_PASSWORD = "s3cret-pass-Hq8"
SECRETS = [SECRET_KEY, API_TOKEN, SMTP_PASSWORD]


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port (as tests/web/api_server.py does), with
    uvicorn's access log on, so that a request line would be logged if it carried the token."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="debug", access_log=True, lifespan="off", log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10.0)
        listener.close()


@pytest.fixture
def authed_smtpd() -> Iterator[CapturingSMTPServer]:
    with CapturingSMTPServer(credentials=(SMTP_USER, SMTP_PASSWORD)) as server:
        yield server


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into output:\n{text}"


def test_tick_and_status_do_not_log_secrets(
    cli_process, cli_env: dict[str, str], authed_smtpd: CapturingSMTPServer
) -> None:
    # `cli_process` reads this dict when it runs, so the changes reach the subprocess.
    cli_env["DRIPCOURSE_SECRET_KEY"] = SECRET_KEY
    cli_env["DRIPCOURSE_API_TOKEN"] = API_TOKEN
    cli_env["DRIPCOURSE_EMAIL_BACKEND"] = (
        f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{authed_smtpd.port}?tls=none"
    )
    outputs: list[str] = []
    for args in (
        ("-v", "db", "upgrade"),
        ("-v", "courses", "sync"),
        (
            "-v",
            "subscribe",
            "reader@example.com",
            "--course",
            "runners",
            "--confirmed",
            "--now",
            "2026-03-02T15:00:00Z",
        ),
    ):
        result = cli_process(*args)
        assert result.code == 0, result
        outputs += [result.out, result.err]

    tick = cli_process("-v", "tick", "--now", "2026-03-10T15:00:00Z")
    assert tick.code == 0, tick
    assert "INFO" in tick.err, "with -v the run logs at INFO"
    assert [list(m.rcpt_tos) for m in authed_smtpd.messages] == [["reader@example.com"]], (
        "the lesson went out through the authenticated server"
    )
    status = cli_process("-v", "status", "--now", "2026-03-10T15:00:00Z")
    assert status.code == 0, status
    assert_no_secrets(*outputs, tick.out, tick.err, status.out, status.err)


def test_tick_with_a_wrong_password_does_not_log_it(
    cli_process, cli_env: dict[str, str], authed_smtpd: CapturingSMTPServer
) -> None:
    """A refused login is logged as a failure, still without the password in it."""
    wrong = "wr0ng-pass-Kk2"
    cli_env["DRIPCOURSE_SECRET_KEY"] = SECRET_KEY
    cli_env["DRIPCOURSE_EMAIL_BACKEND"] = (
        f"smtp://{SMTP_USER}:{wrong}@127.0.0.1:{authed_smtpd.port}?tls=none"
    )
    for args in (
        ("db", "upgrade"),
        ("courses", "sync"),
        (
            "subscribe",
            "r@example.com",
            "--course",
            "runners",
            "--confirmed",
            "--now",
            "2026-03-02T15:00:00Z",
        ),
    ):
        assert cli_process(*args).code == 0
    tick = cli_process("-v", "tick", "--now", "2026-03-10T15:00:00Z")
    assert "Traceback" not in tick.err
    assert authed_smtpd.messages == []
    for text in (tick.out, tick.err):
        assert wrong not in text, text
        assert SECRET_KEY not in text, text


def test_http_app_does_not_log_the_api_token(
    settings: Settings, synced: Database, caplog: pytest.LogCaptureFixture
) -> None:
    live_settings = settings.with_overrides(api_token=API_TOKEN, secret_key=SECRET_KEY)
    app = create_app(live_settings, synced, SystemClock())
    caplog.set_level(logging.DEBUG, logger="uvicorn")
    caplog.set_level(logging.DEBUG, logger="uvicorn.access")
    caplog.set_level(logging.DEBUG, logger="uvicorn.error")
    caplog.set_level(logging.DEBUG, logger="dripcourse")
    with serving(app) as url:
        good = {"Authorization": f"Bearer {API_TOKEN}"}
        bad = {"Authorization": f"Bearer {API_TOKEN}-wrong"}
        responses = [
            httpx.get(f"{url}/api/v1/courses", headers=good),
            httpx.get(f"{url}/api/v1/subscribers", headers=good),
            httpx.get(f"{url}/api/v1/courses/nope", headers=good),
            httpx.post(f"{url}/api/v1/subscribers", headers=good, json={"email": "x"}),
            httpx.get(f"{url}/api/v1/courses", headers=bad),
        ]
    assert [r.status_code for r in responses[:3]] == [200, 200, 404]
    assert responses[4].status_code == 401
    for response in responses:
        assert API_TOKEN not in response.text
    assert caplog.records, "the uvicorn and dripcourse loggers were captured"
    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r} {getattr(r, 'exc_text', '')}" for r in caplog.records
    )
    assert API_TOKEN not in logged, logged
    assert SECRET_KEY not in logged, logged
