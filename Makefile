# The README's two commands: `make run` (the app) and `make test` (the whole suite).
# Each sets up only what is missing, so a second run starts in seconds.
#   make run     venv + requirements.txt, then the app on the offline default models
#   make test    the same + requirements-ray.txt + requirements-dev.txt + Debian's chromium (needs root), then pytest
#   make setup   everything `make test` needs, without running the tests
#   make clean   remove .venv (the next run installs from scratch)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Stamps live inside .venv, so deleting the venv also forgets what was installed into it.
APP_STAMP := $(VENV)/.requirements.stamp
RAY_STAMP := $(VENV)/.requirements-ray.stamp
DEV_STAMP := $(VENV)/.requirements-dev.stamp

.PHONY: help run test setup chromium clean

help:
	@sed -n 's/^#   //p' Makefile

# The app needs requirements.txt only (the same file the Space installs): no test tools, no browser.
run: $(APP_STAMP)
	$(PY) app.py

test: setup
	$(PY) -m pytest -q

setup: $(DEV_STAMP) chromium

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when a requirements file is newer than its stamp.
$(APP_STAMP): requirements.txt | $(PY)
	@echo "Installing requirements.txt into $(VENV) (new or changed; the first time takes a few minutes)"
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

# Ray (index building, eval --ray) is optional for the app; the tests use it.
$(RAY_STAMP): requirements-ray.txt $(APP_STAMP) | $(PY)
	@echo "Installing requirements-ray.txt into $(VENV)"
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-ray.txt
	@touch $@

$(DEV_STAMP): requirements-dev.txt $(APP_STAMP) $(RAY_STAMP) | $(PY)
	@echo "Installing requirements-dev.txt into $(VENV)"
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# The browser tests drive Debian's Chromium through Playwright; a browser is never downloaded.
# apt-get needs root: as another user this step stops and says so.
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	elif [ "$$(id -u)" != 0 ]; then \
	  echo "Debian's chromium is missing; installing it needs root: sudo apt-get install -y chromium" >&2; exit 1; \
	else \
	  echo "Installing Debian's chromium (apt-get)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	fi

clean:
	rm -rf $(VENV)
