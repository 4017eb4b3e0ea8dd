#!/usr/bin/env bash
# Measures the counter example (examples/counter, -store memory) over HTTP
# with the vegeta load generator, beside a bare gin handler with a mutex
# (the ceiling), in one run: 16 clients on 100 counters, then on one hot
# counter; req/s, p50, p99 and server CPU per request, as a Markdown table
# on stdout. Needs only Go and the module proxy; everything runs on
# loopback. Arguments go to the program (tools/bench/peers/cmd/httpbench),
# for example:
#
#   tools/bench/http.sh -duration 10s -rounds 3
#   tools/bench/http.sh -example-args '-log-level warn'
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root/tools/bench/peers"
GOWORK=off go run ./cmd/httpbench -repo "$root" "$@"
