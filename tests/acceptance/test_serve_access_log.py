"""`dripcourse serve` writes one line per request (method, path, status, time) unless `-q`, and
never a link's token, a query string or an address (issue 12)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

TOKEN = "eyJlIjoxfQ.forged-token-that-must-not-be-logged"


def serve(cli_env, tmp_path, *extra):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    executable = shutil.which("dripcourse", path=os.path.dirname(sys.executable))
    process = subprocess.Popen(
        [executable or "dripcourse", "serve", "--port", str(port), "--no-scheduler", *extra],
        env={**os.environ, **cli_env},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # a hang guard: a busy machine may be slow to start
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/healthz-not-a-route", timeout=1)
            return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    pytest.fail("dripcourse serve did not answer")


def visit_and_stop(process, url):
    httpx.get(f"{url}/subscribe", params={"course": "runners"})
    httpx.get(f"{url}/confirm/{TOKEN}")
    httpx.get(f"{url}/api/v1/subscribers", params={"email": "ada@example.com"})
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises the signal (as systemd expects of a service).
    assert process.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
    return err


@pytest.fixture
def migrated(cli):
    assert cli("db", "upgrade").code == 0
    assert cli("courses", "sync").code == 0


def test_each_request_is_one_line_without_tokens_or_personal_data(migrated, cli_env, tmp_path):
    err = visit_and_stop(*serve(cli_env, tmp_path))
    lines = err.splitlines()
    assert any(line.startswith("GET /subscribe 200 ") and line.endswith(" ms") for line in lines)
    assert any(line.startswith("GET /confirm/{token} 400 ") for line in lines), err
    assert any(line.startswith("GET /api/v1/subscribers 401 ") for line in lines), err
    assert any(line.startswith("GET - 404 ") for line in lines), err
    assert "forged-token" not in err and "ada@example.com" not in err and "?" not in err


def test_quiet_writes_no_line_per_request(migrated, cli_env, tmp_path):
    err = visit_and_stop(*serve(cli_env, tmp_path, "-q"))
    assert "GET /" not in err and " ms" not in err
