"""`/metrics` over real HTTP: only with an operator API token; the Prometheus text format (read
back with prometheus_client's own parser); counts made in other processes (a real `dripcourse
tick` beside a real `dripcourse serve`) show up; the backlog is read from the database."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from api_server import serving
from prometheus_client.parser import text_string_to_metric_families
from webhook_receiver import Receiver

from dripcourse.app.subscriptions import subscribe
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.store.db import Database
from dripcourse.web.app import create_app

TOKEN = "metrics-token-Pq9x"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(url: str, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}/metrics", headers=headers, timeout=30)


@pytest.fixture
def with_token(settings: Settings) -> Settings:
    return settings.with_overrides(api_token=f"other-token-1234,{TOKEN}")


def test_metrics_need_an_operator_token(with_token: Settings, synced: Database, clock) -> None:
    with serving(create_app(with_token, synced, clock)) as url:
        nothing, wrong, empty = scrape(url, None), scrape(url, TOKEN[:-1]), scrape(url, TOKEN + "x")
        basic = httpx.get(f"{url}/metrics", headers={"Authorization": "Basic " + TOKEN})
        right = scrape(url)
    for refused in (nothing, wrong, empty, basic):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "dripcourse_" not in refused.text
        assert refused.json() == {"error": "a valid bearer token is required"}
    assert right.status_code == 200
    assert right.headers["content-type"].startswith("text/plain; version=")


def test_metrics_refuse_everyone_when_no_token_is_set(settings: Settings, synced, clock) -> None:
    with serving(create_app(settings, synced, clock)) as url:
        assert scrape(url, "").status_code == 401
        assert scrape(url, "anything").status_code == 401


def test_sign_ups_count_and_the_backlog_is_read_at_scrape(
    with_token: Settings, synced: Database, clock: FixedClock
) -> None:
    start = clock.now()
    with serving(create_app(with_token, synced, clock)) as url:
        before = scrape(url).text
        for email in ("ada@example.com", "bo@example.com"):
            with synced.transaction() as session:
                subscribe(session, email=email, course_slug="runners", now=start, confirmed=True)
        with pytest.raises(RuntimeError), synced.transaction() as session:
            subscribe(session, email="cy@example.com", course_slug="runners", now=start)
            raise RuntimeError("rolled back: this sign-up never happened")
        clock.set(start + timedelta(days=30))
        after = scrape(url).text
    counted = value(after, "dripcourse_signups_total", course="runners") - value(
        before, "dripcourse_signups_total", course="runners"
    )
    assert counted == 2
    assert value(before, "dripcourse_messages_due") == 0
    assert value(after, "dripcourse_messages_due") == 2
    age = value(after, "dripcourse_oldest_due_age_seconds")
    assert 0 < age <= timedelta(days=30).total_seconds()


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def dripcourse() -> list[str]:
    executable = shutil.which("dripcourse", path=os.path.dirname(sys.executable))
    return [executable] if executable else [sys.executable, "-m", "dripcourse"]


def test_a_tick_in_another_process_shows_in_the_metrics_of_serve(
    cli_env: dict[str, str], synced: Database, tmp_path: Path, stack: ExitStack
) -> None:
    """Multiprocess mode for real: `serve` and `tick` are separate processes that share nothing
    but the folder beside the SQLite file; what `tick` counted is in what `serve` answers."""
    receiver = stack.enter_context(Receiver())
    env = {
        **os.environ,
        **cli_env,
        "DRIPCOURSE_API_TOKEN": TOKEN,
        "DRIPCOURSE_WEBHOOK_URLS": receiver.url,
        "DRIPCOURSE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # as an operator's shell would have it
    env["DRIPCOURSE_EMAIL_BACKEND"] = f"file://{tmp_path / 'outbox'}"

    def run(*args: str) -> str:
        done = subprocess.run(
            [*dripcourse(), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    port = free_port()
    server = subprocess.Popen(
        [*dripcourse(), "serve", "--port", str(port), "--no-scheduler", "-q"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a hang guard for a busy machine, not a speed test
        while True:
            try:
                assert httpx.get(f"{url}/healthz", timeout=1).status_code == 200
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"serve did not start: {server.communicate()[1]}")
                time.sleep(0.1)
        run("subscribe", "ada@example.com", "--course", "runners", "--confirmed")
        printed = run("tick", "--now", "2030-01-01T12:00:00Z")
        assert "1 sent" in printed
        text = scrape(url).text
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
    assert value(text, "dripcourse_signups_total", course="runners") == 1
    assert value(text, "dripcourse_messages_total", course="runners", outcome="sent") == 1
    assert value(text, "dripcourse_pass_duration_seconds_count") == 1
    # subscriber.created, subscriber.confirmed and lesson.sent reached the receiver in that pass.
    assert len(receiver.accepted()) == 3
    assert value(text, "dripcourse_webhook_deliveries_total", outcome="delivered") == 3
    assert list((tmp_path / "dripcourse.db-metrics").glob("counter_*.db"))
