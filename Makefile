# Two commands do all the set-up: `make run` (the app) and `make test` (the checks).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PYTEST_ARGS ?=
PORT ?= 8000

.PHONY: install install-parity run test lint lint-js format bench train evaluate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

install-parity: $(STAMP)  ## PyTorch for the parity tests and the benchmark baseline (test-only)
	$(BIN)/python -m pip install --quiet -e '.[dev,parity]'

run: $(STAMP)
	$(BIN)/convscope serve --host $(HOST) --port $(PORT)

lint: $(STAMP) lint-js
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy server

lint-js:  ## ESLint on web/js, once `npm ci` has installed it (CI does; make test works without)
	@if [ -x node_modules/.bin/eslint ]; then \
		node_modules/.bin/eslint --max-warnings 0 web/ eslint.config.js; \
	else echo "eslint: run npm ci to lint the front end"; fi

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/convscope bench --json --weights model_weights/mnist_cnn.npz

train: $(STAMP)
	$(BIN)/convscope train --arch three-conv --outliers 6000 --epochs 30 --seed 1 \
		--out model_weights/mnist_cnn.npz

evaluate: $(STAMP)
	$(BIN)/convscope evaluate model_weights/mnist_cnn.npz

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
