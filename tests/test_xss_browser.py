"""Hostile document text is shown literally in a real browser and runs nothing."""

from __future__ import annotations

from browser_support import browser_page, open_app

HOSTILE = [
    'Cats purr <img src=x onerror="window.__xss=1;alert(1)"> when content.',
    "Dogs bark <script>window.__xss=2;alert(2)</script> at strangers.",
    'Parrots "mimic" speech & sing <b onmouseover=alert(3)>loudly</b>.',
]


def test_hostile_documents_are_shown_as_text_and_run_nothing(app_url, tmp_path):
    dialogs: list[str] = []
    with browser_page(offline=True) as page:
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        open_app(page, app_url)
        page.locator("#query textarea, #query input").first.fill("which animal purrs")
        page.locator("#corpus-text textarea").fill("\n".join(HOSTILE))
        page.locator("#run-compare").click()
        cross = page.locator("#board .board-column[data-role=rerank]")
        cross.get_by_text("when content.", exact=False).first.wait_for(timeout=180_000)
        page.wait_for_timeout(1500)  # give any injected handler time to fire
        page.screenshot(path=str(tmp_path / "xss.png"), full_page=True)

        for selector in ("#board .board-column[data-role=first]", "#board .board-column[data-role=rerank]"):
            text = page.locator(selector).inner_text()
            assert '<img src=x onerror="window.__xss=1;alert(1)">' in text
            assert "<script>window.__xss=2;alert(2)</script>" in text
            assert "<b onmouseover=alert(3)>loudly</b>" in text
        page.locator("#board .board-column[data-role=rerank]").hover()
        assert page.evaluate("window.__xss") is None
        assert page.locator("img[src='x']").count() == 0
        assert page.locator("#board .board-column[data-role=rerank] b[onmouseover]").count() == 0
        assert dialogs == []
