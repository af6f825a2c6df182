# The two commands a newcomer runs: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

# Tests run against this machine's real PostgreSQL and Redis.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_DATABASE_NAME ?= test_hypervisor
# Empty: a redis-server of the run's own (devtools/scripts/private-redis); or a database to use.
TEST_REDIS_URL ?=
PYTEST_ARGS ?=

.PHONY: run test vm-test screenshots worker lint format services browser engines slurm build-deps demo clean mutation

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# libvirt-python is built from source against Debian's libvirt-dev, found by pkg-config.
# The project itself goes in with --no-deps (requirements.txt pins its dependencies): that
# puts the `hv` command line in .venv/bin, editable, so it follows the checkout.
$(VENV)/.runtime: requirements.txt pyproject.toml | $(BIN)/python build-deps
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt pyproject.toml | $(BIN)/python build-deps
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(VENV)/.runtime $@

## run: install, migrate and serve on http://127.0.0.1:8000 (embedded SQLite unless DATABASE_URL is set)
run: $(VENV)/.runtime
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput
	@echo "Try the demo data: DEBUG=true $(BIN)/python manage.py demo (prints how to sign in)."
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py runserver 127.0.0.1:8000

## worker: RQ worker (with rq's scheduler) plus the periodic safety-net pass; needs REDIS_URL.
## SchedulerWorker: rq's SimpleWorker (no fork per job) with the start-up heap frozen out of the GC.
worker: $(VENV)/.runtime
	@test -n "$$REDIS_URL" || (echo "worker needs REDIS_URL (and DATABASE_URL)"; exit 2)
	$(BIN)/python manage.py rqcron scheduler.cron & \
	$(BIN)/python manage.py rqworker --with-scheduler --worker-class scheduler.worker.SchedulerWorker default; kill %1

## services: start this machine's PostgreSQL and Redis if they are down
services:
	devtools/scripts/ensure-services

## browser: Debian's Chromium for the browser tests; installed with apt-get when missing
browser:
	@command -v chromium >/dev/null || (export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update && apt-get install -y chromium) || \
	  { echo "ERROR: Chromium is missing and apt-get could not install it;" \
	    "the browser tests need it (apt-get install chromium)." >&2; exit 1; }
	@command -v chromium

## build-deps: what pip needs to build libvirt-python; installed with apt-get when missing
build-deps:
	@pkg-config --exists libvirt 2>/dev/null && command -v gcc >/dev/null || \
	  (export DEBIAN_FRONTEND=noninteractive; apt-get update && \
	   apt-get install -y --no-install-recommends libvirt-dev pkg-config gcc) || \
	  { echo "ERROR: libvirt-dev, pkg-config and gcc are missing and apt-get could not" \
	    "install them; pip needs them to build libvirt-python." >&2; exit 1; }

## engines: the real engines of the runtime tests (Docker's dockerd, static busybox for
## the test images); installed with apt-get when missing. The tests start their own
## dockerd on a private socket (runtime/tests/engines.py).
engines:
	@command -v dockerd >/dev/null && dpkg-query -W -f='$${Status}' busybox-static 2>/dev/null | \
	  grep -q "ok installed" || (export DEBIAN_FRONTEND=noninteractive; apt-get update && \
	  apt-get install -y --no-install-recommends docker.io busybox-static) || \
	  { echo "ERROR: dockerd or busybox-static is missing and apt-get could not install" \
	    "them; the runtime tests need them (apt-get install docker.io busybox-static)." >&2; \
	  exit 1; }

## slurm: Debian's Slurm and munge for the Slurm runtime's tests (their fixture starts private
## daemons); installed with apt-get when missing
slurm:
	devtools/scripts/ensure-slurm

# Over plain HTTP: the secure-by-default redirect and cookie flags are off for the tests.
# With TEST_REDIS_URL empty the run starts a redis-server of its own (devtools/scripts/private-redis).
TEST_ENV = DATABASE_URL=$(TEST_DATABASE_URL) TEST_DATABASE_NAME=$(TEST_DATABASE_NAME) \
	$(if $(TEST_REDIS_URL),REDIS_URL=$(TEST_REDIS_URL)) SECRET_KEY=test-only-secret-key DEBUG=false \
	RATELIMIT_LOGIN_IP=10000/m RATELIMIT_LOGIN_USERNAME=10000/m RATELIMIT_REGISTER_IP=10000/h \
	RATELIMIT_JOIN_USER=10000/m RATELIMIT_UNSAFE_USER=100000/m RATELIMIT_READ_USER=100000/m \
	SECURE_SSL_REDIRECT=false SESSION_COOKIE_SECURE=false CSRF_COOKIE_SECURE=false
PRIVATE_REDIS = $(if $(TEST_REDIS_URL),,devtools/scripts/private-redis)

## test: the whole suite against real PostgreSQL and Redis (leaves the work tree untouched)
test: $(VENV)/.dev services browser engines slurm
	$(TEST_ENV) $(PRIVATE_REDIS) $(BIN)/python -m pytest $(PYTEST_ARGS)

## vm-test: the real-VM test (marker `vm`, left out of `make test`): tiny guests under QEMU
## through a private libvirtd; installs what it needs (devtools/scripts/ensure-libvirt-vm)
vm-test: $(VENV)/.dev services
	devtools/scripts/ensure-libvirt-vm
	$(TEST_ENV) $(PRIVATE_REDIS) nice -n 10 $(BIN)/python -m pytest -m vm -v \
	  scheduler/tests/test_libvirt_vm.py $(PYTEST_ARGS)

## screenshots: rewrite docs/img (the README's pictures) from the browser tests, 1280 and 390 px
screenshots: $(VENV)/.dev services browser
	$(TEST_ENV) HV_SCREENSHOTS=1 $(PRIVATE_REDIS) $(BIN)/python -m pytest -m browser -q web/tests $(PYTEST_ARGS)

## mutation: mutmut over the planner, the state machine, permissions and dependency conditions
## (devtools/scripts/mutation; slow: an hour or more for all; MUTATION_TARGETS="conditions" for some)
mutation: $(VENV)/.dev services
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) TEST_DATABASE_NAME=$(TEST_DATABASE_NAME) \
	MUTATION_TARGETS="$(MUTATION_TARGETS)" devtools/scripts/mutation

## lint: ruff, Django's checks, migrations and the OpenAPI schema
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=true $(BIN)/python manage.py check --fail-level WARNING
	DEBUG=true $(BIN)/python manage.py makemigrations --check --dry-run
	DEBUG=true $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var
