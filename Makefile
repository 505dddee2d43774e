# emoshare_sb: two commands on a fresh machine.
#   make demo   builds an offline demo corpus + tiny encoder, trains the ComParE 2023
#               recipe on it and prints the devel Spearman table
#   make test   runs the test suite (what CI runs)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := demo
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# As an activated virtualenv: SpeechBrain's env.log lists the packages of the
# `pip` first on PATH (speechbrain.utils.logger runs "pip freeze"), which must
# be this environment's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: env demo test lint clean

env: $(STAMP)

# requirements.lock pins every package (and its dependencies) to the versions
# CI verified; the README says how to refresh it.
$(STAMP): requirements.txt requirements-dev.txt requirements.lock setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt -c requirements.lock
	$(PY) -m pip install --quiet --no-build-isolation --no-deps -e .
	touch $@

demo: $(STAMP)
	$(PY) -m emoshare_sb.synthetic --compare23 $(DEMO)/data --ssl $(DEMO)/tiny_hubert
	$(PY) recipes/ComParE23/train.py hparams/hubert_attn.yaml \
		--data_folder $(DEMO)/data --ssl_source $(DEMO)/tiny_hubert \
		--output_folder $(DEMO)/results --number_of_epochs 15

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/yamllint -f parsable .
	$(VENV)/bin/codespell .

clean:
	rm -rf $(DEMO)
