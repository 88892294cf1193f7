# The two commands: `make run` (everything on the embedded default) and `make test`.
# Only Python 3.11+ is needed; everything else is installed into .venv on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv prepare run dev static test test-rabbitmq lint bench

help:
	@echo "make run    install, migrate, load examples/, create the admin user, start web, worker and beat"
	@echo "make dev    the same with Django's autoreloading development server as web (DEBUG=1)"
	@echo "make test   ruff, mypy and pytest (PYTEST_ARGS=... is passed to pytest)"
	@echo "make test-rabbitmq  the core tests once more with RabbitMQ as the broker (RABBITMQ_URL=...)"
	@echo "make lint   ruff and mypy only"
	@echo "make bench  the benchmarks (python -m bench)"

venv: $(STAMP)

# Reinstalled only when pyproject.toml or flow-requirements.txt (the extra packages flows
# import) changed since the last install.
$(STAMP): pyproject.toml flow-requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# A new venv brings the interpreter's pip and setuptools, which may carry known
	@# advisories (docs/README-reliability.md, "Dependency audit"): raise them first.
	$(PY) -m pip install --upgrade 'pip>=23.3' 'setuptools>=65.5.1'
	$(PY) -m pip install -e '.[dev]'
	$(PY) -m pip install -r flow-requirements.txt
	@touch $@

# The admin user comes from Django's own DJANGO_SUPERUSER_* variables; an existing user is
# left as it is (createsuperuser --noinput refuses a taken name, which is fine here).
# The steps both `make run` and `make dev` take before they start the processes.
prepare: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_flows examples
	@user="$${DJANGO_SUPERUSER_USERNAME:-admin}"; password="$${DJANGO_SUPERUSER_PASSWORD:-admin}"; \
	if out=$$(DJANGO_SUPERUSER_USERNAME="$$user" DJANGO_SUPERUSER_PASSWORD="$$password" \
	          $(PY) manage.py createsuperuser --noinput --email "$${DJANGO_SUPERUSER_EMAIL:-}" 2>&1); then \
	    echo "Admin user created: $$user / $$password"; \
	elif echo "$$out" | grep -q "already taken"; then \
	    echo "Admin user $$user exists (its password is unchanged)"; \
	else \
	    echo "$$out" >&2; exit 1; \
	fi; \
	echo "Log in at http://127.0.0.1:$${PORT:-8000}/admin/ ; Ctrl-C stops everything"

# Static files for whitenoise: hashed names and compressed copies in STATIC_ROOT.
static: venv
	$(PY) manage.py collectstatic --noinput -v 0

run: prepare static
	$(PY) scripts/dev.py

# For working on the engine itself: web is `runserver` with autoreload and DEBUG on (static
# files straight from the apps), worker and beat as in the Procfile.
dev: prepare
	DEBUG=1 $(PY) scripts/dev.py --dev

# With REDIS_URL unset, scripts/dev.py gives the tests an embedded Redis, as for `make run`.
test: lint
	$(PY) scripts/dev.py $(BIN)/pytest $(PYTEST_ARGS)

# The core suite with RabbitMQ as the Celery broker (notices stay on Redis); no ruff/mypy
# again. RABBITMQ_URL names the vhost, e.g. amqp://guest:guest@127.0.0.1:5672/automation_ci.
RABBITMQ_URL ?= amqp://guest:guest@127.0.0.1:5672//
# The core tests are those marked `core` (pytest.mark.core in their files).
test-rabbitmq: venv
	BROKER_URL='$(RABBITMQ_URL)' timeout 900 $(PY) scripts/dev.py $(BIN)/pytest -m "core and not slow" \
	    $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	@# mypy's Django plugin imports the settings, which want a SECRET_KEY on a server database.
	SECRET_KEY="$${SECRET_KEY:-only-read-by-mypy}" $(BIN)/mypy .
	@# Imports run one way (pyproject.toml [tool.importlinter], docs/ARCHITECTURE.md).
	$(BIN)/lint-imports

bench: venv
	$(PY) -m bench
