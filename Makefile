# The two commands of the README. Both create .venv when it is missing and install d2lite.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The torch build these machines serve from local disk (a CUDA build); override it for another
# platform or for the CPU-only wheels (pip arguments, word-split on purpose):
#   make demo TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.d2lite-installed

.PHONY: demo test install benchmark clean

# pyproject.toml holds the dependencies; setup.py maps model_zoo/ into the package.
$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py

test: $(STAMP)
	$(PY) -m pytest -q tests

# The CPU figures of docs/PERFORMANCE.md, each beside torchvision's from the same command.
BENCH := $(PY) tools/benchmark.py --config-file model_zoo/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml --threads 2
BENCH_OUT := output/benchmark
benchmark: $(STAMP)
	mkdir -p $(BENCH_OUT)
	$(BENCH) --task train --size 512 --batch 2 --compare torchvision --rounds 4 --iters 2 MODEL.ROI_HEADS.NUM_CLASSES 10 | tee $(BENCH_OUT)/train_512.txt
	$(BENCH) --task train --size 512 --batch 2 --compare torchvision --torchvision-ftz --rounds 4 --iters 2 MODEL.ROI_HEADS.NUM_CLASSES 10 | tee $(BENCH_OUT)/train_512_ftz.txt
	$(BENCH) --task eval --size 512 --compare torchvision --rounds 4 --iters 3 MODEL.ROI_HEADS.NUM_CLASSES 10 | tee $(BENCH_OUT)/eval_512.txt
	$(BENCH) --task eval --size 800 --compare torchvision --rounds 4 --iters 3 MODEL.ROI_HEADS.NUM_CLASSES 10 | tee $(BENCH_OUT)/eval_800.txt
	$(BENCH) --task eval --size 512 --compare torchvision --torchvision-ftz --rounds 4 --iters 3 MODEL.ROI_HEADS.NUM_CLASSES 10 | tee $(BENCH_OUT)/eval_512_ftz.txt
	$(BENCH) --task eval --size 800 --compare torchvision --torchvision-ftz --rounds 4 --iters 3 MODEL.ROI_HEADS.NUM_CLASSES 10 | tee $(BENCH_OUT)/eval_800_ftz.txt
	$(BENCH) --task data --size 512 --batch 2 --rounds 8 --iters 3 | tee $(BENCH_OUT)/data_512.txt
	# Beside other CPU work (docs/PERFORMANCE.md, "On a shared CPU"): quiet and loaded in one command.
	for n in busy torch "busy --neighbour train:10"; do \
	  $(BENCH) --task eval --size 512 --compare torchvision --torchvision-ftz --rounds 2 --iters 4 --neighbour $$n MODEL.ROI_HEADS.NUM_CLASSES 10; \
	  $(BENCH) --task train --size 512 --batch 2 --compare torchvision --torchvision-ftz --rounds 2 --iters 2 --neighbour $$n MODEL.ROI_HEADS.NUM_CLASSES 10; \
	done | tee $(BENCH_OUT)/loaded.txt

clean:
	rm -rf $(VENV) output build *.egg-info
