"""Who among the operators may do what: the roles and the one table of their permissions.

A viewer sees everything and changes nothing; an editor also runs subscribers and lessons; an admin
also manages the operators. The dashboard asks `may` before every action, and a refusal is the same
whichever way the request came (a form, or a POST made by hand).
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"


class Permission(enum.StrEnum):
    VIEW = "view"
    CHANGE_SUBSCRIBERS = "change subscribers"
    CHANGE_LESSONS = "change lessons"
    MANAGE_OPERATORS = "manage operators"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.VIEW}),
    Role.EDITOR: frozenset(
        {Permission.VIEW, Permission.CHANGE_SUBSCRIBERS, Permission.CHANGE_LESSONS}
    ),
    Role.ADMIN: frozenset(Permission),
}


def may(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]


def parse_role(text: str) -> Role:
    """The role named by `text` (as typed), or ValueError naming the roles there are."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        known = ", ".join(role.value for role in Role)
        raise ValueError(f"unknown role {text[:40]!r}; roles: {known}") from None
