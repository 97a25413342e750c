# `make run` starts NutriCoach on its embedded defaults; `make test` runs the tests.
# Both create .venv with a Python 3.12 or newer found on PATH or under pyenv; set
# PYTHON=/path/to/python3.12 to choose one.

VENV ?= .venv
PORT ?= 8000
BIN := $(VENV)/bin

PYTHON ?= $(shell for candidate in python3.13 python3.12 python3.14 python3 \
	$$HOME/.pyenv/versions/3.1[2-9]*/bin/python3; do \
	  "$$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 \
	  && { command -v "$$candidate" 2>/dev/null || echo "$$candidate"; } && break; \
	done)

.PHONY: run test install migrate clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "No Python 3.12 or newer found; install one or set PYTHON=/path/to/python3.12." >&2; exit 1; }
	"$(PYTHON)" -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py createcachetable

run: migrate
	$(BIN)/python manage.py register_schedules
	$(BIN)/python manage.py bootstrap_demo
	$(BIN)/python manage.py run_all --port $(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var
