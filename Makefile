# Emotekit: `make demo` runs the emoji keyboard, `make test` the whole test suite.
PY := .venv/bin/python

.PHONY: setup setup-web demo test lint models fer-model

setup:
	bash scripts/setup.sh

setup-web:
	bash scripts/setup.sh --web

demo: setup-web
	$(PY) -m mobile_demo

lint: setup
	.venv/bin/ruff check .

test: setup-web
	.venv/bin/ruff check .
	$(PY) -m pytest -q

# Retrain the models the demo ships (long: see mobile_demo/models/manifest.json for the commands).
models: fer-model

fer-model: setup
	bash scripts/train_shipped_models.sh
