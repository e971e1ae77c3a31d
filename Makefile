# One command each: `make install`, `make test`. Everything runs inside .venv.
PY := .venv/bin/python
PIP := .venv/bin/pip --disable-pip-version-check
TORCH_VERSION ?= 2.13.0

.PHONY: install test test-all lint format bench report clean

install:
	python3 -m venv .venv
	# torch first, pinned: on a CPU-only machine this takes the CPU wheel, never the CUDA build.
	$(PIP) install --compile "torch==$(TORCH_VERSION)"
	$(PIP) install --compile -e ".[dev]"
	# hydra-optuna-sweeper declares optuna<3 (broken storage under SQLAlchemy 2); its code works
	# with the modern optuna installed above, so it is installed without its dependency pins.
	$(PIP) install --compile --no-deps "hydra-optuna-sweeper==1.3.0"
	$(PY) -c "import tpbench, lightning, optuna, hydra_plugins.hydra_optuna_sweeper; print('tpbench installed')"

test:
	.venv/bin/pytest -q

test-all:
	.venv/bin/pytest -q -m ""

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format:
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

bench:
	$(PY) scripts/bench.py

report:
	.venv/bin/tpbench report $(DIR)

clean:
	rm -rf .venv logs outputs multirun .pytest_cache
