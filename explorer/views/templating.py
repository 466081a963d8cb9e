"""The one Jinja2 environment for the package's HTML: templates in `views/templates/`, autoescaped.

Every value a template prints is HTML-escaped (autoescape), so user text (queries, documents,
ids, model names) never reaches the page as markup; templates mark nothing `|safe`.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined


def _number(value: float, spec: str) -> str:
    """`format(value, spec)`, for templates: `{{ ms | number(",.1f") }}`."""
    return format(value, spec)


ENVIRONMENT = Environment(
    loader=PackageLoader("explorer.views", "templates"),
    autoescape=True,
    undefined=StrictUndefined,  # a misspelt field fails loudly instead of printing nothing
    trim_blocks=True,
    lstrip_blocks=True,
)
ENVIRONMENT.filters["number"] = _number


def render(template: str, **context) -> str:
    """One template rendered with `context`; raises jinja2's errors on a missing template or field."""
    return ENVIRONMENT.get_template(template).render(**context)
