# Quickstart: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck unit coverage demo bench stress clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy --strict

unit: install
	$(BIN)/pytest

# pure/ is fully covered by its own tests alone (they do no I/O but the marked shell test).
coverage: install
	COVERAGE_FILE=.coverage.pure $(BIN)/pytest tests/pure -q -m "not shell" \
	  --cov=pure --cov-branch --cov-report=term-missing:skip-covered --cov-fail-under=100

test: lint typecheck unit coverage

demo: install
	$(BIN)/python -m phases demo

bench: install
	@for script in benchmarks/*.py; do \
		case $$script in */_*) continue;; esac; \
		echo "== $$script"; $(BIN)/python $$script || exit 1; \
	done

# The crash tests with many more kills (a few minutes).
stress: install
	FORKMERGE_STRESS_ROUNDS=12 $(BIN)/pytest tests/phases/test_crash_resume.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .hypothesis
