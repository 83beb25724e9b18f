# jupyter-mcp-sidecar: `make run` starts a local JupyterLab with MCP at /mcp;
# `make test` runs every test. `make help` lists the targets.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PORT ?= 8888
NOTEBOOK_DIR ?= notebooks
GO_TEST_FLAGS ?= -race -count=1 -timeout 20m
# One version for the wheel, the binaries and the image: the git tag, in PEP 440
# form (jupyter_config/version.py), e.g. 1.2.0 or 1.2.0.post3+g1a2b3c4.
VERSION := $(shell $(PYTHON) jupyter_config/version.py 2>/dev/null || echo 0.0.0)
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
# The JupyterLab sidebar extension (jupyter_config/labextension), built
# against the core of the pinned JupyterLab.
LABEXT := jupyter_config/labextension
LAB_VERSION := $(shell sed -n 's/^jupyterlab==//p' jupyter_config/requirements.txt)
LABEXT_CORE := $(LABEXT)/build/core-$(LAB_VERSION)

.PHONY: help run build wheel labextension test test-unit lint bench bench-deps soak hub-soak fuzz preflight venv oracles clients lock clean hub hub-deps hub-lock

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the sidecar and the hub's MCP router into bin/
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/jupyter-mcp-sidecar ./sidecar/cmd/jupyter-mcp-sidecar
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/jupyter-mcp-hub ./sidecar/cmd/jupyter-mcp-hub

# The distributions: a wheel per platform, each with the static sidecar
# cross-compiled into the package, and the sdist, which builds it with Go.
WHEEL_TARGETS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
BUILD_VENV := .venv-build
wheel: $(BUILD_VENV)/.installed labextension ## build the wheels (Linux x86_64/aarch64, macOS x86_64/arm64) and the sdist into dist/
	rm -rf dist
	JUPYTER_MCP_SIDECAR_VERSION=$(VERSION) $(BUILD_VENV)/bin/python -m build -q --no-isolation --sdist -o dist jupyter_config
	@set -e; for t in $(WHEEL_TARGETS); do \
		JUPYTER_MCP_SIDECAR_VERSION=$(VERSION) JUPYTER_MCP_SIDECAR_TARGET=$$t \
			$(BUILD_VENV)/bin/python -m build -q --no-isolation --wheel -o dist jupyter_config; \
	done
	@ls -1 dist
