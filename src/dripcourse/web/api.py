"""The operator API under /api/v1: JSON, bearer tokens, thin shells over the same operations."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dripcourse.web.context import WebContext, context_of

bearer = HTTPBearer(auto_error=False, description="One of the DRIPCOURSE_API_TOKEN values.")


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """401 unless the bearer token is one of the configured ones (compared in constant time)."""
    context = context_of(request)
    given = credentials.credentials.encode() if credentials else b""
    matches = [hmac.compare_digest(given, token.encode()) for token in context.settings.api_tokens]
    if not credentials or not any(matches):
        raise HTTPException(
            status_code=401,
            detail="a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])
Context = Annotated[WebContext, Depends(context_of)]
