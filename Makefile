# The two commands the README promises: `make demo` and `make test`.
SWIFT ?= swift
SETU := .build/debug/setu

.PHONY: deps build demo test bench-validate bench-history schemas clean

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

# Validate the example marketplace (committed, at HEAD; the work tree outside a
# git checkout) and show its catalog.
demo: build
	@flags=$$(git rev-parse --verify -q HEAD >/dev/null 2>&1 || echo --worktree); \
	$(SETU) validate --repo . $$flags && echo && \
	$(SETU) catalog --repo . $$flags && echo && \
	$(SETU) catalog show cbse/class-xii-marksheet --repo . $$flags

# The command-line tests run the `setu` this builds.
test: deps
	$(SWIFT) build
	$(SWIFT) test

# Export the schemas beside the example, where its yaml-language-server lines point.
schemas: build
	$(SETU) schema --out schemas

bench-validate: deps
	bench/validate

bench-history: deps
	bench/history

clean:
	rm -rf .build schemas
