#!/usr/bin/env bash
# Runs every benchmark of the project, the database ones against the real
# test servers (`make bench` runs this under scripts/testservers.sh), keeps
# the raw output and benchstat's summary in docs/bench/, and rewrites the
# measured section of docs/PERFORMANCE.md.
#
#   BENCH_COUNT=5   runs per benchmark (benchstat wants several)
#   BENCH=regexp    which benchmarks (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${BENCH_COUNT:-5}
pattern=${BENCH:-.}
mkdir -p docs/bench
raw=docs/bench/raw.txt
cmd="make bench (go test -run '^\$' -bench '$pattern' -benchmem -count $count ./...)"
go test -run '^$' -bench "$pattern" -benchmem -count "$count" -timeout 90m ./... | tee "$raw"
go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$raw" > docs/bench/benchstat.txt
(cd tools/testservers && go run ./cmd/benchreport -doc ../../docs/PERFORMANCE.md -cmd "$cmd") < "$raw"
echo "wrote docs/PERFORMANCE.md, docs/bench/raw.txt and docs/bench/benchstat.txt" >&2
