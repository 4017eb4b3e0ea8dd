# make test: start the real test servers (MongoDB-protocol FerretDB, dynalite,
# redis-server, nats-server), run every check and test against them, stop them.
SHELL := /bin/bash
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test check bench lint

test:
	bash scripts/testservers.sh -- $(MAKE) --no-print-directory check

# check runs the checks and tests against servers already described by the
# EVENTSOURCING_* environment variables (see scripts/README.md).
# internal/faults kills and restarts the servers, so it runs alone, last.
check: lint
	go test -race -count=1 $$(go list ./... | grep -v /internal/faults)
	EVENTSOURCING_FAULTS=1 go test -race -count=1 -p 1 ./internal/faults/

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	go run $(STATICCHECK) ./...
	cd tools/testservers && go vet ./...

bench:
	bash scripts/testservers.sh -- bash scripts/bench.sh
