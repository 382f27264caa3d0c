# fedot — `make run` and `make test` work on a fresh clone (they create .venv and install first).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.fedot-installed
# torch==2.13.0 is pinned in the same pip command as everything else (CPU build; never a CUDA download).
TORCH  ?= torch==2.13.0
TORCHCFM ?= 1.0.7

.PHONY: install run run-fedavg deploy-local test test-fast lint docs bench experiment superlink-stop clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev,mlflow]' '$(TORCH)'
	@# torchcfm: the reference implementation the ffm-2d experiment and its tests compare with;
	@# its core needs only torch, numpy and POT, so its heavy optional dependencies are skipped.
	$(BIN)/pip install --disable-pip-version-check -q --no-deps 'torchcfm==$(TORCHCFM)'
	@touch $(STAMP)

## The showcase: FedAVOT vs FedAvg on the available clients vs full participation, misaligned
## availability, where it helps (drifting client optima) and where it does not (MNIST-5k), 3 seeds
## in-process; then one run again through `flwr run` (Ray simulation), checked identical.
run: install
	$(BIN)/fedot experiment fedavot-showcase --jobs 2 --ray-check drift/fedavot --out outputs/showcase

## The platform's reference job: fedavg, digits, 10 clients, Dirichlet 0.5, 20 rounds, Ray.
run-fedavg: install
	$(BIN)/fedot run --backend ray

## The whole test suite, slow end-to-end tests included.
test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check .

## The API reference from the numpydoc docstrings (pdoc) → site/api/index.html; any pdoc warning fails.
docs: install
	$(BIN)/python docs/build_api.py site/api

## Side-by-side timings → docs/benchmarks.md (+ PNG, JSON).
bench: install
	$(BIN)/python -m fedot.bench

experiment: install
	$(BIN)/fedot experiment fedavg-digits

## A local deployment (SuperLink + 2 SuperNodes on 127.0.0.1) running the app once; the security
## mode is DEPLOY_MODE=insecure|tls|auth (auth = TLS + SuperNode authentication), see docs/deploy.md.
DEPLOY_MODE ?= insecure
DEPLOY_CONNECTION_insecure := fedot-local
DEPLOY_CONNECTION_tls := fedot-tls
DEPLOY_CONNECTION_auth := fedot-auth
deploy-local: install
	$(BIN)/fedot cluster up --nodes 2 --mode $(DEPLOY_MODE)
	$(BIN)/fedot run fedavg --backend $(DEPLOY_CONNECTION_$(DEPLOY_MODE)) --clients 2 --set rounds=3; \
	  status=$$?; $(BIN)/fedot cluster down; exit $$status

superlink-stop: install
	$(BIN)/fedot superlink stop

clean:
	rm -rf .flwr outputs site .pytest_cache .ruff_cache
