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

.PHONY: setup data browser reproduce full-run test docs clean-nbs export
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 2>&1 | grep -v 'is ignored' || true
	$(BIN)/pip install -q $(PINS) -e ".[dev]" 2>&1 | grep -v 'is ignored' || true
	$(BIN)/python -c "import resnet_course, fastai, nbdev, timm"
	touch $@

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
	else echo "The docs browser test needs Chromium: sudo apt-get install chromium chromium-driver"; fi

reproduce: data
	@if $(BIN)/python -c "import torch,sys; sys.exit(not torch.cuda.is_available())"; then \
	  $(BIN)/resnet-course reproduce $(ARGS); \
	else \
	  echo "No CUDA GPU here: running the quick sample run (resnet-course reproduce --quick). Run it on a GPU for the real results."; \
	  $(BIN)/resnet-course reproduce --quick $(ARGS); \
	fi

# On a GPU machine: every full-scale result behind the Results page. Trains the chapter's models into
# nbs/results_full/, then runs and saves the full-data cells (flagged full, gpu, slow) of the figures and
# exercises notebooks, and refreshes the Results page. Commit nbs/ afterwards.
full-run: data
	@$(BIN)/python -c "import torch,sys; sys.exit(not torch.cuda.is_available())" || { echo "make full-run needs a CUDA GPU; on a CPU use make reproduce"; exit 1; }
	$(BIN)/resnet-course reproduce --out nbs/results_full $(ARGS)
	$(BIN)/python scripts/save_outputs.py nbs/21_figures.ipynb nbs/41_exercises.ipynb --flags "full gpu slow"
	$(BIN)/python scripts/save_outputs.py nbs/results.ipynb

test: data browser
	$(BIN)/python scripts/run_tests.py

docs: setup
	$(BIN)/python scripts/build_site.py

export: setup
	$(BIN)/nbdev-export

clean-nbs: setup
	$(BIN)/nbdev-clean
