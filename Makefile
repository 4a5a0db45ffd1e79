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

.PHONY: install data data-study demo demo-fmnist recipe recipe-batch recipe-wd recipe-ls recipe-muon \
        recipe-plateau recipe-presets recipe-demo-lr table6-lr trained-time step-isa table2-adamw \
        compile-step trained study study-budget study-selection study-plateau reproduce baselines docs site \
        test test-slow nbtest pytest sync-check clean-runs

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-compile -c constraints.txt -e ".[dev]"
	@# byte-compile once, on every core (about 20 s on 2): where PYTHONDONTWRITEBYTECODE is set, as on many CI images,
	@# every process would otherwise compile torch's sources again (`import ssod.experiment`: 6.6 s against 1.9-2.3 s
	@# on a 2-core AMD EPYC with AVX-512, natively and under ONEDNN_MAX_CPU_ISA=AVX2 alike); a few packages ship files
	@# that are not Python 3.11 (templates, tests), so compileall's status is not checked
	-@$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1
	@touch $(STAMP)

install: $(STAMP)

data: install
	$(BIN)/python -m data_scripts.prepare fmnist fmnist_scenes_benchmark

data-study: data
	$(BIN)/python -m data_scripts.prepare scenes_rho_benchmark

# The main job, on the offline objects-in-scenes benchmark (garments on photographs, 56x56, object masks): the vanilla
# network (alpha = 0) with every post-hoc baseline and SSOD (alpha = 1.5), one table with the near, scene, texture and
# noise groups and the sampler checked against the true masks. The demo preset (ssod.config.PRESETS, notebook 04a): one
# epoch of all 55,000 training images with the offline recipe; detectors tuned on 500 + 500 validation images; the
# first 1,000 images of every test set.
DEMO_BENCHMARK ?= fmnist_scenes
DEMO_BUDGET ?= -p benchmark $(DEMO_BENCHMARK)
demo: data
	@mkdir -p $(DEMO_DIR)
	time $(PAPERMILL) nbs/train.ipynb $(DEMO_DIR)/ce.ipynb -p alpha 0 $(DEMO_BUDGET) -p out_dir $(DEMO_DIR)/ce
	time $(PAPERMILL) nbs/train.ipynb $(DEMO_DIR)/ssod.ipynb -p alpha 1.5 $(DEMO_BUDGET) -p out_dir $(DEMO_DIR)/ssod
	$(BIN)/python -m ssod.results $(DEMO_DIR)/ce $(DEMO_DIR)/ssod

# The same on Fashion-MNIST alone (28x28, no background), at the same budget (the demo preset of that benchmark).
DEMO_FMNIST_BUDGET ?= -p benchmark fmnist
demo-fmnist: data
	@mkdir -p $(DEMO_DIR)_fmnist
	time $(PAPERMILL) nbs/train.ipynb $(DEMO_DIR)_fmnist/ce.ipynb -p alpha 0 $(DEMO_FMNIST_BUDGET) \
	  -p out_dir $(DEMO_DIR)_fmnist/ce
	time $(PAPERMILL) nbs/train.ipynb $(DEMO_DIR)_fmnist/ssod.ipynb -p alpha 1.5 $(DEMO_FMNIST_BUDGET) \
	  -p out_dir $(DEMO_DIR)_fmnist/ssod
	$(BIN)/python -m ssod.results $(DEMO_DIR)_fmnist/ce $(DEMO_DIR)_fmnist/ssod

# The mechanism study (nbs/study_mechanism.ipynb): objects in shared scenes at background-class correlation rho 0 and
# 0.8, the vanilla network with every post-hoc baseline and the SSOD network, 3 seeds, plus controls, at the study
# preset's budget (ssod.config.PRESETS). Every run goes through runs/store, so an interrupted study resumes; the records
# are copied to figures/study_runs/ and the tables and figures to figures/study_*.
study: data-study
	@mkdir -p runs/study figures
	time $(PAPERMILL) nbs/study_mechanism.ipynb runs/study/study_mechanism.ipynb

