#!/usr/bin/env bash
# Runs every benchmark of the project and writes the results into
# docs/PERFORMANCE.md. `make bench` runs it under tools/testservers.sh, so
# the database benchmarks talk to the real test servers.
#
#   1. the Go benchmarks of every module of the workspace (BENCH_COUNT runs
#      each), except internal/integration: raw output in docs/bench/raw.txt,
#      benchstat's summary in docs/bench/benchstat.txt, medians and ratios in
#      the "bench" section of docs/PERFORMANCE.md;
#   2. the integration benchmarks (relay into JetStream, 16 writers on one
#      aggregate), once each: docs/bench/integration.txt and the same section;
#   3. the peer comparison (tools/bench/peers.sh): docs/bench/peers.md and
#      the "peers" section;
#   4. the HTTP example against the bare-gin ceiling (tools/bench/http.sh):
#      docs/bench/http.md and the "http" section.
#
#   BENCH_COUNT=5      runs per Go benchmark (benchstat wants several)
#   BENCH=regexp       which Go benchmarks (default: all)
#   BENCH_STEPS="go integration peers http"   which steps to run
set -euo pipefail
cd "$(dirname "$0")/.."
count=${BENCH_COUNT:-5}
pattern=${BENCH:-.}
steps=${BENCH_STEPS:-go integration peers http}
doc=docs/PERFORMANCE.md
out=docs/bench
mkdir -p "$out"
report() { (cd tools/testservers && GOWORK=off go run ./cmd/benchreport -doc "../../$doc" "$@"); }
has() { [[ " $steps " == *" $1 "* ]]; }

# Module directories of the workspace, relative, integration last.
mods=$(go list -m -f '{{.Dir}}' | sed "s|^$PWD|.|" | grep -v '^./internal/integration$')

if has go; then
	: > "$out/raw.txt"
	for m in $mods; do
		echo "bench.sh: $m" >&2
		go test -run '^$' -bench "$pattern" -benchmem -count "$count" -timeout 60m "$m/..." | tee -a "$out/raw.txt"
	done
	go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$out/raw.txt" > "$out/benchstat.txt"
fi
if has integration; then
	echo "bench.sh: ./internal/integration" >&2
	go test -run '^$' -bench . -benchtime 1x -count 1 -timeout 60m ./internal/integration/... | tee "$out/integration.txt"
fi
if has go || has integration; then
	cat "$out/raw.txt" "$out/integration.txt" 2>/dev/null |
		report -cmd "make bench (go test -run '^\$' -bench '$pattern' -benchmem -count $count, each module; internal/integration -benchtime 1x)"
fi
if has peers; then
	PEERS_COUNT=${PEERS_COUNT:-5} tools/bench/peers.sh > "$out/peers.md"
	report -section peers -cmd "PEERS_COUNT=${PEERS_COUNT:-5} tools/bench/peers.sh" < "$out/peers.md"
fi
if has http; then
	tools/bench/http.sh -rounds 3 > "$out/http.md"
	report -section http -cmd "tools/bench/http.sh -rounds 3" < "$out/http.md"
fi
echo "bench.sh: wrote $doc and $out/" >&2