$(BUILD_VENV)/.installed: jupyter_config/build-requirements.txt
	test -x $(BUILD_VENV)/bin/python || $(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/pip install --quiet --disable-pip-version-check -r jupyter_config/build-requirements.txt
	touch $@

# The Python environment: pinned JupyterLab, jupyter-server-proxy, ipykernel
# and the proxy extension in jupyter_config/, installed without a bundled
# sidecar so the lab runs the one on PATH (bin/, or the tests' fresh build).
# Rebuilt when they change.
venv: $(VENV)/.installed ## create the pinned Python environment in .venv
$(VENV)/.installed: jupyter_config/requirements.txt jupyter_config/pyproject.toml jupyter_config/hatch_build.py $(wildcard jupyter_config/jupyter_mcp_sidecar_proxy/*.py) $(wildcard jupyter_config/jupyter-config/*/*.json jupyter_config/jupyter-config/*/*/*.json) $(LABEXT)/dist/package.json
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r jupyter_config/requirements.txt
	@# the distribution's name before it carried the binary
	$(VENV)/bin/pip uninstall --quiet --yes jupyter-mcp-sidecar-proxy 2>/dev/null || true
	JUPYTER_MCP_SIDECAR_BINARY=none $(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --force-reinstall ./jupyter_config
	touch $@

# The "Agent changes" sidebar: a prebuilt (federated) JupyterLab extension
# that the wheel ships in share/jupyter/labextensions/. Built with
# @jupyterlab/builder (npm, pinned in its lockfile) against the core
# package.json of the JupyterLab pinned in requirements.txt, which the
# builder needs to leave the lab's own packages out of the bundle: taken from
# that JupyterLab wheel (PyPI), so the build needs no Python environment.
labextension: $(LABEXT)/dist/package.json ## build the JupyterLab sidebar extension into jupyter_config/labextension/dist
$(LABEXT)/dist/package.json: $(LABEXT)/node_modules/.installed $(LABEXT_CORE)/package.json $(LABEXT)/package.json $(wildcard $(LABEXT)/src/*.js $(LABEXT)/style/*.css)
	rm -rf $(LABEXT)/dist
	cd $(LABEXT) && node node_modules/@jupyterlab/builder/lib/build-labextension.js --core-path build/core-$(LAB_VERSION) . >build/webpack.log 2>&1 || { cat build/webpack.log; exit 1; }
	test -f $@
$(LABEXT)/node_modules/.installed: $(LABEXT)/package-lock.json
	npm ci --prefix $(LABEXT) --no-audit --no-fund --loglevel=error
	touch $@
$(LABEXT_CORE)/package.json: jupyter_config/requirements.txt $(BUILD_VENV)/.installed
	rm -rf $(LABEXT)/build/core-* && mkdir -p $(@D)
	$(BUILD_VENV)/bin/python -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: -d $(@D) jupyterlab==$(LAB_VERSION)
	$(BUILD_VENV)/bin/python -c 'import glob, sys, zipfile; d = sys.argv[1]; w = zipfile.ZipFile(glob.glob(d + "/jupyterlab-*.whl")[0]); open(d + "/package.json", "wb").write(w.read("jupyterlab/staging/package.json"))' $(@D)
	rm -f $(@D)/*.whl

# Test oracles: Yjs on Node and pycrdt, used by the CRDT differential tests.
oracles: tests/oracles/node_modules/.installed $(VENV)/.oracles ## install the Yjs and pycrdt test oracles
tests/oracles/node_modules/.installed: tests/oracles/package-lock.json
	npm ci --prefix tests/oracles --no-audit --no-fund --loglevel=error
	touch $@
$(VENV)/.oracles: tests/oracles/requirements.txt $(VENV)/.installed
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/oracles/requirements.txt
	touch $@

# Official MCP client SDKs the integration tests use besides the go-sdk:
# the Python SDK, the MCP Apps SDK's host side (AppBridge, npm) with
# esbuild, which the browser test bundles into its host page, and the
# official conformance suite with the TypeScript SDK (and the Node 22 the
# suite needs, as an npm package).
CLIENTS_VENV := .venv-clients
clients: $(CLIENTS_VENV)/.installed tests/apps/node_modules/.installed tests/conformance/node_modules/.installed ## install the Python and TypeScript MCP SDKs, the MCP Apps host SDK and the conformance suite the client tests drive
$(CLIENTS_VENV)/.installed: tests/clients/requirements.txt
	test -x $(CLIENTS_VENV)/bin/python || $(PYTHON) -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
	touch $@
tests/apps/node_modules/.installed: tests/apps/package-lock.json
	npm ci --prefix tests/apps --no-audit --no-fund --loglevel=error
	touch $@
tests/conformance/node_modules/.installed: tests/conformance/package-lock.json
	npm ci --prefix tests/conformance --no-audit --no-fund --loglevel=error
	touch $@

run: venv build ## start JupyterLab on 127.0.0.1:$(PORT) with MCP at /mcp
	@mkdir -p $(NOTEBOOK_DIR)
	@token="$${JUPYTER_TOKEN:-$$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}"; \
	url="http://127.0.0.1:$(PORT)"; \
	echo ""; \
	echo "JupyterLab:  $$url/lab?token=$$token"; \
	echo "MCP:         $$url/mcp   (header  Authorization: token $$token)"; \
	echo "             $$url/mcp?token=$$token   (for clients that take only a URL)"; \
	echo ""; \
	echo "Claude Code: claude mcp add --transport http jupyter $$url/mcp --header \"Authorization: token $$token\""; \
	echo "Cursor, VS Code and other clients (mcp.json):"; \
	echo "  {\"mcpServers\": {\"jupyter\": {\"url\": \"$$url/mcp\", \"headers\": {\"Authorization\": \"token $$token\"}}}}"; \
	echo ""; \
	PATH="$(CURDIR)/bin:$$PATH" JUPYTER_TOKEN="$$token" exec $(VENV)/bin/jupyter lab --no-browser \
		--ip=127.0.0.1 --port=$(PORT) --ServerApp.port_retries=0 --ServerApp.root_dir="$(NOTEBOOK_DIR)" $(ALLOW_ROOT)

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l sidecar tests)" || { gofmt -l sidecar tests; echo "gofmt: files above need formatting"; exit 1; }
	go vet ./...

# tests/yjs and tests/hub/z2jh run verbose so that CI's output shows their
# counts: the seeded histories checked against the oracles and undo's
# comparison with Yjs; the chart's objects a real API server accepted and
# each step of the one-node cluster. The longer timeout is for a machine's
# first build of Kubernetes (cached afterwards), tens of minutes on two
# busy cores.
test: preflight venv oracles clients hub-deps lint base-images wheel ## run every test (unit, CRDT differential, integration, browser, wheels, container, hub)
	go test $(GO_TEST_FLAGS) $$(go list ./... | grep -v -e '/tests/yjs$$' -e '/tests/hub/z2jh$$')
	go test $(GO_TEST_FLAGS) -timeout 45m -v ./tests/yjs/ ./tests/hub/z2jh/

# The quick loop: the unit tests of every package under sidecar/, which
# need only Go (no lab, Docker, Node or Chromium), with the race detector.
test-unit: ## run the unit tests of sidecar/ with -race (only Go needed; under a minute)
	go test -race -count=1 -timeout 5m ./sidecar/...

# Fails at once, in one line, when a tool the tests need is missing, instead
# of deep inside a test. .ci/run installs all of them on Debian.
preflight:
	@command -v go >/dev/null || { echo "make test needs Go >= 1.21 on PATH (or run: bash .ci/run)"; exit 1; }
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "make test needs Node.js >= 20 and npm (or run: bash .ci/run)"; exit 1; }
	@[ "$$(node --version | sed -E 's/^v([0-9]+).*/\1/')" -ge 20 ] 2>/dev/null || { echo "make test needs Node.js >= 20 (configurable-http-proxy), this is $$(node --version) (or run: bash .ci/run)"; exit 1; }
	@command -v chromium >/dev/null || { echo "make test needs Chromium: apt-get install chromium (or run: bash .ci/run)"; exit 1; }
	@command -v ss >/dev/null || { echo "make test needs ss (the fault tests reset connections): apt-get install iproute2 (or run: bash .ci/run)"; exit 1; }
	@command -v docker >/dev/null || { echo "make test needs Docker: apt-get install docker.io (or run: bash .ci/run)"; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make test needs a running Docker engine: 'docker info' fails; start dockerd (or run: bash .ci/run)"; exit 1; }
	@command -v containerd >/dev/null && [ -x /usr/lib/cni/bridge ] && command -v conntrack >/dev/null && command -v iptables >/dev/null && command -v openssl >/dev/null || { echo "make test needs containerd, the CNI plugins, conntrack, iptables and openssl (the one-node cluster of tests/hub/z2jh): apt-get install containerd containernetworking-plugins conntrack iptables openssl (or run: bash .ci/run)"; exit 1; }
	@command -v debootstrap >/dev/null || docker image inspect $(BASE_RUNTIME_IMAGE) $(BASE_BUILD_IMAGE) >/dev/null 2>&1 || { echo "make test needs debootstrap to build the base images: apt-get install debootstrap (or run: bash .ci/run)"; exit 1; }

# Each fuzz target for a number of runs, about 10-15 s each here, on top of
# its corpus (testdata/fuzz, where go test keeps any crasher it finds, to be
# committed with its fix). Runs, not a duration: Go 1.26's fuzz coordinator
# can fail a timed run with "context deadline exceeded" and no crasher when
# its workers are starved at the deadline (go.dev/issue/75804, fixed in Go
# 1.27). FUZZTIME=30s (or 1000x) runs every
# target for that instead.
FUZZ_TARGETS := ./sidecar/yjs:FuzzApplyUpdate:200000x ./sidecar/yjs:FuzzDecodeAny:300000x \
	./sidecar/yjs:FuzzConvergence:8000x ./sidecar/kernel:FuzzDecodeV1:200000x \
	./sidecar/tools:FuzzToolCalls:5000x ./sidecar/server:FuzzJSONRPC:20000x
fuzz: ## run each fuzz target (about 10-15 s each; FUZZTIME=30s or 1000x for another budget)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; budget=$(if $(FUZZTIME),$(FUZZTIME),$${rest#*:}); \
		echo "fuzz $$name ($$budget)"; \
		go test -run '^$$' -fuzz "^$$name$$" -fuzztime $$budget $$pkg; \
	done

# A person typing in JupyterLab and four agents for SOAK_DURATION; then the
# page, read_notebook and the file must agree. Not part of make test.
# SOAK_PACE: max (the shared notebook's agents call as fast as calls
# return) or the time between one agent's calls, e.g. 300ms.
# SOAK_AGENTS: mcp, or jupyterlab:<ops per second> to have a JupyterLab tab
# make the three agents' edits instead (the page's own cost of rendering).
# SOAK_TYPING: the person's keys per second (10: a fast typist).
SOAK_DURATION ?= 10m
SOAK_RACE ?= 0
SOAK_PACE ?= max
SOAK_AGENTS ?= mcp
SOAK_TYPING ?= 10
soak: venv build ## a person and four agents for SOAK_DURATION (10m; SOAK_PACE=max or 300ms; SOAK_RACE=1: race detector; SOAK_AGENTS=jupyterlab:20; SOAK_TYPING=10), then prints the figures
	SOAK_DURATION=$(SOAK_DURATION) SOAK_RACE=$(SOAK_RACE) SOAK_PACE=$(SOAK_PACE) SOAK_AGENTS=$(SOAK_AGENTS) SOAK_TYPING=$(SOAK_TYPING) go test -run '^$$' -bench Soak -benchtime 1x -timeout 90m ./tests/soak/

# Many users through one hub URL (TestHubSoak in tests/hub): one agent per
# user at <hub>/services/mcp for HUB_SOAK_DURATION, with per-user limits,
# fewer servers than users, an idle timeout that culls servers mid-run, and
# the hub and its router restarted once each; then every acknowledged edit
# must be on its owner's volume and nowhere else. make test runs a short one
# (10 users, 2 minutes). The timeout only guards against a hang.
HUB_SOAK_USERS ?= 50
HUB_SOAK_DURATION ?= 10m
hub-soak: hub-deps base-images ## HUB_SOAK_USERS agents (50) through <hub>/services/mcp for HUB_SOAK_DURATION (10m), hub and router restarted mid-run; checks nothing is lost, prints the figures
	HUB_SOAK_USERS=$(HUB_SOAK_USERS) HUB_SOAK_DURATION=$(HUB_SOAK_DURATION) go test -count=1 -v -run '^TestHubSoak$$' -timeout 4h ./tests/hub/

# datalayer's jupyter-mcp-server, the peer tests/bench compares against, in a
# venv of its own (its jupyter and pycrdt pins differ from .venv's).
BENCH_VENV := .venv-bench
bench-deps: $(BENCH_VENV)/.installed ## install datalayer's jupyter-mcp-server (the benchmark's peer) into .venv-bench
$(BENCH_VENV)/.installed: tests/bench/datalayer-requirements.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/bench/datalayer-requirements.txt
	touch $@

bench: venv oracles hub-deps bench-deps build base-images ## print the figures: notebook ops, execution, the peer, cold start, memory, the image, ten hub users, CRDT vs Yjs
	@# -p 1: one package's benchmarks at a time, so they do not load each other.
	@out=$$(mktemp); go test -p 1 -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m ./tests/bench/ ./tests/container/ ./tests/hub/ 2>&1 | tee $$out; \
	status=$${PIPESTATUS[0]}; echo; echo "The performance goals (from the figures above):"; grep '^goal:' $$out; rm -f $$out; exit $$status

lock: ## re-pin jupyter_config/requirements.txt from a fresh environment
	rm -rf /tmp/sidecar-lock && $(PYTHON) -m venv /tmp/sidecar-lock
	@# soupsieve 3+ needs Python >= 3.11.5; the local base image has Debian 12's 3.11.2.
	/tmp/sidecar-lock/bin/pip install --quiet jupyterlab jupyter-server-proxy jupyter-collaboration ipykernel matplotlib 'soupsieve<3'
	{ head -2 jupyter_config/requirements.txt; /tmp/sidecar-lock/bin/pip freeze; } > jupyter_config/requirements.txt.new
	mv jupyter_config/requirements.txt.new jupyter_config/requirements.txt
	@# The local base image has Debian 12's Python 3.11.2: every pin must install there too.
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11.2 -d /tmp/sidecar-lock/check \
		-r jupyter_config/requirements.txt -r image/requirements.txt || \
		{ echo "a pin above needs a newer Python than 3.11.2: pin an older release of it"; exit 1; }

clean: ## remove build outputs and the Python environments (not .hub/state, the hub's users and tokens)
	rm -rf bin dist $(LABEXT)/dist $(LABEXT)/build $(LABEXT)/node_modules $(VENV) $(BUILD_VENV) $(CLIENTS_VENV) tests/oracles/node_modules tests/apps/node_modules tests/conformance/node_modules $(HUB_VENV) $(BENCH_VENV) jupyter_config/hub/node_modules

# ---- container image: JupyterLab + sidecar in one image (Dockerfile, image/) ----
# `make image` works without any image registry: base-images debootstraps
# Debian bookworm (apt mirrors only) into two local base images, which replace
# the Dockerfile's public defaults (golang, python) through build args.
IMAGE ?= jupyter-mcp-sidecar
BASE_RUNTIME_IMAGE ?= jupyter-mcp-sidecar-base:runtime
BASE_BUILD_IMAGE ?= jupyter-mcp-sidecar-base:build
DOCKER_BUILD_FLAGS ?=

.PHONY: image base-images
base-images: ## build the local Debian base images for the Dockerfile (kept once built)
	image/build-base-images.sh $(BASE_RUNTIME_IMAGE) $(BASE_BUILD_IMAGE)

image: base-images labextension ## build the image (IMAGE=jupyter-mcp-sidecar): JupyterLab with MCP at /mcp
	docker build $(DOCKER_BUILD_FLAGS) -t $(IMAGE) \
		--build-arg BUILD_IMAGE=$(BASE_BUILD_IMAGE) --build-arg RUNTIME_IMAGE=$(BASE_RUNTIME_IMAGE) \
		--build-arg VERSION=$(VERSION) .
# ---- end container image ----

# ---- JupyterHub: a container of the image per user (jupyter_config/hub/) ----
# The hub's Python side (JupyterHub, DockerSpawner, the idle culler) in its
# own venv, configurable-http-proxy from npm; both pinned. tests/hub uses them too.
HUB_VENV := .hub/venv
HUB_STATE_DIR ?= .hub/state
HUB_PORT ?= 8000

hub-deps: $(HUB_VENV)/.installed jupyter_config/hub/node_modules/.installed ## install JupyterHub (venv in .hub/) and configurable-http-proxy
$(HUB_VENV)/.installed: jupyter_config/hub/requirements.txt
	test -x $(HUB_VENV)/bin/python || $(PYTHON) -m venv $(HUB_VENV)
	$(HUB_VENV)/bin/pip install --quiet --disable-pip-version-check -r jupyter_config/hub/requirements.txt
	touch $@
jupyter_config/hub/node_modules/.installed: jupyter_config/hub/package-lock.json
	@v=$$(node --version | sed -E 's/^v([0-9]+).*/\1/'); [ "$$v" -ge 20 ] 2>/dev/null || \
		{ echo "configurable-http-proxy 5.3 needs Node.js >= 20, this is $$(node --version) (Debian 12's nodejs is 18: use NodeSource or nvm)"; exit 1; }
	npm ci --prefix jupyter_config/hub --no-audit --no-fund --loglevel=error
	touch $@

hub: hub-deps build ## JupyterHub on 127.0.0.1:$(HUB_PORT): a server of the image per user, MCP at <hub>/services/mcp
	@docker image inspect $(IMAGE) >/dev/null 2>&1 || $(MAKE) image
	@mkdir -p $(HUB_STATE_DIR) && chmod 700 $(HUB_STATE_DIR)
	@# The admin token: HUB_ADMIN_TOKEN, else the one made by an earlier run, else a new one.
	@token="$${HUB_ADMIN_TOKEN:-$$(cat $(HUB_STATE_DIR)/admin-token 2>/dev/null)}"; \
	token="$${token:-$$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}"; \
	(umask 077; echo "$$token" > $(HUB_STATE_DIR)/admin-token); \
	url="http://127.0.0.1:$(HUB_PORT)"; \
	echo ""; \
	echo "JupyterHub:  $$url   (any name, any password: NOT for production; HUB_SHARED_PASSWORD sets one)"; \
	echo "Admin token: $$token   (kept in $(HUB_STATE_DIR)/admin-token)"; \
	echo ""; \
	echo "MCP, one URL for every user (the client signs in through the hub in your browser;"; \
	echo "the user's server starts when needed):"; \
	echo "  claude mcp add --transport http jupyter $$url/services/mcp"; \
	echo "  {\"mcpServers\": {\"jupyter\": {\"url\": \"$$url/services/mcp\"}}}"; \
	echo "Audit trail: $(HUB_STATE_DIR)/mcp-audit.log"; \
	echo ""; \
	echo "Or with a hub API token (scripts, clients without sign-in):"; \
	echo "  curl -X POST -H \"Authorization: token $$token\" $$url/hub/api/users/alice"; \
	echo "  curl -X POST -H \"Authorization: token $$token\" -d '{\"note\": \"mcp\"}' $$url/hub/api/users/alice/tokens"; \
	echo "  claude mcp add --transport http jupyter $$url/services/mcp --header \"Authorization: token <alice's token>\""; \
	echo "or the user's own server, once started: $$url/user/alice/mcp"; \
	echo ""; \
	cd $(HUB_STATE_DIR) && HUB_ADMIN_TOKEN="$$token" HUB_PORT=$(HUB_PORT) HUB_IMAGE=$(IMAGE) \
		HUB_MCP_ROUTER="$(CURDIR)/bin/jupyter-mcp-hub" HUB_STATE_DIR="$$PWD" \
		exec "$(CURDIR)/$(HUB_VENV)/bin/python" "$(CURDIR)/jupyter_config/hub/launch.py" -f "$(CURDIR)/jupyter_config/hub/jupyterhub_config.py"

hub-lock: ## re-pin jupyter_config/hub/requirements.txt (jupyterhub as in image/requirements.txt)
	rm -rf /tmp/sidecar-hub-lock && $(PYTHON) -m venv /tmp/sidecar-hub-lock
	/tmp/sidecar-hub-lock/bin/pip install --quiet "$$(grep '^jupyterhub==' image/requirements.txt)" dockerspawner jupyterhub-idle-culler
	{ head -4 jupyter_config/hub/requirements.txt; /tmp/sidecar-hub-lock/bin/pip freeze; } > jupyter_config/hub/requirements.txt.new
	mv jupyter_config/hub/requirements.txt.new jupyter_config/hub/requirements.txt
