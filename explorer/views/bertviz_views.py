"""bertviz's head view and model view of one pair, made to work with no network.

bertviz (`html_action="return"`) gives HTML whose script loads require.js, d3 and jQuery
from a CDN. Here every external URL is stripped; d3 v5 (from the installed `mpld3`
package) and jQuery (from `xstatic-jquery`) are inlined at run time, and a few lines of
our own stand in for require.js: they hand those two globals to bertviz's callback.
The page goes into a sandboxed iframe (`allow-scripts`, no same-origin) via `srcdoc`.

The attention data is shrunk before it is embedded: weights are sent as integers in
thousandths (the views draw them as opacities) and the query/document blocks are cut out
of the full tensor in the browser instead of being sent twice.
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from typing import Literal

import torch

from explorer.interpret.attention import PairInspection
from explorer.paths import package_dir

View = Literal["head", "model"]
MAX_TOKENS = 192  # beyond this the views hold tens of MB and the browser crawls
SCALE = 1000  # weights travel as integers in thousandths
QUERY_TO_DOC_FILTER = "3"  # bertviz's filters: All, A->A, B->B, A->B, B->A

_SEGMENT_NAMES = {"Sentence A": "Query", "Sentence B": "Document"}


def _package_file(module: str, distribution: str, relative: str) -> str:
    return (package_dir(module, "The bertviz views", distribution) / relative).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _libraries() -> str:
    """d3 v5 and jQuery as inline scripts, read from installed packages (nothing vendored)."""
    d3 = _package_file("mpld3", "mpld3", "js/d3.v5.min.js")
    jquery = _package_file("xstatic.pkg.jquery", "xstatic-jquery", "data/jquery.min.js")
    jquery = re.sub(r"//# sourceMappingURL=\S+", "", jquery)  # no request for a map file
    return "\n".join(f"<script>\n{_script_safe(code)}\n</script>" for code in (d3, jquery))


def _script_safe(code: str) -> str:
    # A library must not end its own <script> element early.
    return code.replace("</script", "<\\/script")


# Our stand-in for require.js: bertviz only calls require.config(...) and
# requirejs(['jquery', 'd3'], callback). The decoder rebuilds the weights from thousandths
# and cuts the four query/document blocks out of the full tensor.
_SHIM = """
<script>
(function () {
  var modules = { jquery: window.jQuery, d3: window.d3 };
  function requirejs(names, callback) {
    callback.apply(null, names.map(function (name) { return modules[name]; }));
  }
  requirejs.config = function () {};
  window.require = requirejs;
  window.requirejs = requirejs;
  window.explorerDecode = function (params) {
    var full = params.attention[0].attn.map(function (layer) {
      return layer.map(function (head) {
        return head.map(function (row) { return row.map(function (v) { return v / SCALE; }); });
      });
    });
    params.attention.forEach(function (entry) {
      var cut = entry.cut;
      entry.attn = !cut ? full : full.map(function (layer) {
        return layer.map(function (head) {
          return head.slice(cut[0], cut[1]).map(function (row) { return row.slice(cut[2], cut[3]); });
        });
      });
      delete entry.cut;
    });
    return params;
  };
})();
</script>
""".replace("SCALE", str(SCALE))


def json_for_script(data) -> str:
    """JSON that is safe inside a <script>: no '<', '>' or '&' that could end or open a tag."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def _bertviz_html(inspection: PairInspection, view: View) -> str:
    from bertviz import head_view, model_view

    # Thousandths as integers: bertviz's own tolist() then writes short numbers.
    scaled = torch.from_numpy(inspection.attentions).mul(SCALE).round().to(torch.int32)
    layers = [scaled[i : i + 1] for i in range(scaled.shape[0])]
    render = head_view if view == "head" else model_view
    kwargs = {"display_mode": "light"} if view == "model" else {}
    return render(
        attention=layers,
        tokens=list(inspection.tokens),
        sentence_b_start=inspection.doc_index[0],
        html_action="return",
        **kwargs,
    ).data


