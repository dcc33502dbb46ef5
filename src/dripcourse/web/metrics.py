"""`GET /metrics`: the Prometheus text format, for the operator's Prometheus only.

It answers only with one of the operator API's bearer tokens (the same check as `/api/v1`,
`api.require_token`; 401 otherwise): the counts by course say what the business does. Prometheus
sends the token with `authorization: {credentials: ...}` in its scrape config.

What it shows: the counts of every process of the deployment (`telemetry.folder`: the files of
the multiprocess folder, added up), or of this process alone when no folder is set; and two
gauges read from the database at each scrape (`app.backlog`), since the messages due now are a
state, not something any one process could count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from dripcourse.app.backlog import backlog
from dripcourse.clock import Clock
from dripcourse.store.db import Database
from dripcourse.telemetry import folder
from dripcourse.telemetry.metrics import metrics as defined_metrics
from dripcourse.web.api import bearer, require_token
from dripcourse.web.context import context_of

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


class BacklogCollector(Collector):
    """Messages due now and the age of the oldest of them, read from the database at scrape."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock.now()
        try:
            with self.database.read() as session:
                found = backlog(session, now)
        except SQLAlchemyError as exc:
            # The counts are still worth having; /readyz says what is wrong with the database.
            log.warning("metrics: the backlog could not be read: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily(
            "dripcourse_messages_due",
            "Messages due now and not yet sent: owed lessons and deliveries waiting for their "
            "attempt.",
            value=found.due,
        )
        yield GaugeMetricFamily(
            "dripcourse_oldest_due_age_seconds",
            "How long the oldest message due now has been due (0 when none is).",
            value=found.oldest_age_seconds(now),
        )


class ThisProcess(Collector):
    """The metrics of this process alone, when no multiprocess folder is set."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def exposition(database: Database, clock: Clock) -> bytes:
    defined_metrics()  # so that every metric shows, at zero, before anything was counted
    registry = CollectorRegistry(auto_describe=False)
    shared = folder.current()
    if shared is not None and shared.is_dir():
        files: Any = MultiProcessCollector  # prometheus_client leaves it unannotated
        files(registry, path=str(shared))
    else:
        registry.register(ThisProcess())
    registry.register(BacklogCollector(database, clock))
    return generate_latest(registry)


@router.get("/metrics")
async def scrape(request: Request) -> Response:
    require_token(request, await bearer(request))
    context = context_of(request)
    body = await run_in_threadpool(exposition, context.database, context.clock)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
