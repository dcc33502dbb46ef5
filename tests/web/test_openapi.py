"""The operator API keeps the promises of its own /openapi.json, checked by schemathesis.

The live server (uvicorn on loopback, a real SQLite file with the runners course and a few people)
is sent generated requests for every operation it documents, valid and invalid ones, and every
answer goes through all of schemathesis's checks: no 5xx, a documented status code, content type
and headers, a body that matches the documented schema, valid data accepted, invalid data
rejected, and the token actually required.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import schemathesis
from api_server import serving
from hypothesis import HealthCheck, settings

from dripcourse.app import subscriptions
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.store.db import Database
from dripcourse.web.app import create_app

PEOPLE = [
    ("ada@example.com", "America/Toronto", True),
    ("bruno@example.com", "Europe/Berlin", True),
    ("chiara@example.com", "Australia/Sydney", False),
]


def served_document() -> dict[str, Any]:
    """What the app serves at /openapi.json. It is made from the routes alone (no database, no
    settings are read); `live_api` checks that the live server serves exactly this document."""
    app = create_app(Settings(), Database("sqlite://"), FixedClock(datetime.now(UTC)))
    return app.openapi()


# The schema is loaded when the module is collected, not from a fixture: schemathesis's lazy
# `from_fixture` loader does not work with pytest 9 (it sets `node._nodeid`, which pytest 9 no
# longer has). Hence the equality check in `live_api`.
schema = schemathesis.openapi.from_dict(
    served_document(),
    config=schemathesis.Config.from_dict(
        {
            # The token as schemathesis's own auth for the documented scheme (not a header of
            # ours): then it also sends requests without it, and knows they must be refused.
            "auth": {"openapi": {"HTTPBearer": {"bearer": "t1"}}},
            "checks": {
                # 400 is the documented answer to input of the documented shape that is still not
                # valid (an address email-validator refuses, a zone not in the IANA database, a
                # line break in a name, both `to` and `all_active`): JSON Schema cannot express
                # these rules, so well-formed data may be refused with 400 as with 404 and 409.
                # The rest is schemathesis's default.
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]
                }
            },
        }
    ),
)


@pytest.fixture
def live_api(settings: Settings, synced: Database, clock: FixedClock) -> Iterator[str]:
    """The base URL of the app served on loopback, with tokens t1 and t2 and three people."""
    with synced.transaction() as session:
        # A few people, so that the small ids schemathesis tries first (1, 2, 3) name someone.
        for email, zone, confirmed in PEOPLE:
            subscriptions.subscribe(
                session,
                email=email,
                course_slug="runners",
                timezone=zone,
                confirmed=confirmed,
                now=clock.now(),
            )
    app = create_app(settings.with_overrides(api_token="t1,t2"), synced, clock)
    with serving(app) as url:
        # A generous timeout: on a busy machine the first answer (the schema made) may take seconds.
        assert httpx.get(f"{url}/openapi.json", timeout=60).json() == schema.raw_schema
        yield url


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    # One server and database per operation, kept across its generated requests on purpose: state
    # builds up as it does in a real deployment (people deleted, paused, queued).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_does_what_its_schema_says(case: schemathesis.Case, live_api: str) -> None:
    case.call_and_validate(base_url=live_api)
