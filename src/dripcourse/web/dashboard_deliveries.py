"""The dashboard's Deliveries page: what failed and what waits to be tried again, with the server's
reasons, a "retry now" per delivery, and the recent bounces and complaints. A thin shell over
`app/deliveries.py` (the command line's `dripcourse deliveries`), with the sign-in, CSRF and role
checks of `dashboard.py`.

The reasons shown were written by remote mail servers and may be hostile: they are text, escaped by
the templates' autoescape like every other value.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dripcourse.app import audit, deliveries
from dripcourse.domain.roles import Permission, Role, may
from dripcourse.errors import DripcourseError
from dripcourse.store.models import Operator
from dripcourse.web.context import status_of
from dripcourse.web.dashboard import (
    MAX_FIELD,
    MAX_ID,
    Context,
    Signed,
    allowed,
    check_csrf,
    render,
)

router = APIRouter(prefix="/admin", include_in_schema=False)

PAGE_SIZE = 50
RECENT = 20


@router.get("/deliveries", response_class=HTMLResponse)
def deliveries_page(
    request: Request,
    context: Context,
    operator: Signed,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    allowed(operator, Permission.VIEW)
    return _page(request, context, operator, before)


@router.post("/deliveries/{delivery_id}/retry")
def retry(
    request: Request,
    context: Context,
    operator: Signed,
    delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    before: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    """Make one failed or retrying delivery due now and wake the scheduler; or the page again
    with the reason beside that delivery when the operation refuses."""
    check_csrf(request, csrf)
    allowed(operator, Permission.CHANGE_LESSONS)
    try:
        with context.database.transaction() as session:
            deliveries.retry_now(
                session,
                delivery_id,
                context.clock.now(),
                actor=audit.operator_actor(operator.email),
            )
    except DripcourseError as exc:
        return _page(
            request,
            context,
            operator,
            before,
            error=(delivery_id, str(exc)),
            status=status_of(exc),
        )
    context.wake()
    back = f"/admin/deliveries?before={before}" if before else "/admin/deliveries"
    return RedirectResponse(f"{back}#delivery-{delivery_id}", status_code=303)


def _page(
    request: Request,
    context: Context,
    operator: Operator,
    before: int | None,
    error: tuple[int, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    with context.database.read() as session:
        page = deliveries.in_trouble(session, before=before, limit=PAGE_SIZE)
        bounces = deliveries.recent_bounces(session, limit=RECENT)
        suppressions = deliveries.recent_suppressions(session, limit=RECENT)
    return render(
        request,
        operator,
        "admin_deliveries.html",
        status_code=status,
        title="Deliveries",
        page=page,
        before=before,
        bounces=bounces,
        suppressions=suppressions,
        error=error,
        error_placed=error is not None and any(r.delivery_id == error[0] for r in page.rows),
        may_retry=may(Role(operator.role), Permission.CHANGE_LESSONS),
        zone_of=ZoneInfo,
    )
