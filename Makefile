# The kit's entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VERSION   := $(shell cat VERSION)
IMAGE     := docker-model:$(VERSION)
NB_PYTHON := venvs/notebooks/bin/python
export IMAGE
# serving/tuning: on (every step), off (stock seldon-core), or the steps to apply, comma-separated.
export SERVING_TUNING ?= on
# liblinear fits through OpenBLAS, whose kernels depend on the CPU: AVX-512 and AVX2 fits of the
# logistic regression are two borderline rows apart. The AVX2 kernels, which every x86-64 CPU of
# the last ten years runs, make `make models` and notebook 01 give the committed artifacts anywhere.
ifeq ($(shell uname -m),x86_64)
export OPENBLAS_CORETYPE ?= Haswell
endif

.PHONY: help setup models retrain image serve stop monitor monitor-stop scale scale-down run-notebooks test test-unit test-reliability \
        lab exercises bundle refresh-notebooks reset-feedback clean bench article-image trace-image prometheus-rule

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: ## Create the notebook and serving environments (venvs/), idempotent; BUNDLE=file.tar: with no network, from `make bundle`
	@$(if $(BUNDLE),bash scripts/environments/unbundle.sh "$(BUNDLE)",bash scripts/environments/setup.sh)

bundle: image ## One archive for a laptop with no network (build/bundle/): both environments' wheels, the images, Debian's prometheus
	@bash scripts/environments/bundle.sh >/dev/null

models: setup ## Train both models into models/ (deterministic) and save the test set
	@$(NB_PYTHON) -m kit.training

RETRAIN_ARGS ?=
retrain: setup ## Retrain from the running containers' feedback logs, check on held-out rows, new artifact and image; RETRAIN_ARGS="--since 2h --from NAME --no-image"
	@$(NB_PYTHON) -m kit.retraining $(RETRAIN_ARGS)

image: ## Build the serving image docker-model:1.0.0 (offline base and wheelhouse if needed)
	@bash image/build.sh

serve: ## Start the model on :9000 (REST), :5000 (gRPC), :6000 (metrics); Docker, else the serving venv; SERVING_TUNING=off for stock seldon-core
	@bash scripts/serve/serve.sh start

stop: ## Stop the model server and Prometheus
	@bash scripts/serve/serve.sh stop
	@bash monitoring/monitor.sh stop

monitor: ## Start Prometheus (:9090) with the kit's rules and alerts: yours on PATH, else Debian's (apt), else its official image
	@bash monitoring/monitor.sh start

monitor-stop: ## Stop Prometheus and the probe exporter
	@bash monitoring/monitor.sh stop

REPLICAS ?= 3
WORKERS  ?= 2
WEIGHTS  ?=
MODELS   ?=
IMAGES   ?=
export WEIGHTS MODELS IMAGES
scale: image ## REPLICAS (1-3) x WORKERS behind nginx on :9000 (REST), :5000 (gRPC); WEIGHTS=3,1; MODELS=binary-lr.joblib,binary-percept.joblib; IMAGES=one per replica (a canary)
	@bash scripts/serve/scale.sh up $(REPLICAS) $(WORKERS)
	@bash monitoring/monitor.sh refresh

scale-down: ## Stop the balancer and the scaled-out replicas (their feedback volumes are kept)
	@bash scripts/serve/scale.sh down
	@bash monitoring/monitor.sh refresh

run-notebooks: setup ## Run every notebook headlessly (papermill) into build/executed/
	@bash scripts/notebooks/run.sh

test: setup ## Unit, contract and browser tests (JupyterLab in Chromium, apt-installed as root), nbval over every notebook, against a running container
	@bash tests/run.sh

test-reliability: setup image ## Long load and fault runs: 10x replay on 3x2, kill -9, SIGTERM, hung model
	@venvs/notebooks/bin/python -m pytest -p no:cacheprovider -q -s tests/test_reliability.py

test-unit: setup ## Only the tests that need no server
	@$(NB_PYTHON) -m pytest -q -m "not container" tests

article-image: ## Build docker-model:article: the article's Dockerfile, class and pins (Python 3.9, seldon-core 1.14.1)
	@bash bench/build_article_image.sh

bench: ## Benchmark against the article, MLServer 1.7.1 and a bare WSGI floor, and what each tuning step buys (bench/README.md)
	@bash bench/prepare.sh
	@$(NB_PYTHON) bench/run.py

trace-image: setup image ## Every module and shared object the served image loads (build/trace.json): how image/serving_modules.txt is made
	@venvs/serving/bin/python image/trace_image.py $(IMAGE) build/trace.json

prometheus-rule: setup ## Regenerate deploy/k8s/prometheusrule.yaml from monitoring/rules/*.yml (tests/test_k8s_manifests.py checks it)
	@$(NB_PYTHON) deploy/k8s/generate_prometheus_rule.py

LAB_DIR  ?= notebooks
LAB_PORT ?= 8888
LAB_ARGS ?=
# JupyterLab refuses to run as root without --allow-root (containers, some CI).
lab: setup ## Open JupyterLab on LAB_DIR (notebooks) at 00_check_setup, port LAB_PORT (8888); LAB_ARGS=--no-browser etc.
	@venvs/notebooks/bin/jupyter lab --ServerApp.root_dir=$(LAB_DIR) --port=$(LAB_PORT) \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) $(LAB_DIR)/00_check_setup.ipynb

exercises: setup ## Write the learners' copies of the notebooks, solutions taken out, into exercises/ (make lab LAB_DIR=exercises)
	@$(NB_PYTHON) scripts/notebooks/exercises.py exercises

refresh-notebooks: ## Copy the executed notebooks (build/executed) back into notebooks/, outputs kept
	@$(NB_PYTHON) scripts/notebooks/clean.py build/executed notebooks

reset-feedback: stop ## Delete every feedback log: the served model's (docker-model-feedback), the replicas', the local server's
	@if docker info >/dev/null 2>&1; then bash scripts/serve/scale.sh reset; docker volume rm -f docker-model-feedback >/dev/null 2>&1 || true; fi
	@rm -f build/feedback.sqlite*

clean: stop ## Remove environments, build outputs and the image
	@rm -rf venvs build
	@docker image rm -f $(IMAGE) >/dev/null 2>&1 || true
