# Two commands do all setup on a fresh clone (see README):
#   make study    -> installs everything, then runs the default self-vs-cross study with a report
#   make test     -> installs everything, then runs the test suite (what CI runs)
# `make evaluate` is a quicker first look: the bundled Qwen 0.5B predicting itself, untrained.
# Both create ./.venv on first use. PYTHON picks the interpreter the venv is made from.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
STUDY_OUT ?= runs/default
OUT ?= runs/evaluate
MODEL ?= bundled/qwen2.5-coder-0.5b-instruct
N ?= 100

.PHONY: setup test test-fast evaluate study smoke clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel; an unpinned torch would pull a CUDA build.
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[bundled,dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not real_model"

evaluate: setup
	$(BIN)/inward evaluate --model $(MODEL) --task animals_long \
		--property first_character --property second_character \
		--property starts_with_vowel --property first_word --n $(N) --out $(OUT)

study: setup
	$(BIN)/inward study --preset default --out $(STUDY_OUT)

smoke: setup
	$(BIN)/inward study --preset smoke --out runs/smoke

clean-venv:
	rm -rf $(VENV)
