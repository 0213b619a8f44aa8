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
# (pytest-django) and Redis database (tests/integration/fixtures.py). Files are handed out in
# the order tests/conftest.py gives them, longest first (--no-loadscope-reorder: pytest-xdist
# would put the files of most tests first, which leaves the long one-test files for the end).
#
# The `playback` tests then run on their own (one process, nothing else): they measure two or
# more videos kept within one frame (33 ms) of each other in Chromium, which a renderer starved
# of CPU by the worker processes, metric models and servers of the rest cannot give (a 53 ms
# gap, over a 60-operation walk, at load 5 on two cores). In two processes (two browsers
# decoding at once) two of seven fresh clones saw one sample 1.1 frames apart; one process
# takes about 25 s more (99 s against 76 s on two cores). PYTEST_PROCESSES=0 runs everything
# in this one process, in order. Arguments go to both runs (without any, the second collects
# tests/browser only); either failing fails the suite.
if [ "${PYTEST_PROCESSES:-2}" = 0 ]; then
    exec python -m pytest "$@"
fi
# Exit status 5 (no test collected) of one run is no failure: arguments may name tests of one
# kind only. Both 5: nothing at all was collected, which is.
# The 25 slowest test phases are listed at the end, to see where a slow run went.
python -m pytest -n "${PYTEST_PROCESSES:-2}" --dist loadfile --no-loadscope-reorder \
    --durations=25 -m "not playback" "$@" && parallel=0 || parallel=$?
echo "== pytest: playback, on their own"
python -m pytest -p no:xdist -m playback "${@:-tests/browser}" && alone=0 || alone=$?
if [ "$parallel" = 5 ] && [ "$alone" = 5 ]; then exit 5; fi
[ "$parallel" = 5 ] && parallel=0
[ "$alone" = 5 ] && alone=0
[ "$parallel" = 0 ] && exit "$alone"
exit "$parallel"
