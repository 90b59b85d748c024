# Kanri: `make run` to try it, `make test` to test it. See README.md.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint migrations-check clean

# A virtualenv with the pinned dependencies and the dev tools; redone when pyproject changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# Local settings, made once from the documented example, with a fresh secret key.
.env:
	$(BIN)/python -c "import secrets, pathlib; t = pathlib.Path('.env.example').read_text(); \
	pathlib.Path('.env').write_text(t.replace('SECRET_KEY=change-me', 'SECRET_KEY=' + secrets.token_urlsafe(40)))"

run: $(STAMP) .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py run_kanri

# The browser tests drive Debian's Chromium (Playwright's own download needs the internet).
$(CHROMIUM):
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium

test: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Migrations match the models, and apply to an empty PostgreSQL database (DATABASE_URL).
migrations-check: $(STAMP)
	ENV_FILE= DEBUG=on $(BIN)/python manage.py makemigrations --check --dry-run
	ENV_FILE= DEBUG=on $(BIN)/python manage.py migrate --noinput -v 0

clean:
	rm -rf $(VENV) var
