# The two commands: `make up` runs the platform, `make test` checks it.
# Both install what is missing first and are safe to repeat.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export PATH := $(HOME)/.dapr/bin:$(HOME)/.cargo/bin:$(PATH)

.PHONY: help up down status test infra infra-down dapr deps fmt fmt-check clippy rust-test \
        compose-check stack-smoke stack-soak contracts-check

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# Instances of every service `make up` runs (REPLICAS=2: scripts/lib/replicas.sh, ADR 0045).
REPLICAS ?= 1

up: ## Install what is missing and run the whole platform on this machine (REPLICAS=2: two instances of every service)
	@REPLICAS=$(REPLICAS) scripts/stack.sh up

down: ## Stop everything `make up` started
	@scripts/stack.sh down

status: ## What is running
	@scripts/stack.sh status

dapr: ## Build the pinned Dapr runtime and CLI into ~/.dapr/bin (skipped when present)
	@scripts/install-dapr.sh

infra: ## Install and start Redis and PostgreSQL on loopback
	@scripts/infra.sh up

infra-down: ## Stop the Redis and PostgreSQL that `make infra` started
	@scripts/infra.sh down

deps: infra dapr ## Everything the tests need
	@command -v docker-compose >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; }

test: deps caddy fmt-check clippy rust-test compose-check contracts-check slo-check k8s-check deny actionlint catalog-check stack-smoke fuzz-smoke example-test chaos-short ## Install what is missing, then every check and test
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "tests: %d passed, %d failed\n", p, f}' .run/logs/cargo-test.log

fmt: ## Format the code
	cargo fmt --all

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets --locked -- -D warnings

rust-test: infra dapr ## Unit tests, and integration tests against real daprd, Redis and PostgreSQL
	@mkdir -p .run/logs
	set -o pipefail; cargo test --workspace --locked --lib --bins --tests 2>&1 | tee .run/logs/cargo-test.log

contracts-check: ## AsyncAPI through the real parser (@asyncapi/cli, pinned); event schemas, examples, published types, dead-letter channels, evolution vs contracts/events/baseline
	@scripts/check-asyncapi.sh
	cargo test -p platform-event-contracts --locked

compose-check: ## docker-compose.yml is valid and pins the same Dapr as tools/dapr/go.mod
	@scripts/check-compose.sh --self-test

stack-smoke: ## `make up` reaches ready and `make down` leaves nothing running
	@if curl -fsS -o /dev/null http://127.0.0.1:8002/readyz 2>/dev/null; then \
	  echo "stack-smoke: a platform is already running here; skipped so as not to stop it"; \
	else scripts/stack.sh up && scripts/stack.sh down; fi

# Runs of `make stack-soak` (too long for `make test`, whose stack-smoke is one run).
N ?= 20

stack-soak: ## `make up` + `make down` N times in a row (N=20), stopping at the first failure; prints timings
	@if curl -fsS -o /dev/null http://127.0.0.1:8002/readyz 2>/dev/null; then \
	  echo "stack-soak: a platform is already running here; not started so as not to stop it"; exit 1; \
	else scripts/stack-soak.sh $(N); fi

bench-bookkeeping: infra dapr ## Ledger benchmark: entries/s (batch API) and events/s end to end, with percentiles
	cargo bench -p bookkeeping --bench throughput

.PHONY: bench-communication
bench-communication: infra dapr ## communication benchmark: emails/s from event in to SMTP catcher, with p50/p99
	cargo bench -p communication --bench throughput

.PHONY: bench-payments
bench-payments: infra dapr ## payments benchmark: create+confirm/s and p50/p99 vs the same sidecar calls issued directly
	cargo bench -p payments --bench payments

.PHONY: bench-auth
bench-auth: infra ## auth benchmark: client-credentials grants/s with p50/p99, and token validations/s per core
	cargo bench -p auth --bench auth

.PHONY: bench-smtp-catcher
bench-smtp-catcher: ## SMTP catcher benchmark: mails/s over SMTP (one connection per mail) with p50/p99
	cargo bench -p platform-test-support --bench smtp_catcher

# --- payments durability (issue 12 items 3-5) ---
.PHONY: bench-redis-fsync
bench-redis-fsync: ## Redis appendfsync always vs everysec: XADD/s, p50/p99 and ratio, two private servers (ADR 0030)
	scripts/bench-redis-fsync.sh
