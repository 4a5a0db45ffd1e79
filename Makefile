# ssod: `make demo` (train + evaluate on the offline benchmark) and `make test` (everything CI checks).
# Both work offline: dependencies come from the package registries, data from Debian/npm/PyPI packages.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export SSOD_DATA ?= $(CURDIR)/data
DEMO_DIR ?= runs/demo
PAPERMILL := $(BIN)/papermill --log-output --no-progress-bar
# Workers x threads <= cores: OpenMP threads spin at barriers, so oversubscribed torch processes slow each other 5-30x.
CORES := $(shell nproc 2>/dev/null || echo 1)
NB_WORKERS ?= $(shell n=$(CORES); echo $$(( n < 2 ? 1 : 2 )))
NB_THREADS := $(shell echo $$(( $(CORES) / $(NB_WORKERS) > 0 ? $(CORES) / $(NB_WORKERS) : 1 )))

.PHONY: install data demo reproduce baselines test nbtest pytest sync-check clean-runs

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-compile -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

data: install
	$(BIN)/python -m data_scripts.prepare fmnist

# The main job: the vanilla network (alpha = 0) with every post-hoc baseline, SSOD (alpha = 1.5), one table.
# Budget for 10 minutes on a 2-core CPU without native bf16 (fp32): 3 epochs of 45,000 images, detectors tuned on 1,000 + 1,000
# validation images. The table notebooks (make reproduce) use the demo preset as it is (3 epochs, full tuning).
DEMO_BUDGET ?= -p limit_train 45000 -p limit_tune 1000
demo: data
	@mkdir -p $(DEMO_DIR)
	time $(PAPERMILL) nbs/train.ipynb $(DEMO_DIR)/ce.ipynb -p alpha 0 $(DEMO_BUDGET) -p out_dir $(DEMO_DIR)/ce
	time $(PAPERMILL) nbs/train.ipynb $(DEMO_DIR)/ssod.ipynb -p alpha 1.5 $(DEMO_BUDGET) -p out_dir $(DEMO_DIR)/ssod
	$(BIN)/python -m ssod.results $(DEMO_DIR)/ce $(DEMO_DIR)/ssod

# Every table and figure notebook at the demo preset on the offline benchmark; runs are shared through runs/store.
REPRO_NBS := table2_cifar10 table1_imagenet table3_textures table4_alpha table5_balance table6_architectures \
             fig2_tsne fig3_locality fig4_examples
reproduce: data
	@mkdir -p runs/reproduce figures
	@for nb in $(REPRO_NBS); do \
	  echo "== $$nb"; \
	  $(PAPERMILL) nbs/$$nb.ipynb runs/reproduce/$$nb.ipynb || exit 1; \
	done
	@ls figures

# Every method (post-hoc baselines, SSOD, GODIN, SupCon, SSOD+SupCon, CSI, MOS), same budget, one table.
baselines: data
	@mkdir -p runs/reproduce figures
	time $(PAPERMILL) nbs/baselines.ipynb runs/reproduce/baselines.ipynb
	@cat figures/baselines.md

# notebooks and library must agree: export + clean must not change tracked files
sync-check: install
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  $(BIN)/nbdev_export && $(BIN)/nbdev_clean && \
	  git diff --exit-code --stat -- ssod nbs || { echo "nbdev_export/nbdev_clean changed ssod/ or nbs/: commit the result"; exit 1; }; \
	fi

nbtest: data
	OMP_NUM_THREADS=$(NB_THREADS) $(BIN)/nbdev_test --n_workers $(NB_WORKERS) --timing

pytest: data
	OMP_NUM_THREADS=$(CORES) $(BIN)/python -m pytest -q tests

test: sync-check nbtest pytest

clean-runs:
	rm -rf runs
