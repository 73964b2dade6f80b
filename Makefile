# Two entry points, each doing its own setup on a fresh machine:
#   make reproduce   reruns the chapter (full data on a GPU; the quick sample run on a CPU-only machine)
#   make test        runs every test: nbdev-test over all notebooks, then pytest
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA_INSTALL ?= ../shared/bin/data-install
ARGS ?=
# Extra requirements installed with the course, e.g. exact torch pins (CI uses the builds on its disk).
PINS ?=

.PHONY: setup data browser graphviz reproduce full-run cpu-run test check-clean docs readme clean-nbs export
# The venv is built once, then again only when pyproject.toml's content (or PINS) changes: its marker holds their checksum,
# so a fresh checkout's timestamps, or a file rewritten with the same content, reinstall nothing. The venv's Jupyter kernel is
# named python3 with display name python3, as nbdev-clean writes it into the notebooks: then JupyterLab does not mark a
# notebook as modified when it opens.
SETUP_KEY := $(shell { cat pyproject.toml; printf '%s' '$(PINS)'; } | cksum | tr ' ' -)
setup:
	@if [ "$$(cat $(VENV)/.installed 2>/dev/null)" != "$(SETUP_KEY)" ]; then \
	  echo "Setting up $(VENV): the course and its tools (about 6 GB, most of it torch's CUDA libraries)"; \
	  $(PYTHON) -m venv $(VENV) && \
	  $(BIN)/pip install -q --upgrade pip && \
	  $(BIN)/pip install -q $(PINS) -e ".[dev]" && \
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
	  echo "No CUDA GPU here: running the quick sample run (resnet-course reproduce --quick). Run it on a GPU for the real results."; \
	  $(BIN)/resnet-course reproduce --quick $(ARGS); \
	fi

# On a GPU machine: every full-scale result behind the Results page. Trains the chapter's models into
# nbs/results/gpu/ from the fast data path (Training fast: the chapter's recipe and augmentation, served from
# a uint8 cache on the GPU), reruns the skip-connection experiments at 64 px, benchmarks both pipelines,
# runs the speed run, then runs and saves the full-data cells (flagged full, gpu, slow) of the exercises
# notebook and refreshes the notebooks that show the records. Commit nbs/ afterwards.
full-run: data
	@$(BIN)/python -c "import torch,sys; sys.exit(not torch.cuda.is_available())" || { echo "make full-run needs a CUDA GPU; on a CPU use make cpu-run"; exit 1; }
	$(BIN)/resnet-course reproduce --fast --lr-find --out nbs/results/gpu $(ARGS)
	$(BIN)/resnet-course figures --size 64 --epochs 10 --out nbs/results/gpu/figures
	$(BIN)/resnet-course bench --out nbs/results/gpu/bench
	$(BIN)/resnet-course speedrun --out nbs/results/gpu/speedrun
	$(BIN)/python scripts/save_outputs.py nbs/41_exercises.ipynb --flags "full gpu slow"
	$(BIN)/python scripts/save_outputs.py nbs/10_pooling.ipynb nbs/11_resblock.ipynb nbs/13_resnet.ipynb nbs/14_bottleneck.ipynb nbs/22_figures.ipynb nbs/23_fast.ipynb nbs/results.ipynb

# The same evidence at a scale two CPU cores finish in a few hours: what the course's saved CPU results come from.
# The two smaller models train at the chapter's recipe; ResNet18 and two ResBlocks per stage at 64 px.
cpu-run: data
	$(BIN)/resnet-course reproduce --models fcn,resblock --lr-find --out nbs/results/cpu --device cpu
	$(BIN)/resnet-course reproduce --models resnet18,resblock2 --size 64 --lr-find --out nbs/results/cpu --device cpu
	$(BIN)/resnet-course figures --size 32 --epochs 3 --out nbs/results/cpu/figures --device cpu

test: data browser graphviz
	$(BIN)/python scripts/run_tests.py

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
