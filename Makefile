# geodata — every target installs what it needs into .venv first.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE ?= 1
export PYTHONHASHSEED := 0

SET ?=
SET_ARGS := $(foreach s,$(SET),--set $(s))

.PHONY: help install install-dev install-train demo test bench sample-data catalog clean \
        mp16-rand-500k eo-instruct crossview-pairs geo-r1-scaffold

help:
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# The train set tested together (geodata_train/constraints-ci.txt): torch 2.14.1 + torchvision 0.29.1
# (CUDA builds, run on CPU here) give the stock Qwen2.5-VL processor the tests train with.
TRAIN_CONSTRAINTS ?= geodata_train/constraints-ci.txt

$(VENV)/.installed-dev: pyproject.toml $(TRAIN_CONSTRAINTS) | $(BIN)/python
	$(BIN)/pip install -q -c $(TRAIN_CONSTRAINTS) -e '.[dev,train]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed ## install geodata into .venv
install-dev: $(VENV)/.installed-dev ## install geodata with the dev and train extras (the tested train set)

sample-data: install ## write the embedded sample sources under data/samples
	$(BIN)/geodata sample-data

demo: install ## build every dataset at sample scale and print a summary
	$(BIN)/geodata demo

test: install-dev ## run the test suite (offline, CPU)
	$(BIN)/python -m pytest tests geodata

$(VENV)/.installed-ray: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[ray]'
	touch $(VENV)/.installed $@

bench: install $(VENV)/.installed-ray ## benchmarks (not tests); results go to docs/benchmarks.md
	$(BIN)/python -m benchmarks.bench
	$(BIN)/python -m benchmarks.bench_scale

catalog: install ## list the source datasets geodata knows
	$(BIN)/geodata catalog

mp16-rand-500k: install ## MP16-Rand-500K (MP16_ROOT=/data/mp16, SET="sample.n=1000")
	$(BIN)/geodata build mp16-rand-500k $(SET_ARGS)

crossview-pairs: install ## Geo-R1 cross-view MCQ pairs (CVUSA_ROOT, CVACT_ROOT, VIGOR_ROOT, CVCITIES_ROOT)
	$(BIN)/geodata build crossview-pairs $(SET_ARGS)

geo-r1-scaffold: install ## Geo-R1 scaffolding CoT from MP-16 (MP16_ROOT, SET="sample.n=1000")
	$(BIN)/geodata build geo-r1-scaffold $(SET_ARGS)

eo-instruct: install ## GeoVLM-R1 EO instruction set, one config per task (UCM_ROOT, DOTA_ROOT ...; SET="mix.total=318000")
	$(BIN)/geodata build eo-instruct $(SET_ARGS)

clean: ## remove built datasets and samples geodata wrote (keeps .venv and every file of yours)
	@$(BIN)/python -c 'import sys; from geodata.dataset.ownership import clean_built; \
	kept = clean_built("datasets", "data/samples"); \
	print("kept (not written by geodata):", *kept[:10], "..." if len(kept) > 10 else "") if kept else None'

# -- training: RECIPE=geodata_train/recipes name or YAML, SET="key=value ..." ----------
RECIPE ?=
.PHONY: sft grpo predict tiny-model install-vllm doctor

$(VENV)/.installed-train: pyproject.toml $(TRAIN_CONSTRAINTS) | $(BIN)/python
	$(BIN)/pip install -q -c $(TRAIN_CONSTRAINTS) -e '.[train]'
	touch $(VENV)/.installed $@

install-train: $(VENV)/.installed-train ## install geodata with the train extra (the tested set: torch, torchvision, transformers, trl, peft, accelerate)

install-vllm: $(VENV)/.installed-train ## add vLLM (CUDA; the set vllm 0.31 and TRL 1.16 accept: torch 2.13.0, transformers<5.18)
	$(BIN)/pip install -q -e '.[train,vllm]'

doctor: install ## what is installed for training, what each recipe needs, what is missing
	$(BIN)/geodata train doctor

# RESUME=1: continue from the last checkpoint in output_dir; RESUME=runs/x/checkpoint-500: from that one
RESUME ?=
RESUME_ARGS = $(if $(RESUME),--resume $(filter-out 1,$(RESUME)))

sft: install-train ## SFT with a recipe (RECIPE=geo-r-sft SET="train.max_steps=100" RESUME=1)
	$(BIN)/geodata train sft $(or $(RECIPE),geo-r-sft) $(RESUME_ARGS) $(SET_ARGS)

grpo: install-train ## GRPO with a recipe (RECIPE=geo-r-grpo SET="grpo.num_generations=4" RESUME=1)
	$(BIN)/geodata train grpo $(or $(RECIPE),geo-r-grpo) $(RESUME_ARGS) $(SET_ARGS)

predict: install-train ## predictions Parquet (RECIPE=mp16-predict, or DATASET=x MODEL=path|PREDICT_URL=http://h:8000/v1 CONFIG=name|all)
	$(BIN)/geodata predict $(if $(DATASET),,$(or $(RECIPE),mp16-predict)) $(if $(DATASET),--dataset $(DATASET)) \
	  $(if $(MODEL),--model $(MODEL)) $(if $(CONFIG),--config $(CONFIG)) $(if $(PREDICT_URL),--base-url $(PREDICT_URL)) \
	  $(if $(OUT),--out $(OUT)) $(SET_ARGS)

