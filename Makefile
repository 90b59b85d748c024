# Kanri: `make run` to try it, `make test` to test it. See README.md.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test reliability messages-check lint migrations-check bench bench-smoke bench-admin clean

# A virtualenv with the pinned dependencies and the dev tools; redone when pyproject changes.
# Only the dependencies are installed: Kanri runs from the checkout, and installing the
# project itself (`pip install -e .`) would leave kanri.egg-info/ in it.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
	print('\n'.join(p['dependencies'] + p['optional-dependencies']['dev']))" > $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/requirements.txt
	touch $@

# Local settings, made once from the documented example, with a fresh secret key.
.env:
	$(BIN)/python -c "import secrets, pathlib; t = pathlib.Path('.env.example').read_text(); \
	pathlib.Path('.env').write_text(t.replace('SECRET_KEY=change-me', 'SECRET_KEY=' + secrets.token_urlsafe(40)))"

run: $(STAMP) .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py run_kanri

# System packages, from Debian (root or sudo): Chromium for the browser tests (Playwright's
# own download needs the internet), gettext for the translation catalogs, and a Japanese
# font so Japanese pages are readable in the screenshots.
JA_FONT := /usr/share/fonts/opentype/ipafont-gothic/ipag.ttf
MSGFMT := /usr/bin/msgfmt

$(CHROMIUM) $(MSGFMT) $(JA_FONT) &:
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium gettext fonts-ipafont-gothic

# Two workers (pytest-xdist), one per core here: the suite often waits on real servers and
# subprocesses, and each worker has its own test database and Redis database.
PYTEST_WORKERS ?= 2

test: $(STAMP) $(CHROMIUM) $(MSGFMT) $(JA_FONT)
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# The reliability layer (tests/reliability): faults injected into real PostgreSQL, Redis and
# qcluster processes. It needs both servers; these are the local defaults.
RELIABILITY_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/kanri_reliability
RELIABILITY_REDIS_URL ?= redis://127.0.0.1:6379/14

reliability: $(STAMP)
	DATABASE_URL=$(RELIABILITY_DATABASE_URL) REDIS_URL=$(RELIABILITY_REDIS_URL) \
		$(BIN)/pytest tests/reliability $(PYTEST_ARGS)

# Every Kanri string has its Japanese translation (makemessages on a copy of the tree);
# `.ci/messages_check.py --write` updates the catalogs after adding strings.
messages-check: $(STAMP) $(MSGFMT)
	$(BIN)/python .ci/messages_check.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Migrations match the models, and apply to an empty PostgreSQL database (DATABASE_URL).
migrations-check: $(STAMP)
	ENV_FILE= DEBUG=on $(BIN)/python manage.py makemigrations --check --dry-run
	ENV_FILE= DEBUG=on $(BIN)/python manage.py migrate --noinput -v 0

# Kanri in its production shape (PostgreSQL, Redis, gunicorn, qcluster) and the floor of the
# shared harness (BENCH_HARNESS, default ../shared/bench) under the same loads, then the
# Kanri / floor ratios. See benchmarks/README.md; BENCH_ARGS passes options
# (--db, --floor-db, --redis-url, --reuse-db, --quick, --stripe-slow, --admin-runs N …).
BENCH_HARNESS ?= ../shared/bench
BENCH := cd benchmarks && ../$(BIN)/python -m kanri_bench --harness $(abspath $(BENCH_HARNESS))

bench: $(STAMP)
	$(BENCH) $(BENCH_ARGS)

# Correctness only, for CI: a few hundred events; fails unless 0 lost, 0 duplicated and one
# succeeded run per matching event. Never compares speed.
bench-smoke: $(STAMP)
	$(BENCH) --smoke $(BENCH_ARGS)

# The admin at 1,000,000 runs (BENCH_RUNS): run list, filters, page 1000, inventory.
BENCH_RUNS ?= 1000000
bench-admin: $(STAMP)
	cd benchmarks && ../$(BIN)/python -m kanri_bench.admin_scale --harness $(abspath $(BENCH_HARNESS)) \
		--runs $(BENCH_RUNS) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
