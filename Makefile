# Two entry points, each doing its own setup on a fresh machine:
#   make reproduce   reruns the chapter (the chapter's recipe on a GPU; a reduced full-data version on a CPU-only machine)
#   make test        runs every test: nbdev-test over all notebooks, then pytest
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA_INSTALL ?= ../shared/bin/data-install
ARGS ?=
# Extra requirements installed with the course, e.g. exact torch pins (CI uses the builds on its disk).
PINS ?=

.PHONY: setup data browser graphviz reproduce speedrun-cpu full-run full-run-models full-run-resnet50 full-run-bench full-run-speedrun full-run-exercises full-run-pages gpu-smoke cpu-run test check-clean docs readme clean-nbs export outputs outputs-stale
# The venv is built once, then again only when pyproject.toml's content (or PINS) changes: its marker holds their checksum,
# so a fresh checkout's timestamps, or a file rewritten with the same content, reinstall nothing. The venv's Jupyter kernel is
# named python3 with display name python3, as nbdev-clean writes it into the notebooks: then JupyterLab does not mark a
# notebook as modified when it opens. pip byte-compiles one file at a time; compileall does it on every core (on two cores
# the install took 73 s instead of 89; a file that does not compile, as in some packages' own tests, is skipped as pip skips it).
SETUP_KEY := $(shell { cat pyproject.toml; printf '%s' '$(PINS)'; } | cksum | tr ' ' -)
setup:
	@if [ "$$(cat $(VENV)/.installed 2>/dev/null)" != "$(SETUP_KEY)" ]; then \
	  echo "Setting up $(VENV): the course and its tools (several GB, most of it torch's CUDA libraries)"; \
	  $(PYTHON) -m venv $(VENV) && \
	  $(BIN)/pip install -q --upgrade pip && \
	  $(BIN)/pip install -q --no-compile $(PINS) -e ".[dev]" && \
	  { $(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null || true; } && \
	  $(BIN)/python -c "import resnet_course, fastai, nbdev, timm" && \
	  $(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name python3 && \
	  echo "$(SETUP_KEY)" > $(VENV)/.installed; \
	fi

# Puts Imagenette-160 and MNIST where fastai's untar_data finds them. Without the course's copies,
# untar_data downloads them on first use instead.
data: setup
	@if [ -x $(DATA_INSTALL) ]; then $(DATA_INSTALL); else echo "No $(DATA_INSTALL): datasets will be downloaded on first use."; fi

# Debian's Chromium and its driver, for the browser test of the documentation site.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's chromium and chromium-driver for the docs browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "The docs browser test needs Chromium: sudo apt-get install chromium chromium-driver"; exit 1; fi

# Graphviz's dot, which torchview calls to draw the course's model diagrams.
graphviz:
	@if command -v dot >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's graphviz for the model diagrams"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
	else echo "The model diagrams need Graphviz: sudo apt-get install graphviz"; exit 1; fi

reproduce: data
	@if $(BIN)/python -c "import torch,sys; sys.exit(not torch.cuda.is_available())"; then \
	  $(BIN)/resnet-course reproduce $(ARGS); \
	else \
	  echo "No CUDA GPU here: training the reduced version on the full data (64 px, at most 5 epochs; each model prints its estimate for this CPU before it trains) into results/reduced. ARGS=--quick: the sample; ARGS=--full: the chapter's recipe (hours)."; \
	  $(BIN)/resnet-course reproduce $(ARGS); \
	fi

# On a GPU machine: every full-scale result behind the Results page, in steps of under 10 minutes each on one H200.
# Each step keeps what it finishes (finished runs, the last finished epoch, finished cells), so the same target resumes after
# an interruption or a kernel's time limit, and `make full-run` reruns only what is missing. Estimated times on one H200
# (16 CPU cores) come from the step's work, not yet from a run on one: about 25-30 minutes in all. On a T4 expect hours.
# The skip-connection figures are not retrained here: the pages show the CPU-scale ones (make cpu-run), with their claims tested.
# Commit nbs/ afterwards.
NEED_GPU = @$(BIN)/python -c "import torch,sys; sys.exit(not torch.cuda.is_available())" || { echo "make $@ needs a CUDA GPU; on a CPU use make cpu-run"; exit 1; }
GPU_OUT := nbs/results/gpu

full-run: full-run-models full-run-resnet50 full-run-bench full-run-speedrun full-run-exercises full-run-pages

# ~5 min: the four 128 px models of the chapter (5 epochs each, with the learning-rate finder) from the fast data path.
full-run-models: data
	$(NEED_GPU)
	$(BIN)/resnet-course reproduce --fast --lr-find --models fcn,resblock,resblock2,resnet18 --out $(GPU_OUT) $(ARGS)

# ~6-8 min: ResNet50 at 224 px for 20 epochs (from Imagenette-320 where installed); resumes from its last finished epoch.
full-run-resnet50: data
	$(NEED_GPU)
	$(BIN)/resnet-course reproduce --fast --lr-find --models resnet50 --out $(GPU_OUT) $(ARGS)

# ~5 min: the chapter's pipeline against the fast path, loaders and 5 training epochs of each path for fcn, resnet18, resnet50.
full-run-bench: data
	$(NEED_GPU)
	$(BIN)/resnet-course bench --out $(GPU_OUT)/bench

# ~3 min: the speed run (ResNet50, 26 epochs at 128 then 160 px, bf16 where the GPU has it, TTA).
full-run-speedrun: data
	$(NEED_GPU)
	$(BIN)/resnet-course speedrun --recipe gpu --out $(GPU_OUT)/speedrun

# ~8 min: the exercises' full-data cells (MNIST nets, the 1x1 conv benchmark, the label-smoothing runs, each of those cells
# under 5 min; finished label-smoothing runs are kept in nbs/results/gpu/exercises and not trained again).
full-run-exercises: data
	$(NEED_GPU)
	$(BIN)/python scripts/save_outputs.py nbs/21_exercises.ipynb --flags "full gpu slow"

# ~4 min: the notebooks that show the records, refreshed with their outputs.
full-run-pages: data
	$(NEED_GPU)
	$(BIN)/python scripts/save_outputs.py nbs/10_pooling.ipynb nbs/11_resblock.ipynb nbs/13_resnet.ipynb nbs/14_bottleneck.ipynb nbs/33_bench.ipynb nbs/34_fast.ipynb nbs/38_goals.ipynb nbs/results.ipynb

# One pass through every GPU path on the sample and a tiny folder, each check printing pass, FAIL or "skip: needs CUDA":
# about 3 minutes on one GPU, 1-2 minutes on a CPU (where the CUDA checks are skipped). Needs no network and no venv:
# it runs with .venv's Python if there is one, else python3, on the working tree.
SMOKE_PY ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
gpu-smoke:
	PYTHONPATH=$(CURDIR) $(SMOKE_PY) scripts/gpu_smoke.py $(ARGS)

# The same evidence at a scale two CPU cores finish in about six hours: what the course's saved CPU results come from.
# Each line resumes from its last finished epoch. The four 128-px models train at the chapter's recipe (FCN about 25 min,
# one ResBlock about 35, two ResBlocks about 20-30, ResNet18 about 30-55); ResNet18 and two ResBlocks also at 64 px; ResNet50,
# whose recipe needs a GPU, at a labelled reduced size (64 px, 5 epochs, from the fast data path); then
# the skip-connection figures at 32 px. Commit nbs/ afterwards.
cpu-run: data
	$(BIN)/resnet-course reproduce --full --models fcn,resblock,resblock2,resnet18 --lr-find --out nbs/results/cpu --device cpu
	$(BIN)/resnet-course reproduce --full --models resnet18,resblock2 --size 64 --lr-find --out nbs/results/cpu --device cpu
	$(BIN)/resnet-course reproduce --full --models resnet50 --size 64 --epochs 5 --fast --lr-find --out nbs/results/cpu --device cpu
	$(BIN)/resnet-course figures --size 32 --epochs 3 --out nbs/results/cpu/figures --device cpu

# Every CPU recipe of Training fast with two seeds, on the same machine and one run after the other: first the chapter's ResNet18 recipe
# timed for 2 epochs (the reference every recipe's time is a ratio of), then each recipe, and the ablation's precision and layout levers.
# Over an hour on two quiet AVX512-BF16 cores; longer in fp32 on a processor without native bf16 (run nothing else meanwhile: the
# goals are times). Each finished run is kept per machine, so the target resumes, and another processor adds its own runs beside these.
SPEED_CPU := nbs/results/cpu/speedrun
speedrun-cpu: data
	$(BIN)/resnet-course speedrun --recipe book-in-3 --seeds 42,43 --reference --ablation --levers fp32,layout --device cpu --out $(SPEED_CPU)/book-in-3
	$(BIN)/resnet-course speedrun --recipe resnet10-64px --seeds 42,43 --device cpu --out $(SPEED_CPU)/resnet10-64px
	$(BIN)/resnet-course speedrun --recipe 15-minutes --seeds 42,43 --device cpu --out $(SPEED_CPU)/15-minutes

test: data browser graphviz
	$(BIN)/python scripts/run_tests.py

# Runs every notebook and saves its outputs (what readers of the site see), clearing those of sample training; fails,
# naming them, if a cell meant to show something keeps no output. Each notebook's run notes the records it reads:
# nbs/results/outputs.json keeps a digest of each (commit it with the notebooks).
outputs: data graphviz
	$(BIN)/python scripts/save_outputs.py

# Reruns only the notebooks whose saved outputs may be stale: a record they read changed (or appeared) since their
# outputs were saved, their reads were never recorded, or a saved output no longer shows what its record gives.
# ARGS=--list names them and why, and runs nothing.
outputs-stale: data graphviz
	$(BIN)/python scripts/save_outputs.py --stale $(ARGS)

# What nbdev's own CI checks: after nbdev-clean and nbdev-export, git sees no change.
check-clean: setup
	$(BIN)/nbdev-clean
	$(BIN)/nbdev-export
	@test -z "$$(git status --porcelain -- nbs resnet_course)" || { git status --porcelain -- nbs resnet_course; echo "Run nbdev-clean and nbdev-export, then commit"; exit 1; }

# The offline documentation site, in _site/ (no tracked file changes).
docs: setup
	$(BIN)/python scripts/build_site.py

# README.md is generated from nbs/index.ipynb: this is the one target that rewrites it.
readme: setup
	$(BIN)/python scripts/build_site.py --readme-only

export: setup
	$(BIN)/nbdev-export

clean-nbs: setup
	$(BIN)/nbdev-clean