# --- reliability: fault-injection suite (tests/tests/chaos.rs, docs/reliability.md) ---
# The suite starts `make up REPLICAS=2` itself, so it runs under the stack
# lock; build first, outside the lock. Already holding the lock (e.g. `flock
# /tmp/lisasports-stack.lock make test`)? Pass STACK_LOCKED=1.
STACK_LOCK ?= /tmp/lisasports-stack.lock
CHAOS_SHORT := kill-consumer,broker-restart,database-restart
CHAOS_RUN = set -o pipefail; mkdir -p .run/logs; \
	scripts/build-services.sh --locked && cargo test -p platform-tests --test chaos --locked --no-run && \
	$(if $(STACK_LOCKED),,flock -o $(STACK_LOCK)) cargo test -p platform-tests --test chaos --locked -- --ignored --nocapture 2>&1 | tee .run/logs/$@.log
.PHONY: chaos chaos-short
chaos: infra dapr caddy ## Fault-injection suite, every scenario on REPLICAS=2 (~25 min): prints attempted/accepted/lost/duplicated, recovery, invariants
	@$(CHAOS_RUN)

chaos-short: infra dapr caddy ## The CI profile of `make chaos`: kill a consumer, broker restart, database restart (~5 min)
	@if curl -fsS -o /dev/null http://127.0.0.1:8002/readyz 2>/dev/null; then \
	  echo "chaos-short: a platform is already running here; skipped so as not to stop it"; \
	else export CHAOS_SCENARIOS=$(CHAOS_SHORT); $(CHAOS_RUN); fi
# --- reliability: parking lot ---
.PHONY: redrive
redrive: ## Re-drive parked dead letters: SERVICE=bookkeeping|communication [ID=<letter id>] (TOKEN, or CLIENT_SECRET of the `operations` client)
	@SERVICE="$(SERVICE)" ID="$(ID)" scripts/redrive.sh
# --- gateway ---
# The edge gateway (ADR 0025) is started by `make up` (scripts/lib/gateway.sh);
# its tests are tests/tests/edge_*.rs (run by rust-test).
.PHONY: caddy bench-gateway
caddy: ## Install the pinned Caddy (Debian package) the edge gateway runs on
	@scripts/install-caddy.sh

bench-gateway: infra dapr caddy ## Edge gateway benchmark: p50/p99 and req/s of GET /payments/v1/payments/{id} through the gateway vs directly (vegeta)
	VEGETA="$$(scripts/install-vegeta.sh)" cargo bench -p platform-tests --bench gateway
# --- kubernetes ---
# deploy/ proven against a real kube-apiserver + etcd on loopback (free ports,
# no stack lock), the pipeline linted, the dependency policy checked. Tools
# are pinned and cached under ~/.cache/lisasports-platform/k8s (ADR 0034).
.PHONY: k8s-tools k8s-generate k8s-check k8s-keda-check deny actionlint

k8s-tools: ## Build/install kube-apiserver, etcd, kustomize, helm, kubeconform, actionlint (pinned, cached)
	@scripts/install-k8s-tools.sh all

k8s-generate: ## Regenerate deploy/base/dapr from components/ and dapr-config/ (one source of truth)
	@scripts/k8s-generate.sh

