#!/usr/bin/env bash
# Runs the peer benchmarks (tools/bench/peers: us, hallgren/eventsourcing,
# looplab/eventhorizon, modernice/goes on the same bank-account workloads)
# and prints, as Markdown, the ratio of our median to the fastest peer's
# median per workload, in CPU time and in wall time, then every library's
# medians. Needs only Go and the module proxy.
#
# The benchmark binary is built once and run PEERS_COUNT times, each run
# covering every workload and library, so that slow drifts of the load of
# a shared machine hit all libraries alike.
#
#   PEERS_COUNT=5        runs (medians are taken over them)
#   PEERS_BENCHTIME=1s   -benchtime of each sub-benchmark
#   PEERS_BENCH=.        which benchmarks (a -bench regexp)
#   PEERS_RAW=FILE       keep the raw benchmark output there
#
# The raw output goes to stderr as it comes; the table to stdout.
set -euo pipefail
cd "$(dirname "$0")/peers"
count=${PEERS_COUNT:-5}
benchtime=${PEERS_BENCHTIME:-1s}
pattern=${PEERS_BENCH:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
raw=${PEERS_RAW:-$tmp/raw.txt}
: > "$raw"

GOWORK=off go test -c -o "$tmp/peers.test" .
for i in $(seq "$count"); do
	echo "peers.sh: run $i of $count" >&2
	"$tmp/peers.test" -test.run '^$' -test.bench "$pattern" -test.benchmem \
		-test.benchtime "$benchtime" -test.count 1 -test.timeout 60m | tee -a "$raw" >&2
done

versions=$(GOWORK=off go list -m -f '{{.Path}} {{.Version}}' \
	github.com/hallgren/eventsourcing github.com/looplab/eventhorizon github.com/modernice/goes | paste -sd, - | sed 's/,/, /g')
versions="$versions; $(go env GOVERSION) $(go env GOOS)/$(go env GOARCH), -benchtime $benchtime"
GOWORK=off go run ./cmd/peertable -versions "$versions" < "$raw"
