# make test: start the real test servers (MongoDB-protocol FerretDB, dynalite,
# redis-server, nats-server, PostgreSQL), run every check and test of every
# module of the workspace (go.work) against them, stop them.
SHELL := /bin/bash
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Every module of the workspace, as package patterns relative to the root.
PKGS = $(shell go list -m -f '{{.Dir}}' | sed "s|^$(CURDIR)|.|; s|$$|/...|")

.PHONY: test check lint unit faults bench

test:
	bash tools/testservers.sh -- $(MAKE) --no-print-directory check

# check runs the checks and tests against servers already described by the
# EVENTSOURCING_* environment variables (see tools/README.md).
check: lint unit faults

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet $(PKGS)
	go run $(STATICCHECK) $(PKGS)
	cd tools/testservers && GOWORK=off go vet ./...
	cd tools/bench/peers && GOWORK=off go vet ./...

unit:
	go test -race -count=1 -skip '^TestFault' $(PKGS)
	cd tools/bench/peers && GOWORK=off go test -count=1 ./...

# The fault tests (named TestFault*) kill, freeze and restart the servers,
# so they run alone, one package at a time, last.
faults:
	EVENTSOURCING_FAULTS=1 go test -race -count=1 -p 1 -run '^TestFault' $(PKGS)

bench:
	bash tools/testservers.sh -- bash tools/bench.sh
