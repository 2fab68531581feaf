# Madoguchi — one command per job. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV        := .venv
PYTHON      ?= python3
CARGO       ?= cargo
ADDR        ?= 127.0.0.1:8080
DATA_DIR    ?= ./var
TENANT      ?= 272060
# Every Lambda function's binary (one crate per function under functions/).
FUNCTIONS   := $(sort $(notdir $(patsubst %/Cargo.toml,%,$(wildcard functions/*/Cargo.toml))))
LAMBDA_DIR  := target/lambda

TENANT_CONFIG ?= infra/config/$(TENANT).json

.PHONY: help dev test lint fmt openapi bench fuzz package venv package-tools infra-deps infra-test deploy clean

help: ## List the jobs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

$(VENV)/.stamp: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.stamp ## Project-local Python venv with moto's server (AWS-compatible endpoint for tests)

infra-deps: ## npm ci for the CDK app, when there is one
	@if [ -f infra/package-lock.json ]; then cd infra && npm ci --no-audit --no-fund; fi

dev: ## Run the whole system locally on the embedded adapters (SQLite, files, local keys)
	$(CARGO) build -p madoguchi-host --bin madoguchi
	@echo
	@echo "  Madoguchi on http://$(ADDR)  (data in $(DATA_DIR); Ctrl-C stops it)"
	@echo "  Try, in another terminal:"
	@echo "    curl -s http://$(ADDR)/healthz"
	@echo "    ADMIN=\$$(target/debug/madoguchi dev-token --role admin --tenant $(TENANT) --sub admin --data-dir $(DATA_DIR))"
	@echo "    curl -s -X PUT http://$(ADDR)/v1/tenants/$(TENANT)/staff/org -H \"authorization: Bearer \$$ADMIN\" -H 'if-match: 0' \\"
	@echo "         -H 'content-type: application/json' -d @docs/examples/org.json"
	@echo "    TOKEN=\$$(target/debug/madoguchi dev-token --role staff --dept shimin-ka --tenant $(TENANT) --sub clerk --data-dir $(DATA_DIR))"
	@echo "    curl -s -X POST http://$(ADDR)/v1/tenants/$(TENANT)/manage/forms -H \"authorization: Bearer \$$TOKEN\" \\"
	@echo "         -H 'content-type: application/json' -d @docs/examples/form-juminhyo.json"
	@echo "    curl -s -X POST http://$(ADDR)/v1/tenants/$(TENANT)/manage/forms/juminhyo/publish -H \"authorization: Bearer \$$TOKEN\" -H 'if-match: 1'"
	@echo "    curl -s http://$(ADDR)/v1/tenants/$(TENANT)/forms/juminhyo"
	@echo "    (citizen walk-through: README.md; mail goes to $(DATA_DIR)/outbox/)"
	@echo "    mkdir -p $(DATA_DIR)/inbox/jumin && cp docs/examples/jumin-sample.csv $(DATA_DIR)/inbox/jumin/"
	@echo
	target/debug/madoguchi serve --addr $(ADDR) --data-dir $(DATA_DIR) --tenant $(TENANT)

fmt: ## Format the code
	$(CARGO) fmt --all

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: venv infra-deps lint ## Install what the tests need and run every test (both adapter sets)
	scripts/with-moto $(CARGO) test --workspace --all-targets --no-fail-fast
	@if [ -f infra/package-lock.json ]; then cd infra && npm test; fi

openapi: ## Regenerate docs/openapi.json from the handlers
	$(CARGO) run --quiet -p madoguchi-host --bin madoguchi -- openapi > docs/openapi.json

bench: venv ## Cold start of every function vs. a hello-world lambda_runtime binary; the submission path (p50/p99, KMS requests per 1,000); CSV export of 100,000 applications (rows/s, peak memory); JPKI verifications/s; audit appends/s; linkage parse rows/s; QR seals and opens/s, sizes per household
	$(CARGO) build --release -p madoguchi-coldstart -p madoguchi-forms -p madoguchi-submissions \
	  -p madoguchi-attachments -p madoguchi-notify -p madoguchi-linkage-inbound -p madoguchi-staff \
	  -p madoguchi-esign -p madoguchi-linkage-outbound --bins
	target/release/coldstart --baseline target/release/hello-lambda \
	  --function forms=target/release/forms:events/forms/healthz.json \
	  --function submissions=target/release/submissions:events/forms/healthz.json \
	  --function staff=target/release/staff:events/forms/healthz.json \
	  --function esign=target/release/esign:events/forms/healthz.json \
	  --function attachments=target/release/attachments:events/linkage-inbound/s3-test-event.json \
	  --function notify=target/release/notify:events/linkage-inbound/s3-test-event.json \
	  --function linkage-inbound=target/release/linkage-inbound:events/linkage-inbound/s3-test-event.json \
	  --function linkage-outbound=target/release/linkage-outbound:events/linkage-outbound/scheduled.json \
	  --env MADOGUCHI_TABLE=madoguchi --env MADOGUCHI_TENANT=$(TENANT) \
	  --env MADOGUCHI_BUCKET_ATTACHMENTS=madoguchi-attachments \
	  --env MADOGUCHI_BUCKET_EXPORTS=madoguchi-exports --env MADOGUCHI_BUCKET_AUDIT=madoguchi-audit \
	  --env MADOGUCHI_BUCKET_LINKAGE=madoguchi-linkage \
	  --env MADOGUCHI_QUEUE_NOTIFY_URL=https://sqs.ap-northeast-1.amazonaws.com/000000000000/notify \
	  --env MADOGUCHI_DATA_KEY_ID=alias/madoguchi-data --env MADOGUCHI_MAC_KEY_ID=alias/madoguchi-mac \
	  --env MADOGUCHI_MAIL_FROM=no-reply@example.lg.jp \
	  --runs 30 --target 1.5 --json target/coldstart.json
	$(CARGO) bench -p madoguchi-submissions --bench submit
	$(CARGO) bench -p madoguchi-staff --bench export
	$(CARGO) bench -p madoguchi-jpki --bench verify
	$(CARGO) bench -p madoguchi-audit --bench append
	$(CARGO) bench -p madoguchi-linkage --bench ingest
	$(CARGO) bench -p madoguchi-qrseal --bench seal

# libFuzzer adds what it finds to the first directory: fuzz/corpus/ (ignored), never the
# committed seeds.
fuzz: ## Fuzz the form and answer validators, the JPKI signature parser, the core-system file reader and the QR opener for 60 s each (needs a nightly toolchain and cargo-fuzz)
	cd fuzz && mkdir -p corpus/definition && cargo +nightly fuzz run definition corpus/definition seeds/definition -- -max_total_time=60
	cd fuzz && mkdir -p corpus/submission_validator && cargo +nightly fuzz run submission_validator corpus/submission_validator seeds/submission_validator -- -max_total_time=60
	cd fuzz && mkdir -p corpus/jpki && cargo +nightly fuzz run jpki corpus/jpki seeds/jpki -- -max_total_time=60
	cd fuzz && mkdir -p corpus/linkage && cargo +nightly fuzz run linkage corpus/linkage seeds/linkage -- -max_total_time=60
	cd fuzz && mkdir -p corpus/qr_open && cargo +nightly fuzz run qr_open corpus/qr_open seeds/qr_open -- -max_total_time=60

$(VENV)/.package-stamp: requirements-package.txt $(VENV)/.stamp
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-package.txt
	touch $@

package-tools: $(VENV)/.package-stamp ## cargo-lambda and zig (for arm64 cross builds) into the venv
	rustup target add aarch64-unknown-linux-gnu

package: package-tools ## Every function as an arm64 Lambda zip under target/lambda/<function>/bootstrap.zip
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 --output-format zip \
	  $(foreach f,$(FUNCTIONS),--bin $(f))
	@for f in $(FUNCTIONS); do \
	  z=$(LAMBDA_DIR)/$$f/bootstrap.zip; \
	  printf '%-20s %8d bytes  %s\n' "$$f" "$$(stat -c %s "$$z")" "$$z"; \
	  if [ "$$(stat -c %s "$$z")" -gt 10485760 ]; then echo "  over the 10 MB budget" >&2; exit 1; fi; \
	done

infra-test: venv infra-deps ## CDK app tests only: synth without Rust, assertions, cdk-nag, cfn-lint
	cd infra && npm test

deploy: package-tools infra-deps ## cdk deploy of one tenant: make deploy TENANT_CONFIG=infra/config/<code>.json
	@test -f "$(TENANT_CONFIG)" || { echo "$(TENANT_CONFIG) not found: copy infra/config/example.json (docs/deploy.md)" >&2; exit 1; }
	cd infra && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npm run deploy -- -c tenantConfig=$(abspath $(TENANT_CONFIG))

clean: ## Remove build output, the venv and local data
	$(CARGO) clean
	rm -rf $(VENV) $(DATA_DIR)
