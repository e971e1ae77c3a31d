# One command each: `make install`, `make test`. Everything runs inside .venv.
PY := .venv/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
LOCK := requirements.lock
TORCH_VERSION ?= $(shell sed -n 's/^torch==//p' $(LOCK))

.PHONY: install install-latest lock test test-all slurm slurm-down lint format bench report clean

# The exact environment of requirements.lock (docs/runs.md: provenance and how to update it).
install:
	python3 -m venv .venv
	# torch first, pinned: on a CPU-only machine this takes the CPU wheel, never the CUDA build;
	# on a GPU machine the CUDA build with its own dependencies.
	$(PIP) install --compile "torch==$(TORCH_VERSION)"
	# every other package at its locked version, without resolving: the lock is complete, and
	# hydra-optuna-sweeper's optuna<3 pin (broken storage under SQLAlchemy 2) is not applied.
	$(PIP) install --compile --no-deps -r $(LOCK)
	$(PIP) install --compile --no-deps -e .
	$(PY) -c "import tpbench, lightning, optuna, pandas, hydra_plugins.hydra_optuna_sweeper; print('tpbench installed')"

# The newest versions pyproject.toml allows (then `make lock` records them).
install-latest:
	python3 -m venv .venv
	$(PIP) install --compile "torch==$(TORCH_VERSION)"
	$(PIP) install --compile -e ".[dev]"
	# hydra-optuna-sweeper declares optuna<3; its code works with the modern optuna above.
	$(PIP) install --compile --no-deps "hydra-optuna-sweeper==1.3.0"

# Write requirements.lock from .venv: every installed package but tpbench, torch without its
# +cpu / +cuXXX build suffix (the same pin takes the right build on each machine).
lock:
	{ echo "# The exact environment tpbench's results were measured in (Linux x86_64, Python 3.11)."; \
	  echo "# Installed by \`make install\` (--no-deps, after torch); regenerate with \`make lock\` (docs/runs.md)."; \
	  $(PIP) freeze --exclude-editable --exclude tpbench | grep -v '^#' | sed -E 's/^(torch==[^+]+)\+.*/\1/'; } > $(LOCK)

test:
	$(PY) -m pytest -q

# every test: the slow ones, and the slurm ones (skipped, with the reason, where no cluster answers)
test-all:
	$(PY) -m pytest -q -rs -m ""

# this machine as a single-node Slurm cluster with job accounting, as root (docs/scaling.md)
slurm:
	scripts/slurm.sh up

slurm-down:
	scripts/slurm.sh down

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
