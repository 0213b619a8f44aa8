# EvalHub: `make run` starts the embedded default, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha1sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint bench fmt clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[test,bench]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

# No variables of its own: the embedded default's settings (evalhub/config/settings.py) are the
# same for this server and for any manage.py command run later in another shell.
run: install
	$(PY) manage.py run_embedded --host $(HOST) --port $(PORT)

test: install
	bash scripts/test.sh

lint: install
	$(VENV)/bin/ruff check .

bench: install
	bash scripts/bench.sh

clean:
	rm -rf var .pytest_cache .ruff_cache
