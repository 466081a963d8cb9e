"""Debian's Chromium driven by Playwright: the one way tests open a real browser.

A missing browser fails the test (CI installs it); it is never downloaded.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Debian's chromium is not installed: apt-get install -y chromium")
    return path


@contextmanager
def browser_page(offline: bool = False, viewport=(1400, 1000)):
    """A fresh page; with `offline`, every request that leaves loopback is refused."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            if offline:
                def only_loopback(route):
                    url = route.request.url
                    local = url.startswith(("http://127.0.0.1", "http://localhost", "data:", "about:", "blob:"))
                    route.continue_() if local else route.abort()

                context.route("**/*", only_loopback)
            page = context.new_page()
            yield page
        finally:
            browser.close()


def inspect_pair(page, app_url: str, query: str, document: str) -> None:
    """Open the app's Inspect tab, type a pair and press Inspect (the caller waits for what it reads)."""
    page.goto(app_url)
    page.get_by_role("tab", name="Inspect a pair").click()
    page.locator("#inspect-run").wait_for(state="visible", timeout=120_000)
    page.locator("#inspect-query textarea, #inspect-query input").first.fill(query)
    page.locator("#inspect-document textarea").fill(document)
    page.locator("#inspect-run").click()


def open_app(page, url: str) -> None:
    """Open the app and wait for the landing comparison (or a case link's) to be on the board, so what
    the test does next is not overtaken by it."""
    page.goto(url)
    page.wait_for_function("() => document.querySelectorAll('#board li.hit').length > 0", timeout=300_000)
