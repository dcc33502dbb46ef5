"""`POST /hooks/<provider>`: bounce and complaint events from Amazon SES (through SNS), Postmark,
Mailgun and SendGrid. Thin: the request's bytes and headers go to `app/provider_events`, which
verifies and reads them, then its events are applied in one transaction.

Every answer is JSON: 200 with each event's outcome (a duplicate or an unknown message too, so the
provider stops retrying), 400 for a body that is not what the provider sends, 403 for a request
that does not prove it comes from the provider (logged once, nothing written), 404 for a provider
not configured here, 413 for a body over `MAX_HOOK_BODY`, and 503 when the proof cannot be checked
now (SNS's signing certificate could not be fetched: nothing written, and SNS retries).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from dripcourse.app import provider_events
from dripcourse.errors import DripcourseError, Unauthentic, VerificationUnavailable
from dripcourse.web.context import WebContext, context_of, status_of

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
Context = Annotated[WebContext, Depends(context_of)]

PREFIX = "/hooks/"
MAX_HOOK_BODY = 1024 * 1024
"""A SendGrid batch of a thousand events is some hundreds of kilobytes; SES, Postmark and Mailgun
send one event of a few kilobytes."""


@router.post("/hooks/{provider}")
async def hook(provider: str, request: Request, context: Context) -> JSONResponse:
    body = await request.body()
    headers = {name.lower(): value for name, value in request.headers.items()}
    return await run_in_threadpool(_handle, provider, body, headers, context)


def _handle(
    provider: str, body: bytes, headers: dict[str, str], context: WebContext
) -> JSONResponse:
    now = context.clock.now()
    try:
        events, subscribe_url = provider_events.read_request(
            provider, body, headers, now, context.settings, context.sns_certificates
        )
        with context.database.transaction() as session:
            answer = provider_events.apply_events(session, provider, events, now, context.settings)
    except VerificationUnavailable as exc:
        log.warning("could not verify a %s event now: %s", provider, exc)
        return JSONResponse({"error": f"try again later: {exc}"}, status_code=503)
    except Unauthentic as exc:
        log.warning("refused a %s event: %s", provider, exc)
        return JSONResponse({"error": f"refused: {exc}"}, status_code=403)
    except DripcourseError as exc:
        return JSONResponse({"error": str(exc)}, status_code=status_of(exc))
    if subscribe_url:
        # Not fetched by us: the operator opens it (docs/deliverability.md).
        log.warning(
            "Amazon SNS asks to confirm a subscription of /hooks/ses; open this URL once to "
            "confirm it: %r",
            subscribe_url[:2000],
        )
        return JSONResponse({"status": "subscription confirmation logged for the operator"})
    return JSONResponse({"outcomes": answer.outcomes})
