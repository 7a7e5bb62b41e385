# rollback-operator: every target is listed by `make help`.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.DEFAULT_GOAL := help

help: ## List every target
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 \
	  | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the operator with its dev tools

system-deps: ## Install PostgreSQL, Prometheus and Redis with apt-get if missing (root)
	scripts/install-system-deps.sh

fmt: install ## Format the code
	$(BIN)/ruff format operator sandbox tests bench
	$(BIN)/ruff check --fix operator sandbox tests bench

lint: install ## ruff lint and format check
	$(BIN)/ruff check operator sandbox tests bench
	$(BIN)/ruff format --check operator sandbox tests bench

typecheck: install ## mypy --strict over the package and the tests
	$(BIN)/mypy operator sandbox tests bench

imports: install ## import-linter layer contracts
	$(BIN)/lint-imports

crds: install ## Regenerate crds/ and the chart's CRDs (files/crds/, templated) from the API models
	rm -f crds/*.yaml charts/rollback-operator/files/crds/*.yaml
	mkdir -p crds charts/rollback-operator/files/crds
	$(PY) -m rollback_operator crds --output-dir crds
	$(PY) -m rollback_operator crds --output-dir charts/rollback-operator/files/crds

kube-env: ## Build (or reuse) kube-apiserver, etcd and helm from their Go modules (tools/kube/)
	scripts/kube-env.sh >/dev/null

pytest: install system-deps kube-env ## Run the test suite only
	$(BIN)/pytest -q

test-slow: install system-deps kube-env ## Only the long suites: crash matrices, HA failover, load (also in `make test`)
	$(BIN)/pytest -q -m slow

test-faults: install system-deps ## The fault matrix, then its table in docs/reliability.md
	ROLLBACK_FAULT_MATRIX=.tmp/fault-matrix.json $(BIN)/pytest -q -p no:randomly tests/faults
	$(PY) -m tests.faults.table .tmp/fault-matrix.json --write docs/reliability.md

chart-test: install system-deps kube-env ## Lint, render, install, upgrade and uninstall the chart with helm; the Dockerfile
	$(BIN)/pytest -q tests/chart tests/unit/test_dockerfile.py

e2e-kind: ## kind cluster, image, chart and smoke run (needs Docker, kind, helm, kubectl)
	scripts/e2e-kind.sh

test: lint typecheck imports pytest ## Everything CI checks: lint, types, layers, tests

demo: install system-deps ## An error spike trips the runbook's policy; the automatic rollback, live (ARGS=--full: full)
	$(PY) -m sandbox.demo $(ARGS)

bench: install system-deps kube-env ## Every benchmark (minutes); each writes its figures into docs/benchmarks.md
	$(PY) -m bench.record quick_overhead -- --bed apiserver
	$(PY) -m bench.record quick_overhead -- --bed emulator
	$(PY) -m bench.record quick_rollback -- --bed apiserver
	$(PY) -m bench.record db_restore
	$(PY) -m bench.record supabase_restore -- --rounds 3
	$(PY) -m bench.record storage_restore -- --latency-ms 20
	$(PY) -m bench.record restore_point
	$(PY) -m bench.record snapshot_copy -- --latency-ms 20
	$(PY) -m bench.record policy_eval -- --bed apiserver
	$(PY) -m bench.record load -- --bed apiserver
	$(PY) -m bench.record load -- --bed emulator
	$(PY) -m bench.record plugin_start

krew: install ## The kubectl plugin alone (needs only python3): dist/kubectl-rollback.pyz, its krew archive, plugins/krew/rollback.yaml
	$(PY) -m rollback_operator.plugin_build

clean: ## Remove caches (keeps .venv)
	rm -rf .mypy_cache .ruff_cache .pytest_cache .import_linter_cache

.PHONY: help install system-deps fmt lint typecheck imports crds pytest test demo bench clean \
	kube-env chart-test e2e-kind test-slow test-faults krew
