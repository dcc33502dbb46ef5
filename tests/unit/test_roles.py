"""The roles of the dashboard's operators: one table, and what each role may do."""

from __future__ import annotations

import pytest

from dripcourse.domain.roles import Permission, Role, may, parse_role

EXPECTED = {
    Role.VIEWER: {Permission.VIEW},
    Role.EDITOR: {Permission.VIEW, Permission.CHANGE_SUBSCRIBERS, Permission.CHANGE_LESSONS},
    Role.ADMIN: set(Permission),
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_each_role_may_do_exactly_what_the_issue_says(role: Role, permission: Permission) -> None:
    assert may(role, permission) == (permission in EXPECTED[role])


def test_every_role_sees_everything_and_only_an_admin_manages_operators() -> None:
    assert all(may(role, Permission.VIEW) for role in Role)
    assert [role for role in Role if may(role, Permission.MANAGE_OPERATORS)] == [Role.ADMIN]


@pytest.mark.parametrize("typed", ["admin", " Editor ", "VIEWER"])
def test_a_role_is_read_as_typed(typed: str) -> None:
    assert parse_role(typed) == Role(typed.strip().lower())


def test_an_unknown_role_names_the_roles_there_are() -> None:
    with pytest.raises(ValueError, match="unknown role 'owner'; roles: admin, editor, viewer"):
        parse_role("owner")


@pytest.mark.parametrize("role", list(Role))
def test_the_dashboard_refuses_what_a_role_may_not_do(role: Role) -> None:
    from dripcourse.store.models import Operator
    from dripcourse.web.dashboard import Forbidden, allowed

    operator = Operator(email="x@clinic.example", email_key="x@clinic.example", role=role.value)
    for permission in Permission:
        if may(role, permission):
            allowed(operator, permission)
        else:
            with pytest.raises(Forbidden):
                allowed(operator, permission)
