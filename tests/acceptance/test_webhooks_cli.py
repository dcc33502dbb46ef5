"""`dripcourse webhooks ...` as an operator uses them: the real CLI, a real SQLite file, a real
HTTP receiver on loopback verifying with `standardwebhooks`, time moved with `--now`. Bad input is
one line on stderr and exit status 2."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from webhook_receiver import Receiver, verify

from dripcourse.domain.webhooks import new_secret

ADA = "ada@example.com"
SIGN_UP = "2026-03-02T15:00:00Z"
LESSON_ONE = "2026-03-03T07:00:00Z"  # 08:00 in Berlin


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def ready(cli) -> None:
    assert cli("db", "upgrade").code == 0
    assert cli("courses", "sync").code == 0


def sign_up(cli) -> None:
    done = cli(
        "subscribe", ADA, "--course", "runners", "--timezone", "Europe/Berlin", "--confirmed",
        "--now", SIGN_UP,
    )  # fmt: skip
    assert done.code == 0, done.err


def test_add_list_test_and_remove(cli, receiver):
    ready(cli)
    added = cli("webhooks", "add", receiver.url, "--events", "lesson.sent,subscriber.created")
    assert added.code == 0, added.err
    secret = re.search(r"(whsec_\S+)", added.out).group(1)  # type: ignore[union-attr]
    listed = cli("webhooks", "list")
    assert listed.out.split() == [receiver.url, "command", "lesson.sent,subscriber.created"]
    assert "whsec_" not in listed.out  # the secret is shown once, when made

    tested = cli("webhooks", "test", receiver.url, "--now", SIGN_UP)
    assert tested.code == 0 and "delivered: HTTP 200" in tested.out
    [request] = receiver.accepted()
    payload = verify(secret, request, datetime(2026, 3, 2, 15, tzinfo=UTC))
    assert payload["type"] == "webhook.test"

    assert cli("webhooks", "add", receiver.url).code != 0  # once
    assert cli("webhooks", "remove", receiver.url).code == 0
    assert cli("webhooks", "list").out.strip() == "no webhook endpoints"


def test_a_run_delivers_signed_events_and_failures_are_listed(cli, receiver):
    ready(cli)
    secret = new_secret()
    assert cli("webhooks", "add", receiver.url, "--secret", secret).code == 0
    sign_up(cli)
    receiver.down = True
    assert cli("tick", "--now", LESSON_ONE).code == 0
    failures = cli("webhooks", "failures")
    assert failures.code == 0
    [line] = failures.out.splitlines()  # Ada's first event; the rest wait behind it
    assert "subscriber.created" in line and "HTTP 503" in line and "next 2026-03-03" in line
    assert "\x1b" not in failures.out and "Set-Cookie: x=1" in line and len(line) < 400

    receiver.down = False
    assert cli("tick", "--now", "2026-03-03T08:00:00Z").code == 0
    kinds = [
        verify(secret, each, datetime(2026, 3, 3, 8, tzinfo=UTC))["type"]
        for each in receiver.accepted()
    ]
    assert kinds == ["subscriber.created", "subscriber.confirmed", "lesson.sent"]
    assert cli("webhooks", "failures").out.strip() == "no failed webhook deliveries"


def test_endpoints_from_the_settings_receive_events(cli, receiver, monkeypatch):
    ready(cli)
    secret = new_secret()
    monkeypatch.setenv("DRIPCOURSE_WEBHOOK_URLS", receiver.url)
    monkeypatch.setenv("DRIPCOURSE_WEBHOOK_SECRET", secret)
    assert cli("webhooks", "list").out.split() == [receiver.url, "settings", "all", "events"]
    assert cli("webhooks", "remove", receiver.url).code == 2  # remove it from the settings
    sign_up(cli)
    assert cli("tick", "--now", SIGN_UP).code == 0
    [created, _confirmed] = receiver.accepted()
    assert verify(secret, created, datetime(2026, 3, 2, 15, tzinfo=UTC))["data"]["email"] == ADA
    monkeypatch.delenv("DRIPCOURSE_WEBHOOK_URLS")
    assert cli("webhooks", "list").out.strip() == "no webhook endpoints"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("add", "ftp://hooks.example/in"), "http:// or https://"),
        (("add", "https://user:pw@hooks.example/in"), "no user or password"),
        (("add", "https://hooks.example/in", "--events", "lesson.opened"), "unknown webhook event"),
        (("add", "https://hooks.example/in", "--secret", "hunter2"), "whsec_"),
        (("test", "https://unknown.example/in"), "no webhook endpoint"),
        (("remove", "https://unknown.example/in"), "no webhook endpoint"),
    ],
)
def test_bad_input_is_one_line_and_status_2(cli, args, says):
    ready(cli)
    done = cli("webhooks", *args)
    assert done.code == 2, done
    assert says in done.err and len(done.err.strip().splitlines()) == 1


def test_bad_webhook_settings_are_refused_at_start(cli, monkeypatch):
    monkeypatch.setenv("DRIPCOURSE_WEBHOOK_URLS", "https://hooks.example/in")
    done = cli("webhooks", "list")
    assert done.code == 2 and "webhook_secret" in done.err