# How far the study's budget is from the plateau, and SSOD with a trained classifier (the paper's ImageNet protocol):
# the vanilla network at rho = 0.8 on all 55,000 training images, every post-hoc baseline on it, and SSOD fine-tuned
# from it for one epoch (records in figures/study_runs/selection/).
PLATEAU := runs/selection/plateau_rho0.8
study-plateau: data-study
	$(BIN)/ssod-train --preset study --benchmark scenes_rho0.8 --alpha 0 --limit-train 0 --epochs 3 --detectors msp \
	  --no-tune --out-dir $(PLATEAU)
	$(PAPERMILL) nbs/evaluate.ipynb runs/selection/plateau_eval.ipynb -p checkpoint $(PLATEAU) \
	  -p out_dir $(PLATEAU)/eval/baselines -p detectors msp,odin,energy,mahalanobis,knn,react
	$(BIN)/ssod-train --preset study --benchmark scenes_rho0.8 --alpha 1.5 --limit-train 0 --epochs 1 \
	  --init-from $(PLATEAU) --detectors msp,ssod,ssod_posterior --out-dir $(PLATEAU)_ssod_finetuned
	@for r in $(PLATEAU)/record.json $(PLATEAU)/eval/baselines/record.json $(PLATEAU)_ssod_finetuned/record.json; do \
	  mkdir -p figures/study_runs/selection/$$(dirname $${r#runs/selection/}); \
	  cp $$r figures/study_runs/selection/$${r#runs/selection/}; done

# The study's budget at the trained recipe, chosen on ID validation accuracy before it: the vanilla network at rho = 0.8
# (seed 0) on N training images for E epochs, for each candidate NxE (records in figures/study_runs/selection/budget_*):
# the cheapest whose run twice as long gains less than a point.
STUDY_BUDGETS := 10000x8 10000x16 20000x5 20000x10 55000x5 55000x10 55000x20
study-budget: data-study
	@for b in $(STUDY_BUDGETS); do \
	  [ -f runs/selection/budget_$$b/record.json ] && continue; \
	  $(BIN)/ssod-train --preset trained --optimizer adamw --benchmark scenes_rho0.8 --alpha 0 --precision fp32 \
	    --limit-train $${b%x*} --epochs $${b#*x} --limit-eval 1000 --limit-tune 1000 --detectors msp --no-tune \
	    --out-dir runs/selection/budget_$$b || exit 1; \
	  mkdir -p figures/study_runs/selection/budget_$$b; \
	  cp runs/selection/budget_$$b/record.json figures/study_runs/selection/budget_$$b/; done

# The study's backbone, chosen on ID validation data before it: small_resnet vs small_resnet_local at rho = 0.8, vanilla
# networks trained for about the same time (records in figures/study_runs/selection/).
STUDY_SELECT := --preset adamw_cosine --benchmark scenes_rho0.8 --alpha 0 --epochs 2 --limit-eval 1000 --limit-tune 1000 \
                --precision fp32 --detectors msp --no-tune
study-selection: data-study
	@for spec in "small_resnet 15000" "small_resnet_local 20000"; do set -- $$spec; \
	  $(BIN)/ssod-train $(STUDY_SELECT) --arch $$1 --limit-train $$2 --out-dir runs/selection/arch_$$1 || exit 1; \
	  mkdir -p figures/study_runs/selection/arch_$$1; \
	  cp runs/selection/arch_$$1/record.json figures/study_runs/selection/arch_$$1/; done

# The offline recipe, chosen by time to accuracy on ID validation data (benchmarks/time_to_accuracy.py, in fp32): each
# recipe against the first one and two choices of the demo recipe against the recipe without them, under oneDNN's AVX2
# kernels (as on a CPU without native bf16) and natively (figures/time_to_accuracy.*); and 4 epochs of the trained
# recipe with and without translations and flips (records in figures/recipe_runs/selection/).
RECIPE_TRAIN := ONEDNN_MAX_CPU_ISA=AVX2 $(BIN)/ssod-train --benchmark fmnist_scenes --precision fp32
# $(call recipe_run,NAME,ARGUMENTS,FOLDER): train with RECIPE_TRAIN and ARGUMENTS into runs/recipe/NAME, then copy its
# record to FOLDER/NAME
define recipe_run
$(RECIPE_TRAIN) $(2) --out-dir runs/recipe/$(strip $(1))
@mkdir -p $(strip $(3))/$(strip $(1)) && cp runs/recipe/$(strip $(1))/record.json $(strip $(3))/$(strip $(1))/
endef
comma := ,
# $(call write_whole,COMMAND,FILE): what COMMAND prints, in FILE, written whole or not at all (a failed run leaves the
# committed file as it was)
define write_whole
@( $(1) ) > $(strip $(2)).part && mv $(strip $(2)).part $(strip $(2)) || { rm -f $(strip $(2)).part; exit 1; }
@cat $(strip $(2))
endef
# torch.compile on the CPU: the offline recipe's CE and SSOD training steps, eager and compiled, natively and under
# oneDNN's AVX2 kernels (as on a CPU without native bf16), fp32; the output is figures/recipe_runs/compile_step.txt.
COMPILE_STEP := benchmarks/step_overhead.py --arch small_resnet_s2 --size 56 --channels 1 --batch 128 --precision fp32
# $(call kernels,ISA): a shell line that runs what follows on oneDNN's AVX2 kernels where ISA is AVX2, natively otherwise
kernels = if [ $(1) = AVX2 ]; then export ONEDNN_MAX_CPU_ISA=AVX2; else unset ONEDNN_MAX_CPU_ISA; fi
COMPILE_STEP_RUNS := lscpu | grep -m1 'Model name'; for isa in native AVX2; do for c in 0 1; do \
  echo "== kernels $$isa$(comma) compile $$c"; $(call kernels,$$isa); \
  $(BIN)/python $(COMPILE_STEP) --compile $$c || exit 1; done; done
compile-step:
	$(call write_whole,$(COMPILE_STEP_RUNS),figures/recipe_runs/compile_step.txt)

# SSOD's step against the vanilla one with Muon, in the demo's batches of 32 and the tables' 128, natively and under
# oneDNN's AVX2 kernels in fp32, and natively in bf16 where the CPU has it, into STEP_ISA_OUT (a markdown page):
# make step-isa STEP_ISA_OUT=figures/step_overhead_family26.md
STEP_ISA := benchmarks/step_overhead.py --arch small_resnet_s2 --size 56 --channels 1 --optimizer muon
STEP_ISA_OUT ?= figures/step_overhead_isa.md
STEP_ISA_RUNS := for run in "native fp32 32" "native fp32 128" "native bf16 32" "AVX2 fp32 32" "AVX2 fp32 128"; do \
  set -- $$run; echo "== kernels $$1: python $(STEP_ISA) --precision $$2 --batch $$3"; \
  $(call kernels,$$1); $(BIN)/python $(STEP_ISA) --precision $$2 --batch $$3 || exit 1; done
step-isa:
	$(call step_md,SSOD's training step against the vanilla one with Muon$(comma) by kernels$(comma) precision and batch,\
	  $(STEP_ISA_RUNS),$(STEP_ISA_OUT))

# The demo's batch size on objects in scenes: one epoch of the vanilla network at batches of 128, 64, 32 and 16, two
# learning rates, two seeds, and the trained preset's 5 epochs at batch 32; ID validation accuracy, fp32 natively
# (figures/batch_size.*); and the SSOD step against the vanilla one at batch 32 (figures/step_overhead_batch32.md).
# This target and the next two measured the demo preset when it trained with AdamW: each recipe names it.
STEP_BATCH32 := benchmarks/step_overhead.py --arch small_resnet_s2 --size 56 --channels 1 --batch 32 --precision fp32
# $(call step_md,TITLE,COMMAND,FILE): what COMMAND (step_overhead.py runs) prints, in FILE, a markdown page
step_md = $(call write_whole,echo "# $(1)"; echo; echo '```'; $(2) || exit 1; echo '```',$(3))
BATCH_TTA := $(BIN)/python benchmarks/time_to_accuracy.py --isa native --out figures/batch_size
recipe-batch: data
	$(BATCH_TTA) --every 60 \
	  --recipes "demo[optimizer=adamw,batch_size=128],demo[optimizer=adamw,batch_size=64],\
	    demo[optimizer=adamw,batch_size=128,lr=0.02],demo[optimizer=adamw,batch_size=64,lr=0.005]"
	$(BATCH_TTA) --every 120 --append \
	  --recipes "demo[optimizer=adamw,batch_size=128,seed=1],demo[optimizer=adamw,batch_size=64,seed=1],\
	    demo[optimizer=adamw,batch_size=32],demo[optimizer=adamw,batch_size=32,lr=0.005]"
	$(BATCH_TTA) --every 60 --append \
	  --recipes "demo[optimizer=adamw,batch_size=32,seed=1],demo[optimizer=adamw,batch_size=16],\
	    demo[optimizer=adamw,batch_size=16,lr=0.005]"
	$(BATCH_TTA) --every 150 --append --recipes "trained[optimizer=adamw,batch_size=32]"
	$(call step_md,SSOD's training step against the vanilla one in the demo's batches of 32,$(BIN)/python $(STEP_BATCH32),\
	  figures/step_overhead_batch32.md)

# One setting of the recipe after the demo's one epoch (ID validation accuracy, fp32 natively), its table named next:
EPOCH_TTA := $(BIN)/python benchmarks/time_to_accuracy.py --isa native --every 600 --out
# the weight decay at 0.05 (the recipe's), 0.005 and 0.2, the vanilla network on two seeds (figures/weight_decay.*)
recipe-wd: data
	$(EPOCH_TTA) figures/weight_decay --recipes "demo[optimizer=adamw],demo[optimizer=adamw,weight_decay=0.005],\
	    demo[optimizer=adamw,weight_decay=0.2]"
	$(EPOCH_TTA) figures/weight_decay --append \
	  --recipes "demo[optimizer=adamw,seed=1],demo[optimizer=adamw,weight_decay=0.005,seed=1],\
	    demo[optimizer=adamw,weight_decay=0.2,seed=1]"

# label smoothing of the cross entropy at 0 (the recipe's and the paper's) and 0.2, the vanilla network on two seeds
# and SSOD's on one (figures/label_smoothing.*)
recipe-ls: data
	$(EPOCH_TTA) figures/label_smoothing --recipes "demo[optimizer=adamw],demo[optimizer=adamw,label_smoothing=0.2],\
	    demo[optimizer=adamw,seed=1],demo[optimizer=adamw,label_smoothing=0.2,seed=1]"
	$(EPOCH_TTA) figures/label_smoothing --append --recipes "demo[optimizer=adamw,alpha=1.5],\
	    demo[optimizer=adamw,alpha=1.5,label_smoothing=0.2]"

# Muon (notebook 05a) against AdamW after the demo's epoch, the vanilla network on two seeds and SSOD's on one
# (figures/optimizer.*), the SSOD step against the vanilla one with Muon (figures/step_overhead_muon.md), and the
# trained preset's vanilla network with Muon and the same trained twice as long, its plateau (fp32 under AVX2;
# figures/recipe_runs/selection/trained_muon, plateau_muon)
recipe-muon: data
	$(EPOCH_TTA) figures/optimizer --recipes "demo[optimizer=adamw],demo,demo[seed=1],demo[alpha=1.5]"
	$(call step_md,SSOD's training step against the vanilla one with Muon in the demo's batches of 32,\
	  $(BIN)/python $(STEP_BATCH32) --optimizer muon,figures/step_overhead_muon.md)
	$(call recipe_run,trained_muon,--preset trained --optimizer muon --alpha 0 --detectors msp --no-tune,\
	  figures/recipe_runs/selection)
	$(call recipe_run,plateau_muon,--preset trained --optimizer muon --alpha 0 --detectors msp --no-tune --epochs 10,\
	  figures/recipe_runs/selection)

# The plateau on more seeds: the trained preset's vanilla network trained twice as long on seeds 1 and 2 (seed 0:
# recipe-muon), fp32 under AVX2, into figures/recipe_runs/selection/plateau_muon_s1 and _s2; their 5-epoch networks
# are the main table's (figures/reproduce_runs)
PLATEAU_MUON := --preset trained --optimizer muon --alpha 0 --detectors msp --no-tune --epochs 10
recipe-plateau: data
	$(call recipe_run,plateau_muon_s1,$(PLATEAU_MUON) --seed 1,figures/recipe_runs/selection)
	$(call recipe_run,plateau_muon_s2,$(PLATEAU_MUON) --seed 2,figures/recipe_runs/selection)

# The demo's learning rate with Muon (chosen with AdamW, recipe-batch): 5e-3, 1e-2 (the preset's) and 2e-2 after its one
# epoch, the vanilla and the SSOD network, ID validation accuracy, fp32 natively (DEMO_LR_OUT: .json, .md and .png)
DEMO_LR_OUT ?= figures/demo_lr
recipe-demo-lr: data
	$(EPOCH_TTA) $(DEMO_LR_OUT) --recipes "demo,demo[lr=0.005],demo[lr=0.02],demo[alpha=1.5],demo[alpha=1.5,lr=0.005],\
	    demo[alpha=1.5,lr=0.02]"

# Table 6's learning rate with AdamW in batches of 128 at 64 px, on RegNet-Y-800MF (the cheapest of its networks), ID
# validation accuracy, fp32 natively: 1e-2 (the demo's), 3e-3 and 1e-3 after one epoch, then 3e-3 for three epochs
TABLE6_LR_OUT ?= figures/table6_lr
TABLE6_RECIPE := demo[arch=regnet_y_800mf,image_size=64,optimizer=adamw,batch_size=128
table6-lr: data
	$(EPOCH_TTA) $(TABLE6_LR_OUT) \
	  --recipes "$(TABLE6_RECIPE),lr=0.01],$(TABLE6_RECIPE),lr=0.003],$(TABLE6_RECIPE),lr=0.001]"
	$(BIN)/python benchmarks/time_to_accuracy.py --isa native --every 130 --out $(TABLE6_LR_OUT) --append \
	  --recipes "$(TABLE6_RECIPE),lr=0.003,epochs=3]"

recipe: data
	$(BIN)/python benchmarks/time_to_accuracy.py --isa avx2 \
	  --recipes "adamw_cosine,demo[optimizer=adamw,batch_size=128],\
	    trained[optimizer=adamw,epochs=4,augment=none,hflip=false],demo[optimizer=adamw,batch_size=128,arch=small_resnet],\
	    demo[optimizer=adamw,batch_size=128,lr=0.003],trained[optimizer=adamw]"
	$(BIN)/python benchmarks/time_to_accuracy.py --isa avx2 --append \
	  --recipes "demo[optimizer=adamw,batch_size=128,arch=small_resnet,image_size=28,epochs=2],\
	    demo[optimizer=adamw,batch_size=128,arch=small_resnet,image_size=28,epochs=3]"
	$(BIN)/python benchmarks/time_to_accuracy.py --isa native --recipes "adamw_cosine,\
	    demo[optimizer=adamw,batch_size=128]" --append
	$(call recipe_run,trained_noaug,--preset trained --optimizer adamw --epochs 4 --alpha 0 --detectors msp --no-tune \
	  --augment none --no-hflip,figures/recipe_runs/selection)
	$(call recipe_run,trained_shift_flip,--preset trained --optimizer adamw --epochs 4 --alpha 0 --detectors msp --no-tune \
	  --augment shift --hflip,figures/recipe_runs/selection)

# The two presets as the tables and the demo train them (Muon), against the first offline recipe, in one run on one CPU
# (fp32 under AVX2): figures/time_to_accuracy_presets.*; on a CPU with AVX-512, natively as well, into a file of its own:
# make recipe-presets PRESETS_ISA=native,avx2 PRESETS_OUT=figures/time_to_accuracy_presets_family26
PRESETS_ISA ?= avx2
PRESETS_OUT ?= figures/time_to_accuracy_presets
recipe-presets: data
	$(BIN)/python benchmarks/time_to_accuracy.py --isa $(PRESETS_ISA) --every 60 --out $(PRESETS_OUT) \
	  --recipes "adamw_cosine,demo,trained"

# The trained preset's seed-0 networks, vanilla and SSOD, trained again to time them on the CPU at hand (fp32 under AVX2,
# scored by MSP and SSOD's Eq. 10 alone); the main table's records hold the same training on the CPU that made them:
# make trained-time TRAINED_TIME_DIR=figures/recipe_runs/trained_time_family26
TRAINED_TIME_DIR ?= figures/recipe_runs/trained_time
trained-time: data
	$(call recipe_run,trained_time_ce,--preset trained --alpha 0 --detectors msp --no-tune,$(TRAINED_TIME_DIR))
	$(call recipe_run,trained_time_ssod,--preset trained --alpha 1.5 --detectors msp$(comma)ssod --no-tune,\
	  $(TRAINED_TIME_DIR))
	$(BIN)/python -m ssod.results $(TRAINED_TIME_DIR)/trained_time_ce $(TRAINED_TIME_DIR)/trained_time_ssod

# The trained preset's first networks on objects in scenes, with AdamW (fp32 under AVX2): vanilla and SSOD, and the
# vanilla network trained twice as long, its plateau (records in figures/recipe_runs/; recipe-muon makes them with Muon).
trained: data
	$(call recipe_run,trained_ce,--preset trained --optimizer adamw --alpha 0 --detectors msp --no-tune,figures/recipe_runs)
	$(call recipe_run,trained_ssod,--preset trained --optimizer adamw --alpha 1.5 --detectors msp$(comma)ssod --no-tune,\
	  figures/recipe_runs)
	$(call recipe_run,plateau_ce,--preset trained --optimizer adamw --alpha 0 --epochs 10 --detectors msp --no-tune,figures/recipe_runs)
	$(BIN)/python -m ssod.results figures/recipe_runs/trained_ce figures/recipe_runs/trained_ssod figures/recipe_runs/plateau_ce

# Every table and figure notebook at the trained preset (a classifier near its plateau; REPRO_PRESET=adamw_cosine gives
# the first tables' recipe, whose records are committed) on both offline benchmarks; the main table (Table 2's protocol)
# over 3 seeds (mean and std), the others one seed. Runs are shared through runs/store; every network in fp32, so the
# tables' records, copied to figures/reproduce_runs/, serve every CPU: the tables regenerate from them without training.
REPRO_PRESET ?= trained
REPRO_BENCHMARKS ?= fmnist fmnist_scenes
REPRO_SEEDS ?= [0, 1, 2]
REPRO_OVERRIDES ?= {"precision": "fp32"}
# where the tables and figures are written (the records always go to figures/reproduce_runs/)
REPRO_FIGURES ?= figures
REPRO_NBS := table1_imagenet table3_textures table4_alpha table5_balance table6_architectures \
             fig2_tsne fig3_locality fig4_examples
# Table 6's torchvision networks: the demo recipe with AdamW alone (Muon's Newton-Schulz steps on their wide layers slow
# their CPU steps) at 3e-3 (make table6-lr), every training image at 64 px, three epochs in batches
# of 128: the trained preset's five epochs of these networks would take hours on a 2-core CPU
REPRO_TABLE6 ?= -p preset demo -p limit_train 0 -p epochs 3
REPRO_TABLE6_OVERRIDES ?= {"precision": "fp32", "batch_size": 128, "optimizer": "adamw", "lr": 0.003}
reproduce: data
	@mkdir -p runs/reproduce $(REPRO_FIGURES)
	@for b in $(REPRO_BENCHMARKS); do \
	  echo "== $$b: table2_cifar10, seeds $(REPRO_SEEDS)"; \
	  $(PAPERMILL) nbs/table2_cifar10.ipynb runs/reproduce/$${b}_table2_cifar10.ipynb -p benchmark $$b -p preset $(REPRO_PRESET) \
	    -y "seeds: $(REPRO_SEEDS)" -p overrides '$(REPRO_OVERRIDES)' -p figures_dir $(REPRO_FIGURES) -p archive True || exit 1; \
	  for nb in $(REPRO_NBS); do \
	    echo "== $$b: $$nb"; \
	    case $$nb in table6*) overrides='$(REPRO_TABLE6_OVERRIDES)';; *) overrides='$(REPRO_OVERRIDES)';; esac; \
	    $(PAPERMILL) nbs/$$nb.ipynb runs/reproduce/$${b}_$$nb.ipynb -p benchmark $$b -p preset $(REPRO_PRESET) \
	      -p overrides "$$overrides" -p figures_dir $(REPRO_FIGURES) \
	      $$(case $$nb in table*) echo -p archive True;; esac) $$(case $$nb in table6*) echo $(REPRO_TABLE6);; esac) \
	      || exit 1; \
	  done; \
	done
	@ls $(REPRO_FIGURES)

# Table 2 on objects in scenes as the trained preset first made it, with AdamW alone, from the archived records
# (figures/adamw/; the main table's networks train with Muon)
table2-adamw:
	$(MAKE) reproduce REPRO_BENCHMARKS=fmnist_scenes REPRO_NBS= REPRO_FIGURES=figures/adamw \
	  REPRO_OVERRIDES='{"precision": "fp32", "optimizer": "adamw"}'

# Every method (post-hoc baselines, SSOD, GODIN, SupCon, SSOD+SupCon, CSI, MOS), same budget, one table; seed 0 of
# make reproduce's networks (shared through runs/store, fp32), so after it this trains nothing.
BASELINES_BENCHMARK ?= fmnist_scenes
baselines: data
	@mkdir -p runs/reproduce $(REPRO_FIGURES)
	time $(PAPERMILL) nbs/baselines.ipynb runs/reproduce/baselines.ipynb -p benchmark $(BASELINES_BENCHMARK) -p preset $(REPRO_PRESET) \
	  -p overrides '$(REPRO_OVERRIDES)' -p figures_dir $(REPRO_FIGURES) -p archive True
	@cat $(REPRO_FIGURES)/baselines_$(BASELINES_BENCHMARK).md

# The notebooks as a site. docs: execute the notebooks whose outputs are committed (index and the numbered ones; the
# slow cells too, which train make demo's SSOD network through runs/store when it is not there), write them back stamped
# with the library version and their code (make test fails on a stale one), then render every notebook of nbs/ to
# _docs/ with nbconvert and check pages, figures and links. site: render and check only, from the committed outputs.
docs: data
	time $(BIN)/python docs/build.py execute
	$(BIN)/nbdev_clean
	$(BIN)/python docs/build.py readme
	$(MAKE) site

site: install
	$(BIN)/python docs/build.py render _docs
	$(BIN)/python docs/build.py check _docs

# notebooks and library must agree: export + clean must not change tracked files
sync-check: install
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  $(BIN)/nbdev_export && $(BIN)/nbdev_clean && \
	  git diff --exit-code --stat -- ssod nbs || { echo "nbdev_export/nbdev_clean changed ssod/ or nbs/: commit the result"; exit 1; }; \
	fi

nbtest: data
	OMP_NUM_THREADS=$(NB_THREADS) $(BIN)/nbdev_test --n_workers $(NB_WORKERS) --timing

# One worker per core, one thread each (each test file on one worker, so its fixtures are made once), the files in
# collection order: tests/conftest.py puts the longest first.
pytest: data
	OMP_NUM_THREADS=$(NB_THREADS) $(BIN)/python -m pytest -q -n $(NB_WORKERS) --dist loadfile --no-loadscope-reorder \
	  --durations=40 -m "not slow" tests

# The longest paper-path process tests (ResNet-18 at 224 on the fixtures, the ImageNet folder path, a torchrun job with
# a killed rank resumed): about 2.5 minutes on 2 cores, left out of make test to keep it within 10 minutes.
test-slow: data
	OMP_NUM_THREADS=$(CORES) $(BIN)/python -m pytest -q --durations=10 -m slow tests

test: sync-check nbtest pytest

clean-runs:
	rm -rf runs
