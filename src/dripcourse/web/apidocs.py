"""/api/docs: Swagger UI over the operator API's OpenAPI schema, its files served from the
`fastapi-swagger` package instead of a CDN, so that the page works on a machine with no internet
(and loads nothing from a third party)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS = "/api/docs"
ASSETS = f"{DOCS}/assets"


def install(app: FastAPI) -> None:
    """Add the page and its files to `app` (made with `docs_url=None`)."""
    app.mount(ASSETS, StaticFiles(packages=[("fastapi_swagger", "resources")]), name="api-docs")

    @app.get(DOCS, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title="dripcourse API",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
        )
