#!/usr/bin/env bash
# The whole test suite against real services: PostgreSQL, Redis, Celery workers, Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
export DEBUG=1
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/evalhub}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}
export EVALHUB_TEST_REDIS_URL=$CELERY_BROKER_URL
export EVALHUB_VAR_DIR=${EVALHUB_VAR_DIR:-$PWD/var/test}
export EVALHUB_RANDOM_WEIGHTS=1
export HF_HUB_OFFLINE=1
export PYTHONUNBUFFERED=1
# Waiting OpenMP (torch) and OpenBLAS (numpy, scipy) threads sleep instead of spinning on the
# cores the other test process and its servers need (see tests/conftest.py). Set here because
# numpy is loaded before tests/conftest.py runs.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT:-4}

bash scripts/ensure_services.sh
bash scripts/ensure_system_packages.sh

echo "== ruff"
ruff check .

echo "== pytest"
# Two test processes (pytest-xdist), whole files each: much of the suite waits on browsers,
# workers and the database rather than on a core. Each process has its own test database
# (pytest-django) and Redis database (tests/integration/fixtures.py). PYTEST_PROCESSES=0 runs
# everything in this process. Files are handed out in the order tests/conftest.py gives them,
# longest first (--no-loadscope-reorder: pytest-xdist would put the files of most tests first,
# which leaves the long one-test files for the end of the run).
exec python -m pytest -n "${PYTEST_PROCESSES:-2}" --dist loadfile --no-loadscope-reorder "$@"
