# The two commands the README promises: `make demo` and `make test`.
SWIFT ?= swift
SETU := .build/debug/setu

.PHONY: deps build demo test bench-validate bench-history schemas clean

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

# The main job on the example marketplace: validate it, then run the daemon and the
# gateway on a demo repository built from it, with sample upstreams (Ctrl-C stops).
demo: build
	@flags=$$(git rev-parse --verify -q HEAD >/dev/null 2>&1 || echo --worktree); \
	$(SETU) validate --repo . $$flags && echo && \
	$(SETU) demo --example . --state .setu-demo

# The command-line tests run the `setu` this builds.
# Every target declares what it imports: the build fails on an import it does not declare.
IMPORT_CHECK = --explicit-target-dependency-import-check error

# The page tests then run in a headless Chromium (scripts/browser-tests installs it).
test: deps
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift
	$(SWIFT) build $(IMPORT_CHECK)
	$(SWIFT) test $(IMPORT_CHECK)
	scripts/browser-tests

# Export the schemas beside the example, where its yaml-language-server lines point.
schemas: build
	$(SETU) schema --out schemas

bench-validate: deps
	bench/validate

bench-history: deps
	bench/history

clean:
	rm -rf .build schemas
