"""bertviz's views draw in a real browser with every non-loopback request refused."""

from __future__ import annotations

import html
import re

import pytest

from explorer.views.bertviz_views import bertviz_document, bertviz_iframe, json_for_script
from explorer.interpret.pair import encode_pair
from explorer.rankers.cross_encoder import CrossEncoder
from explorer.interpret.attention import inspect_pair
from tests.browser_support import browser_page

QUERY = "what is the capital of France?"
# Markup in user text must stay text: a token "</script>" or an <img onerror> must not run.
DOC = "Paris is the capital of France. </script><img src=x onerror=\"document.title='pwned'\"> Eiffel &amp; co."

# XML namespace identifiers inside d3 (never fetched) and the link in d3's licence banner.
ALLOWED_URLS = {
    "http://www.w3.org/1999/xhtml",
    "http://www.w3.org/1999/xlink",
    "http://www.w3.org/2000/svg",
    "http://www.w3.org/2000/xmlns/",
    "http://www.w3.org/XML/1998/namespace",
    "https://d3js.org",
}


@pytest.fixture(scope="module")
def inspection(attention_model):
    return inspect_pair(CrossEncoder(attention_model, "fp32"), encode_pair(attention_model, QUERY, DOC))


def test_json_for_script_cannot_close_the_script():
    text = json_for_script({"tokens": ["</script>", "<!--", "&", "\u2028"]})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text


@pytest.mark.parametrize("view", ["head", "model"])
def test_html_refers_to_no_external_host(inspection, view):
    document = bertviz_document(inspection, view)
    urls = set(re.findall(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'<>()]*""", document))
    assert {u for u in urls if u.startswith("http")} <= ALLOWED_URLS
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", document, re.I)
    assert "require.config" not in document and "cdnjs" not in document
    assert "sourceMappingURL" not in document
    # User tokens travel only inside our escaped JSON: no raw markup from the document survives,
    # and the four scripts (d3, jQuery, our shim, bertviz) are the only ones that end.
    assert "<img" not in document and "onerror" in document
    assert document.count("</script>") == 4
    params = document[document.index("explorerDecode({") :]
    params = params[: params.index("\n")]
    assert '"\\u003c"' in params and "<" not in params  # the token "<" arrives escaped


@pytest.mark.parametrize("view", ["head", "model"])
def test_views_render_offline_in_a_sandboxed_iframe(inspection, view):
    frame_html = bertviz_iframe(inspection, view)
    assert frame_html.startswith('<iframe class="bertviz-frame"')
    assert 'sandbox="allow-scripts"' in frame_html and "allow-same-origin" not in frame_html
    external, errors = [], []
    with browser_page(offline=True) as page:
        page.on("request", lambda r: external.append(r.url) if r.url.startswith(("http:", "https:")) else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_content(f"<!DOCTYPE html><html><head><title>host</title></head><body>{frame_html}</body></html>")
        frame = page.frame_locator("iframe.bertviz-frame")
        texts = frame.locator("svg text")
        texts.first.wait_for(timeout=60_000)
        assert texts.count() > 10
        assert frame.locator("svg line, svg path, svg rect").count() > 0
        shown = set(frame.locator("svg text").all_text_contents())
        if view == "head":  # the head view writes out every token
            assert {"paris", "capital", "script", "<", ">", "[CLS]", "[SEP]"} <= shown  # markup shown as text
        else:  # the model view labels heads and layers
            assert {"Heads", "Layers"} <= shown
        selected = frame.locator("#filter").evaluate("el => el.options[el.selectedIndex].text")
        assert selected == ("All" if view == "head" else "Query -> Document")
        assert page.title() == "host"  # the onerror in the document never ran
    assert not errors
    assert not external


def test_long_inputs_get_a_message_not_a_frozen_browser(attention_model):
    long_doc = " ".join(["word"] * 300)
    message = bertviz_iframe(inspect_pair(CrossEncoder(attention_model, "fp32"), encode_pair(attention_model, QUERY, long_doc)), "model")
    assert "<iframe" not in message and "tokens" in message
    assert html.escape("at most") in message
