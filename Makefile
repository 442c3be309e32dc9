# The two commands of the README. Each creates the virtual environment and
# installs the project on first use, so they work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmreid_clip-installed
DEMO_DATA ?= data/synth-pedes
DEMO_CFG ?= configs/baselines/clip-baseline_synthpedes-tiny.py
DEMO_WORK_DIR ?= work_dirs/demo
PYTEST_ARGS ?=

.PHONY: install demo test clean-demo

install: $(STAMP)

$(STAMP): setup.cfg setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade "setuptools<81" wheel
	$(PY) -m pip install -e ".[tests]"
	touch $(STAMP)

# Generate SynthPedes, train the tiny CLIP baseline on CPU, evaluate it and
# print R@1/R@5/R@10/mAP/mINP.
demo: $(STAMP)
	$(PY) tools/dataset_converters/make_synth_pedes.py $(DEMO_DATA) --seed 0
	$(PY) tools/train.py $(DEMO_CFG) --work-dir $(DEMO_WORK_DIR) \
		--data-root $(DEMO_DATA)
	$(PY) tools/test.py $(DEMO_CFG) $(DEMO_WORK_DIR)/epoch_6.pth \
		--work-dir $(DEMO_WORK_DIR) --data-root $(DEMO_DATA) \
		--out $(DEMO_WORK_DIR)/test_metrics.json

test: $(STAMP)
	$(PY) -m pytest tests -q $(PYTEST_ARGS)

clean-demo:
	rm -rf $(DEMO_DATA) $(DEMO_WORK_DIR)
