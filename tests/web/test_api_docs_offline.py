"""/api/docs works with no internet (issue 12): Chromium opens it with every request to anywhere but
127.0.0.1 refused, and the operations are listed; nothing was asked of another host."""

from __future__ import annotations

from urllib.parse import urlsplit


def test_the_api_docs_list_the_operations_with_the_network_cut_off(
    live_server, browser_page, screenshot
):
    elsewhere: list[str] = []

    def only_loopback(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    browser_page.route("**/*", only_loopback)
    browser_page.goto(f"{live_server.url}/api/docs")
    browser_page.wait_for_selector(".opblock-summary-path", timeout=20_000)

    paths = browser_page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/v1/subscribers" in path for path in paths), paths
    assert len(paths) >= 10
    assert elsewhere == []
    screenshot(browser_page, "api-docs")
