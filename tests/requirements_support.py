"""A test requirement that is missing fails the test; it never skips it silently.

`make test` (and so CI) installs everything the suite needs: Ray from requirements-ray.txt, GNU
make, Debian's chromium. Where one is missing, the tests that need it fail, naming it and how to
install it. A developer who knowingly runs without one sets EXPLORER_TESTS_MAY_SKIP to a
comma-separated list of names (for example "ray,make"); only those tests are then skipped, and
pytest's summary still lists each skip with its reason.
"""

from __future__ import annotations

import os

import pytest

MAY_SKIP_ENV = "EXPLORER_TESTS_MAY_SKIP"


def require(available: bool, name: str, how_to_install: str) -> None:
    """Fail the calling test (or module) unless `available`, or skip it where `name` may be skipped."""
    if available:
        return
    allowed = {part.strip() for part in os.environ.get(MAY_SKIP_ENV, "").split(",") if part.strip()}
    message = f"{name} is not installed ({how_to_install})"
    if name in allowed:
        pytest.skip(f"{message}; skipped because {MAY_SKIP_ENV} names {name!r}")
    pytest.fail(f"{message}. Set {MAY_SKIP_ENV}={name} to skip these tests knowingly.", pytrace=False)
