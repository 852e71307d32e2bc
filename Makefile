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

SERVER_STAMP := $(VENV)/.installed-server-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
# llama.cpp (the `server` extra) is built once per machine into this folder, without Intel AMX:
# llama.cpp's AMX matmul segfaults on the Q4_K_M bundled models on AMX CPUs (measured here on a
# Xeon with AMX_INT8; ggml-org/llama.cpp#20824). GGML_NATIVE=OFF with explicit AVX2 flags keeps
# the build portable. The wheel is reused by later venvs (pip's own cache would ignore CMAKE_ARGS).
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CPP_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_WHEELS ?= $(HOME)/.cache/inward/wheels/llama-cpp-$(shell echo '$(LLAMA_CPP_VERSION) $(LLAMA_CPP_CMAKE)' | cksum | cut -d' ' -f1)

.PHONY: setup-browser setup setup-server lint format test test-fast evaluate study smoke bench bench-quick clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel; an unpinned torch would pull a CUDA build.
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[bundled,dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# `make test` also runs the API backends against a real OpenAI-compatible server, llama.cpp's
# (tests/server): the `server` extra builds llama-cpp-python from source, about 4 minutes on
# 2 cores the first time (pip caches the wheel). `make study` does not need it.
setup-server: $(SERVER_STAMP)

$(SERVER_STAMP): $(STAMP)
	ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || CMAKE_ARGS="$(LLAMA_CPP_CMAKE)" \
		$(BIN)/python -m pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
		-w $(LLAMA_WHEELS) "llama-cpp-python==$(LLAMA_CPP_VERSION)"
	$(BIN)/python -m pip install -q --no-deps --force-reinstall $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	$(BIN)/python -m pip install -q --find-links $(LLAMA_WHEELS) -e ".[bundled,dev,server]"
	rm -f $(VENV)/.installed-server-*
	touch $(SERVER_STAMP)

# Chromium for the report-width test (tests/experiments/test_report_browser.py): Debian's package,
# installed once per machine when apt and root are there; without it that test is skipped.
setup-browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
		  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; } || \
		  echo "setup-browser: could not install Chromium (needs apt and root); the report-width test will be skipped"; }

# Formatter, linter and type checker (configured in pyproject.toml); `make test` runs them first.
lint: setup
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

test: setup-server setup-browser lint
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not real_model and not server"

evaluate: setup
	$(BIN)/inward evaluate --model $(MODEL) --task animals_long \
		--property first_character --property second_character \
		--property starts_with_vowel --property first_word --n $(N) --out $(OUT)

study: setup
	$(BIN)/inward study --preset default --out $(STUDY_OUT)

smoke: setup
	$(BIN)/inward study --preset smoke --out runs/smoke

# Speed of inward vs the paper's naive methods, side by side (benchmarks/README.md); last line is JSON.
bench: setup
	$(BIN)/python benchmarks/run.py --study-run $(STUDY_OUT) --out runs/bench.json

bench-quick: setup
	$(BIN)/python benchmarks/run.py --quick --study-run $(STUDY_OUT) --out runs/bench-quick.json

clean-venv:
	rm -rf $(VENV)