k8s-check: ## Every overlay: kustomize build | kubectl apply --dry-run=server on a local API server; kubeconform; migrations expand-only
	@scripts/k8s-migrations-check.py --self-test
	@scripts/k8s-migrations-check.py services/*/migrations
	@scripts/k8s-check.sh

k8s-keda-check: infra ## KEDA operator against the local API server and the shared Redis: 0 -> 1 on bookkeeping's lag, back after cooldown
	@scripts/k8s-keda-check.sh

deny: ## cargo deny: licenses, bans, sources, duplicates (deny.toml); advisories need the RustSec DB (CI only)
	@scripts/install-k8s-tools.sh cargo-deny
	@eval "$$(scripts/install-k8s-tools.sh print-env)"; \
	  $$CARGO_DENY --version; \
	  $$CARGO_DENY --locked check licenses bans sources; \
	  echo "deny: advisories SKIPPED here (the RustSec advisory database cannot be fetched on this machine); the pipeline runs 'cargo deny check advisories'"

actionlint: ## Lint .github/workflows with the pinned actionlint
	@scripts/install-k8s-tools.sh cli
	@eval "$$(scripts/install-k8s-tools.sh print-env)"; $$ACTIONLINT -version | head -n1; $$ACTIONLINT -no-color && echo "actionlint: .github/workflows clean"
# --- bookings ---
.PHONY: bench-bookings test-bookings
bench-bookings: infra dapr ## bookings benchmark: catalogue cached vs bypassed (reads/s, p50/p99, hit ratio), 1,000 bookers on 100 places, deadline lateness
	cargo bench -p bookings --bench bookings

test-bookings: infra dapr ## bookings' integration tests (real daprd, scheduler, Redis, PostgreSQL) and its saga property test
	cargo test -p bookings
# --- observability ---
# Traces (Zipkin fed by an OpenTelemetry Collector), Prometheus, SLOs with generated burn-rate rules, dashboards
# (docs/observability.md, docs/slo.md; ADR 0047, 0033).
.PHONY: observability-tools slo-rules slo-check trace-check slo bench-tracing

observability-tools: ## Install Prometheus/promtool (Debian) and fetch the pinned Zipkin, build the pinned collector and Sloth into ~/.cache
	@scripts/install-observability.sh

slo-rules: ## Generate slo/rules/ from slo/*.yaml with the pinned Sloth (commit the result)
	@scripts/slo-rules.sh

slo-check: ## Generated rules match slo/*.yaml; promtool check + test rules; dashboards' PromQL parses
	@scripts/slo-rules.sh --check
	@python3 scripts/check-dashboards.py

trace-check: infra dapr ## Under the stack lock: make up, assert one trace per confirmed payment in Zipkin (API and UI), make down
	@flock -o /tmp/lisasports-stack.lock -c 'scripts/stack.sh up && cargo test -p platform-tests --test trace_payment -- --ignored && scripts/trace-ui-check.sh; rc=$$?; scripts/stack.sh down; exit $$rc'

.PHONY: bookings-walkthrough
bookings-walkthrough: infra dapr ## Under the stack lock: make up, run the README's bookings walk-through through :8000 (tests/tests/bookings_walkthrough.rs), make down
	@cargo test -p platform-tests --test bookings_walkthrough --no-run
	@flock -o /tmp/lisasports-stack.lock -c 'scripts/stack.sh up && cargo test -p platform-tests --test bookings_walkthrough -- --ignored --nocapture; rc=$$?; scripts/stack.sh down; exit $$rc'

SLO_RATE ?= 20
SLO_DURATION ?= 60s
slo: ## Load run (vegeta, SLO_RATE/s for SLO_DURATION) of a realistic mix, then every SLI vs its objective from Prometheus
	@scripts/slo-run.sh $(SLO_RATE) $(SLO_DURATION)

bench-tracing: infra dapr ## bench-payments with spans exported (sampling 1 and the default) vs tracing off, same run
	@scripts/bench-tracing.sh
# --- service catalogue (issue 16 §3, ADR 0041) ---
.PHONY: catalog catalog-check
catalog: ## Generate the service catalogue (static site) into .run/catalog/ from catalog/ and the contracts
	@scripts/catalog.sh build

catalog-check: ## catalog/ lists every service, topic and Dapr component; the site checked in headless chromium
	@scripts/catalog.sh check

# --- contracts: every API fuzzed against its OpenAPI (issue 16, ADR 0039) ---
# Under the stack lock: reuses a platform already running, else starts one
# and stops it afterwards. Reports under .run/fuzz/<profile>/.
.PHONY: fuzz fuzz-smoke fuzz-tools
FUZZ_UNDER_LOCK = flock -o /tmp/lisasports-stack.lock bash -c 'if curl -fsS -o /dev/null http://127.0.0.1:8002/readyz 2>/dev/null; then scripts/fuzz.sh $(1); else scripts/stack.sh up && scripts/fuzz.sh $(1); rc=$$?; scripts/stack.sh down; exit $$rc; fi'

fuzz-tools: ## Install the pinned Schemathesis into ~/.cache/lisasports-platform/fuzz-venv
	@scripts/install-fuzz.sh >/dev/null

fuzz: infra dapr fuzz-tools ## Schemathesis against every service's OpenAPI: 100 examples per operation, no 5xx, schemas, statuses, problem+json, invalid input changes nothing
	@$(call FUZZ_UNDER_LOCK,full)

fuzz-smoke: infra dapr fuzz-tools ## The short profile of `make fuzz` that `make test` runs (8 examples per operation)
	@$(call FUZZ_UNDER_LOCK,smoke)

# --- examples: a service in another language (issue 16 section 4, ADR 0042) ---
.PHONY: example-test
example-test: infra dapr ## examples/finance-notifier (Python, Dapr SDK): its tests, then end to end under the stack lock (make up, a payment and a refund, make down)
	@cd examples/finance-notifier && venv="$$(./install.sh)" && "$$venv/bin/python" -m pytest -q -m "not stack"
	@flock -o /tmp/lisasports-stack.lock bash -c 'scripts/stack.sh up && (cd examples/finance-notifier && FINANCE_NOTIFIER_E2E=1 "$$(./install.sh)/bin/python" -m pytest -q -m stack); rc=$$?; scripts/stack.sh down; exit $$rc'