tiny-model: install-train ## random-init tiny Qwen2.5-VL for CPU smoke runs (OUT=runs/tiny-model)
	$(BIN)/geodata train tiny-model $(or $(OUT),runs/tiny-model)

# -- validate / publish / report / inspect: DATASET=name, REPO=org/name -----------
DATASET ?=
REPO ?=
HUB ?=
.PHONY: validate publish report inspect
_need_dataset = @test -n "$(DATASET)" || { echo "usage: make $@ DATASET=name$(1)" >&2; exit 2; }

validate: install ## check a built dataset: schema, images, ids, reward self-check (DATASET=mp16-rand-500k)
	$(call _need_dataset)
	$(BIN)/geodata validate $(DATASET)

publish: install ## validate + assemble + upload to the Hub (DATASET=x REPO=org/x, PRIVATE=1, DRY_RUN=1)
	$(call _need_dataset, REPO=org/name)
	@test -n "$(REPO)" || { echo "usage: make publish DATASET=name REPO=org/name" >&2; exit 2; }
	HF_HUB_OFFLINE=0 $(BIN)/geodata publish $(DATASET) --repo-id $(REPO) $(if $(PRIVATE),--private) $(if $(DRY_RUN),--dry-run)

report: install ## maps and charts beside a built dataset, linked from its card (DATASET=mp16-hard-200k)
	$(call _need_dataset)
	$(BIN)/geodata report $(DATASET)

inspect: install ## interactive DuckDB shell over a dataset's views (DATASET=x; HUB=org/name for a published set)
	$(BIN)/geodata inspect $(DATASET) $(foreach h,$(HUB),--hub $(h))

# -- MP16-Hard-200K and geolocation evaluation --------------------------------
.PHONY: mp16-hard-200k eval
EVAL_PREDICTIONS = $(or $(PREDICTIONS),$(or $(GEODATA_DATA),data)/samples/predictions/predictions.csv)
EVAL_TRUTH = $(or $(TRUTH),mp16-hard-200k)

mp16-hard-200k: install ## MP16-Hard-200K (PREDICTIONS=preds.parquet or PREDICT_URL=http://host:8000/v1 MP16_ROOT=/data/mp16; default: sample predictions)
	$(if $(PREDICTIONS),PREDICTIONS=$(PREDICTIONS)) $(if $(PREDICT_URL),PREDICT_URL=$(PREDICT_URL)) $(BIN)/geodata build mp16-hard-200k $(SET_ARGS)

EVAL_DATASETS = $(or $(GEODATA_DATASETS),datasets)

eval: install ## score predictions (PREDICTIONS=preds.csv TRUTH=dataset-name|folder|im2gps3k_places365.csv)
	@# builds mp16-hard-200k only when it is missing: never over one built from other inputs
	@if [ -z "$(TRUTH)" ] && [ ! -f "$(EVAL_DATASETS)/mp16-hard-200k/manifest.json" ]; then $(BIN)/geodata build mp16-hard-200k; fi
	@if [ ! -f "$(EVAL_PREDICTIONS)" ]; then $(BIN)/geodata sample-data --only mp16 --only predictions >/dev/null; fi
	$(BIN)/geodata eval $(EVAL_PREDICTIONS) --truth $(EVAL_TRUTH)

# -- benchmarks, reproduce chains, GPU check (issue 22) -----------------------------------------
# A chain's logic is geodata/chains.py, its stages pipelines/chains/<chain>.yaml; outputs go to
# runs/<chain>/<stage>/, current stages are skipped, a killed chain resumes. STAGE=sft stops there.
PROFILE ?= tiny
STAGE ?=
.PHONY: bench-list reproduce-geo-r reproduce-geo-r1 reproduce-geovlm-r1 gpu-check
CHAIN = $(BIN)/python -m geodata.chains $(1) --profile $(PROFILE) $(if $(STAGE),--stage $(STAGE))

bench-list: install ## the benchmark pipelines (pipelines/bench/), their release variables and papers
	$(BIN)/geodata bench list

reproduce-geo-r: install-train ## Geo-R end to end: data, SFT, hotspots, Hard-200K, GRPO, IM2GPS3K/YFCC4K eval vs the paper (PROFILE=tiny|paper)
	$(call CHAIN,geo-r)

reproduce-geo-r1: install-train ## Geo-R1 end to end: scaffold SFT, cross-view GRPO, cross-view test sets (PROFILE=tiny|paper)
	$(call CHAIN,geo-r1)

reproduce-geovlm-r1: install-train ## GeoVLM-R1 end to end: EO SFT, per-task GRPO, EO test splits (PROFILE=tiny|paper)
	$(call CHAIN,geovlm-r1)

gpu-check: install-train ## on one CUDA GPU (<= 8 min): Qwen2.5-VL-3B SFT / GRPO steps and vLLM predict throughput
	$(BIN)/python benchmarks/gpu_check.py
