"""The README's two commands, the Makefile and .ci/run say the same thing.

These read the real files (and ask make itself, dry-run, what each target would run), so
editing one of them without the others fails here. No network, no install, well under a second.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from requirements_support import require

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"
CI = ROOT / ".ci" / "run"

TEST_COMMAND = ".venv/bin/python -m pytest -q"
RUN_COMMAND = ".venv/bin/python app.py"


def quick_start() -> str:
    """The README's Quick start section: the first `## ` section, up to the next one."""
    text = README.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)
    assert len(sections) > 1, "README has no `## ` sections"
    first = sections[1]
    assert first.startswith("Quick start\n"), (
        f"the README's first section must be Quick start, found {first.splitlines()[0]!r}"
    )
    return first


def code_blocks(text: str) -> list[list[str]]:
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.M | re.S)
    return [[line.strip() for line in block.splitlines() if line.strip()] for block in blocks]


def recipe(target: str) -> list[str]:
    """The recipe lines of one Makefile rule, as written (tabs stripped)."""
    lines = MAKEFILE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"^{re.escape(target)}\s*:(?!=)", line):
            body = []
            for following in lines[i + 1 :]:
                if not following.startswith("\t"):
                    break
                body.append(following.strip())
            return body
    raise AssertionError(f"Makefile has no `{target}` rule")


def prerequisites(target: str) -> list[str]:
    for line in MAKEFILE.read_text(encoding="utf-8").splitlines():
        match = re.match(rf"^{re.escape(target)}\s*:(?!=)(.*)$", line)
        if match:
            return match.group(1).replace("|", " ").split()
    raise AssertionError(f"Makefile has no `{target}` rule")


def ci_commands() -> list[str]:
    """.ci/run's command lines, comments and blank lines dropped."""
    lines = CI.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_quick_start_shows_exactly_the_two_commands():
    blocks = code_blocks(quick_start())
    assert blocks, "Quick start has no code block"
    assert blocks[0] == ["make run", "make test"]
    assert len(blocks) == 1, "Quick start must show the two commands and nothing else to type"


def test_quick_start_names_what_each_command_runs():
    section = quick_start()
    assert f"`{RUN_COMMAND}`" in section
    assert f"`{TEST_COMMAND}`" in section
    assert "needs root" in section and "apt-get install -y chromium" in section


def test_readme_keeps_no_other_set_up_recipe():
    """The old multi-step set-up must not come back beside the two commands."""
    text = README.read_text(encoding="utf-8")
    for block in code_blocks(text):
        for line in block:
            assert not re.search(r"\bpip install\b|\bpython3? -m venv\b|apt-get", line), line


def test_makefile_targets_run_the_readme_commands():
    assert recipe("test")[-1] == "$(PY) -m pytest -q"
    assert recipe("run")[-1] == "$(PY) app.py"
    # The app's command installs only what the Space installs: no test tools, no browser.
    run_needs = prerequisites("run")
    assert "$(APP_STAMP)" in run_needs
    assert not {"setup", "chromium", "$(DEV_STAMP)"} & set(run_needs)
    # The test command sets up everything it needs first.
    assert "setup" in prerequisites("test")
    assert {"$(DEV_STAMP)", "chromium"} <= set(prerequisites("setup"))


def test_makefile_installs_each_requirements_file_when_it_changes():
    assert "requirements.txt" in prerequisites("$(APP_STAMP)")
    assert "-r requirements.txt" in " ".join(recipe("$(APP_STAMP)"))
    assert {"requirements-dev.txt", "$(APP_STAMP)"} <= set(prerequisites("$(DEV_STAMP)"))
    assert "-r requirements-dev.txt" in " ".join(recipe("$(DEV_STAMP)"))
    # Ray is optional for the app but installed for the tests (index building, eval --ray).
    assert {"requirements-ray.txt", "$(APP_STAMP)"} <= set(prerequisites("$(RAY_STAMP)"))
    assert "-r requirements-ray.txt" in " ".join(recipe("$(RAY_STAMP)"))
    assert "$(RAY_STAMP)" in prerequisites("$(DEV_STAMP)")
    assert "apt-get install -y -qq chromium" in " ".join(recipe("chromium"))


@pytest.mark.parametrize("target, command", [("run", RUN_COMMAND), ("test", TEST_COMMAND)])
def test_make_itself_would_run_the_readme_command(target, command):
    """`make -n` parses the real Makefile and prints, without running, what the target does."""
    require(shutil.which("make") is not None, "make", "apt-get install -y make; .ci/run installs it")
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(ROOT), target],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == command


def test_ci_runs_the_readme_test_command_from_a_fresh_venv():
    commands = ci_commands()
    assert "set -euo pipefail" in commands
    assert "export DEBIAN_FRONTEND=noninteractive" in commands
    assert "rm -rf .venv" in commands
    assert commands[-1] == "make test"
    assert commands.index("rm -rf .venv") < commands.index("make test")
    # CI must not set up or test its own way beside the README's command.
    for line in commands:
        assert "pytest" not in line and "pip install" not in line, line


def test_readme_is_short_and_links_every_docs_page():
    """A newcomer finishes the README in minutes; the detail lives in docs/, each page linked."""
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 150
    pages = sorted((ROOT / "docs").glob("*.md"))
    assert pages, "docs/ has no pages"
    for page in pages:
        assert f"(docs/{page.name})" in text, f"README does not link docs/{page.name}"


def test_relative_links_in_readme_and_docs_resolve():
    for document in [README, ROOT / "corpora" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)", document.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            assert (document.parent / target).exists(), f"{document.name} links missing {target}"
