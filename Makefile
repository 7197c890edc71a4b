# Emotekit: `make demo` runs the emoji keyboard, `make test` the whole test suite.
PY := .venv/bin/python

.PHONY: setup setup-web demo test test-fast lint lint-js models fer-model device-bundle wasm

setup:
	bash scripts/setup.sh

setup-web:
	bash scripts/setup.sh --web

demo: setup-web
	$(PY) -m mobile_demo

lint: setup
	.venv/bin/ruff check .

# ESLint (eslint.config.mjs) on the page's modules and the Node scripts of tests/browser, tests/node and benchmarks.
lint-js: setup-web
	mobile_demo/node_modules/.bin/eslint mobile_demo/static tests/browser tests/node benchmarks

test: setup-web lint-js
	.venv/bin/ruff check .
	$(PY) -m pytest -q

# The tests that need neither Chromium nor minutes: a quick check while editing.
test-fast: setup
	.venv/bin/ruff check .
	$(PY) -m pytest -q -m 'not slow and not browser'

# The page's crop in WebAssembly (mobile_demo/wasm/crop.c; the .wasm is committed): needs clang and lld.
wasm:
	bash scripts/build_wasm.sh

# Retrain the models the demo ships (long: see mobile_demo/models/manifest.json for the commands).
models: fer-model

fer-model: setup
	bash scripts/train_shipped_models.sh

# The FER teacher's bundle for an accelerator machine without TensorFlow (scripts/device_teacher.sh).
FER ?= ../shared/data/fer2013
device-bundle: setup
	$(PY) -m data_pipelines npz $(FER)/train --out runs/device/fer48-train.npz --compression lzma
	.venv/bin/pip download -q --no-deps -d runs/device/wheels keras==3.15.1 namex==0.1.0 optree==0.20.0 \
	  --python-version 3.12 --only-binary=:all: --platform manylinux_2_28_x86_64
