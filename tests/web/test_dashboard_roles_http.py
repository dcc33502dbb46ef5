"""The roles matrix, over every form the dashboard has: each POST under /admin/, sent by hand with
a valid token by a viewer, an editor and an admin. A viewer changes nothing, an editor runs
subscribers and lessons, an admin also manages operators. A new form that is not in the matrix
fails this test until someone says who may use it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select
from test_dashboard_people_http import people, signed_in, token_of

from dripcourse.app import operators
from dripcourse.clock import FixedClock
from dripcourse.domain.roles import Role
from dripcourse.store.models import Subscriber
from dripcourse.web.app import create_app

VIEWER, EDITOR, ADMIN = Role.VIEWER, Role.EDITOR, Role.ADMIN
ANYONE = None
"""Forms sent before or without a role: signing in and out, choosing a password."""

MATRIX: dict[str, tuple[Role | None, dict[str, str]]] = {
    "/admin/login": (ANYONE, {}),
    "/admin/logout": (ANYONE, {}),
    "/admin/invitation": (ANYONE, {}),
    "/admin/subscribers/{subscriber_id}/enrollments/{course}/{action}": (EDITOR, {}),
    "/admin/subscribers/{subscriber_id}/enrollments/{course}/queue": (EDITOR, {"lesson": "2"}),
    "/admin/subscribers/{subscriber_id}/enrollments/{course}/fields": (EDITOR, {}),
    "/admin/subscribers/{subscriber_id}/details": (EDITOR, {"name": "N", "timezone": "UTC"}),
    "/admin/subscribers/{subscriber_id}/forget": (EDITOR, {"confirm": "p000@example.com"}),
    "/admin/deliveries/{delivery_id}/retry": (EDITOR, {}),
    "/admin/subscribers/new": (
        EDITOR,
        {"email": "new@example.com", "timezone": "UTC", "course": "runners", "confirmed": "yes"},
    ),
    "/admin/subscribers/import": (EDITOR, {}),
    "/admin/subscribers/export": (EDITOR, {}),
    "/admin/courses/{slug}/lessons/{key}/test": (EDITOR, {}),
    "/admin/operators": (ADMIN, {"email": "new@clinic.example", "role": "viewer"}),
    "/admin/operators/{operator_id}/role": (ADMIN, {"role": "editor"}),
    "/admin/operators/{operator_id}/remove": (ADMIN, {}),
    "/admin/operators/{operator_id}/invite": (ADMIN, {}),
}
"""Each form: the least role that may send it, and fields that make a sensible request."""

PAGES: dict[str, Role | None] = {
    "/admin/login": ANYONE,
    "/admin/invitation": ANYONE,
    "/admin/": VIEWER,
    "/admin/courses": VIEWER,
    "/admin/courses/{slug}": VIEWER,
    "/admin/courses/{slug}/lessons/{key}": VIEWER,
    "/admin/subscribers": VIEWER,
    "/admin/subscribers/{subscriber_id}": VIEWER,
    "/admin/deliveries": VIEWER,
    "/admin/imports/{job_id}": VIEWER,
    "/admin/subscribers/new": EDITOR,
    "/admin/subscribers/import": EDITOR,
    "/admin/operators": ADMIN,
    "/admin/audit": ADMIN,
}
"""Each page: the least role that may see it. A viewer sees everything but what only serves a
change, and the file of everyone's address (an export leaves the system)."""

SAMPLE_PATH = {
    "/admin/subscribers/{subscriber_id}/enrollments/{course}/{action}": ["pause", "resume"],
}
RANK = {VIEWER: 0, EDITOR: 1, ADMIN: 2}


def admin_routes(settings, database, method: str) -> set[str]:
    app = create_app(settings, database, FixedClock(datetime.now(UTC)))
    return {
        route.path
        for route in _routes(app.routes)
        if method in route.methods and route.path.startswith("/admin")
    }


def _routes(routes) -> Iterator[APIRoute]:
    """Every route, also those of included routers (which FastAPI may keep as one entry)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)


def test_every_form_and_page_of_the_dashboard_is_in_the_matrix(settings, synced):
    assert admin_routes(settings, synced, "POST") == set(MATRIX)
    assert admin_routes(settings, synced, "GET") == set(PAGES)


@pytest.mark.parametrize("role", [VIEWER, EDITOR, ADMIN])
def test_each_role_may_send_exactly_the_forms_of_its_rank(live_server, role):
    people(live_server, 1)
    with live_server.database.transaction() as session:
        person = session.scalar(select(Subscriber.id))
        other = operators.add_operator(
            session, "other@clinic.example", VIEWER, None, datetime.now(UTC), "set-up"
        ).id
    values = {
        "subscriber_id": str(person),
        "course": "runners",
        "operator_id": str(other),
        "delivery_id": "1",
        "slug": "runners",
        "key": "2",
        "job_id": "no-such-import",
    }
    with signed_in(live_server, role) as browser:
        token = token_of(browser)
        for template, (least, fields) in MATRIX.items():
            if least is ANYONE:
                continue
            for action in SAMPLE_PATH.get(template, [""]):
                path = template.format(**values, action=action)
                answer = browser.post(path, data={**fields, "csrf": token})
                if RANK[role] < RANK[least]:
                    assert answer.status_code == 403, (role, path)
                else:
                    assert answer.status_code != 403 and answer.status_code < 500, (role, path)
        for template, least in PAGES.items():
            if least is ANYONE:
                continue
            path = template.format(**values)
            answer = browser.get(path)
            if RANK[role] < RANK[least]:
                assert answer.status_code == 403, (role, path)
            else:
                assert answer.status_code in (200, 404), (role, path)