def _compact_params(script: str, sentence_b_start: int, length: int, default_filter: str) -> str:
    """Replace bertviz's params literal by a compact, script-safe one our decoder expands."""
    marker = "const params = "
    start = script.index(marker) + len(marker)
    params, end = json.JSONDecoder().raw_decode(script, start)
    b, n = sentence_b_start, length
    cuts = {  # bertviz's order after "All": A->A, B->B, A->B, B->A
        1: [0, b, 0, b],
        2: [b, n, b, n],
        3: [0, b, b, n],
        4: [b, n, 0, b],
    }
    params["default_filter"] = default_filter
    for index, entry in enumerate(params["attention"]):
        if index in cuts:
            entry["attn"] = None
            entry["cut"] = cuts[index]
        if entry.get("name"):
            for old, new in _SEGMENT_NAMES.items():
                entry["name"] = entry["name"].replace(old, new)
    # bertviz's template replaces its marker twice: once as code and once inside the
    # "// HACK: PYTHON_PARAMS ..." comment on the same line. That second, raw copy (user
    # tokens unescaped) goes, with the rest of the line.
    line_end = script.index("\n", end)
    return script[:start] + f"explorerDecode({json_for_script(params)});" + script[line_end:]


def bertviz_document(inspection: PairInspection, view: View) -> str:
    """A self-contained HTML page with bertviz's view of the pair; it refers to no external host."""
    if view not in ("head", "model"):
        raise ValueError(f"unknown bertviz view {view!r}")
    raw = _bertviz_html(inspection, view)
    # Drop bertviz's require.js tag, its CDN config and its header comment (which holds URLs).
    raw = re.sub(r"<script[^>]*\bsrc=[^>]*>\s*</script>", "", raw)
    raw = re.sub(r"require\.config\(\{.*?\}\);", "", raw, count=1, flags=re.S)
    raw = re.sub(r"/\*\*.*?\*\*/", "", raw, count=1, flags=re.S)
    split = raw.index('<script type="text/javascript">')
    markup, script = raw[:split], raw[split:]
    for old, new in _SEGMENT_NAMES.items():
        markup = markup.replace(old, new)
    # The model view draws every weight of every head as a line: for the full input of a
    # ~100-token pair that is about 2 million SVG lines and a minute of drawing. It opens
    # on the query -> document block instead (the person can still pick "All").
    default_filter = QUERY_TO_DOC_FILTER if view == "model" else "0"
    markup = markup.replace(f'<option value="{default_filter}">', f'<option value="{default_filter}" selected>')
    script = _compact_params(script, inspection.doc_index[0], len(inspection.tokens), default_filter)
    title = "head view" if view == "head" else "model view"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>bertviz {title}</title>"
        "<style>body{margin:8px;background:white;color:#222;font-family:sans-serif}</style>"
        f"</head><body>{_libraries()}{_SHIM}{markup}{script}</body></html>"
    )


def bertviz_iframe(inspection: PairInspection, view: View, height_px: int = 760) -> str:
    """The view in a sandboxed iframe (scripts only, opaque origin), ready for gr.HTML."""
    if len(inspection.tokens) > MAX_TOKENS:
        return (
            f"<p>The bertviz {view} view is drawn for inputs of at most {MAX_TOKENS} tokens; this pair has "
            f"{len(inspection.tokens)}. bertviz draws every attention weight as its own line: past {MAX_TOKENS} "
            "tokens that is tens of megabytes sent to the browser and a page that stops responding while it draws. "
            "Shorten the document to see it; the heatmaps cover every token.</p>"
        )
    document = bertviz_document(inspection, view)
    label = "bertviz head view" if view == "head" else "bertviz model view"
    return (
        f'<iframe class="bertviz-frame" title="{label}" sandbox="allow-scripts" '
        f'style="width:100%;height:{int(height_px)}px;border:1px solid #ddd;border-radius:6px;background:white" '
        f'srcdoc="{html.escape(document, quote=True)}"></iframe>'
    )
