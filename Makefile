# The two commands of the README. Each creates the virtual environment and
# installs the project on first use, so they work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmreid_clip-installed
DEMO_DATA ?= data/synth-pedes
DEMO_CFG ?= configs/baselines/clip-baseline_synthpedes-tiny.py
DEMO_WORK_DIR ?= work_dirs/demo
# the pretrained stand-in CLIP (python tools/misc/build_synth_clip.py, about
# an hour once): when it is there, `make demo` fine-tunes it on SynthPedes v2
DEMO_STANDIN ?= checkpoints/synth-clip/clip-tiny-p8-synth.pth
DEMO_V2_DATA ?= data/synth-pedes-v2
DEMO_V2_CFG ?= configs/baselines/clip-baseline_clip-tiny-p8_synthpedes-v2.py
DEMO_V2_WORK_DIR ?= work_dirs/demo-standin
PYTEST_ARGS ?=

.PHONY: install demo demo-tiny demo-standin test clean-demo

install: $(STAMP)

$(STAMP): setup.cfg setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade "setuptools<81" wheel
	$(PY) -m pip install -e ".[tests]"
	touch $(STAMP)

# Generate SynthPedes, train the tiny CLIP baseline on CPU, evaluate it and
# print R@1/R@5/R@10/mAP/mINP. With the stand-in CLIP cached, fine-tune it on
# SynthPedes v2 instead (a finished build: the file and its .json stamp;
# DEMO_TINY=1 keeps the from-scratch demo).
demo: $(STAMP)
	@if [ -f "$(DEMO_STANDIN)" ] && [ -f "$(DEMO_STANDIN).json" ] && [ -z "$(DEMO_TINY)" ]; then \
		echo "demo: the stand-in CLIP $(DEMO_STANDIN) is there: fine-tuning it on SynthPedes v2 (make demo DEMO_TINY=1: the from-scratch tiny demo)"; \
		$(MAKE) --no-print-directory demo-standin; \
	else \
		$(MAKE) --no-print-directory demo-tiny; \
	fi

demo-tiny: $(STAMP)
	$(PY) tools/dataset_converters/make_synth_pedes.py $(DEMO_DATA) --seed 0
	$(PY) tools/train.py $(DEMO_CFG) --work-dir $(DEMO_WORK_DIR) \
		--data-root $(DEMO_DATA)
	$(PY) tools/test.py $(DEMO_CFG) $(DEMO_WORK_DIR)/epoch_6.pth \
		--work-dir $(DEMO_WORK_DIR) --data-root $(DEMO_DATA) \
		--out $(DEMO_WORK_DIR)/test_metrics.json

demo-standin: $(STAMP)
	@test -f "$(DEMO_STANDIN)" || { echo "demo-standin: $(DEMO_STANDIN) is missing; build it with $(PY) tools/misc/build_synth_clip.py (about an hour on 2 cores, once)"; exit 1; }
	$(PY) tools/dataset_converters/make_synth_pedes.py $(DEMO_V2_DATA) \
		--version 2 --seed 0
	$(PY) tools/train.py $(DEMO_V2_CFG) --work-dir $(DEMO_V2_WORK_DIR) \
		--data-root $(DEMO_V2_DATA)
	$(PY) tools/test.py $(DEMO_V2_CFG) $(DEMO_V2_WORK_DIR)/epoch_2.pth \
		--work-dir $(DEMO_V2_WORK_DIR) --data-root $(DEMO_V2_DATA) \
		--out $(DEMO_V2_WORK_DIR)/test_metrics.json

test: $(STAMP)
	$(PY) -m pytest tests -q $(PYTEST_ARGS)

clean-demo:
	rm -rf $(DEMO_DATA) $(DEMO_WORK_DIR) $(DEMO_V2_WORK_DIR)
