"""A SendGrid batch, validly signed, whose events are hostile or repeat each other: each event is
answered on its own, none makes the request fail, and only Ada, whose lesson bounced, is
suppressed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from provider_signing import fixture, sendgrid_headers
from test_provider_hooks_http import ADA, suppressed

from dripcourse.clock import FixedClock
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery

pytest_plugins = ["test_provider_hooks_http"]


def event(**changes: Any) -> dict[str, Any]:
    return dict(fixture("sendgrid_events.json")[0]) | changes


@pytest.mark.both_databases
def test_every_event_of_a_hostile_batch_is_answered_alone(
    client: TestClient, sent: Delivery, synced: Database, clock: FixedClock
) -> None:
    hostile: list[Any] = [
        event(sg_event_id="e-hard", **{"smtp-id": sent.message_id}),
        # The same delivery again, by another event: a complaint after the hard bounce.
        event(event="spamreport", sg_event_id="e-spam", **{"smtp-id": sent.message_id}),
        event(sg_event_id="e-again", **{"smtp-id": sent.message_id}),
        event(sg_event_id=10**30, email=["x@example.com"], **{"smtp-id": {"a": 1}}),
        event(sg_event_id="e-nul\x00", email="bruno@example.com\r\nBcc: eve@example.com"),
        event(sg_event_id="e-nested", reason=[[[[{"a": [1] * 10}]]]], type={"b": None}),
        event(sg_event_id="e-big", timestamp=1e308, sg_message_id=-(10**40)),
        event(sg_event_id="e-stranger", email="stranger@elsewhere.example"),
        "not an event",
        None,
        [],
    ]
    body = json.dumps(hostile).encode()
    answer = client.post(
        "/hooks/sendgrid", content=body, headers=sendgrid_headers(body, clock.now())
    )
    assert answer.status_code == 200, answer.text
    outcomes = answer.json()["outcomes"]
    assert len(outcomes) == len(hostile)
    assert outcomes[0] == "hard"
    assert suppressed(synced) == [ADA]
