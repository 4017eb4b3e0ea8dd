// Package peers holds the peer benchmarks: the same bank-account workloads,
// in one benchmark binary, for this repository's library and for
// github.com/hallgren/eventsourcing v0.9.1, github.com/looplab/eventhorizon
// v0.17.0 and github.com/modernice/goes v0.9.0, each over its in-memory
// store, with events encoded as JSON wherever the library encodes.
//
// It is its own module, outside the repository's go.work, so that the peers
// never enter the library's dependency graph. Run it with the workspace off:
//
//	cd tools/bench/peers
//	GOWORK=off go test -run '^$' -bench . -benchmem -count 5
//
// or through tools/bench/peers.sh, which prints the ratios of our figures to
// the fastest peer's. The workloads, one benchmark each, with one
// sub-benchmark per library:
//
//   - BenchmarkNewInstance: construct an aggregate instance and wire it up.
//   - BenchmarkFreshCommand: one command on a new aggregate: new instance,
//     load of an empty stream, decide, commit, apply.
//   - BenchmarkCommand1000: a new instance loads a stream of 1,000 events,
//     then handles one command.
//   - BenchmarkRebuild10000: a new instance loads a stream of 10,000 events.
//   - BenchmarkWarmCommand: one command on an instance kept between
//     commands.
//
// Each reports ns/op, B/op and allocs/op, and cpu-ns/op: the process's user
// and system CPU time (getrusage) over the timed loop, divided by b.N, which
// is steadier than wall time on a shared machine.
//
// The libraries, as sub-benchmark names:
//
//   - us: this repository, aggregate wired by reflection (AutomaticWireup).
//   - us-generated: the same aggregate with the dispatch methods cmd/esgen
//     generates (AutomaticWireup uses them instead of reflective calls).
//   - us-define: the same, wired by DefineCommandHandler and
//     DefineReplayMethod.
//   - us-generated-gojson: us-generated with the codec of codecs/gojson
//     (goccy/go-json) instead of encoding/json: the faster codec a user can
//     choose. The peers keep encoding/json.
//   - hallgren: hallgren/eventsourcing over its memory store, which keeps
//     JSON-encoded bytes (as ours does).
//   - eventhorizon: looplab/eventhorizon over its memory store, which keeps
//     event values and deep-copies them by reflection instead of encoding.
//   - eventhorizon-json: eventhorizon over a store of this module that keeps
//     event data as JSON, like ours.
//   - goes: modernice/goes over its memory store, which keeps event values
//     without copying and answers each query by testing every event in the
//     store.
//   - goes-json: goes over a store of this module that keeps event data as
//     JSON (through goes's codec registry), indexed by aggregate, like ours.
//
// The comparisons that count are with hallgren, eventhorizon-json and
// goes-json, which do the encoding work we do; the stock eventhorizon and
// goes stores are measured too, for reference. Two caveats:
//
//   - The two JSON stores of this module do the least a store must: encode,
//     check the expected version under a lock, append to a per-aggregate
//     slice. Our memory backend does more per commit (backend.CheckAppend,
//     copies of the bytes and metadata, a global feed of commits and a
//     channel to wake its readers), so part of a gap to eventhorizon-json is
//     the store, not the aggregate layer.
//   - Stores are kept small: BenchmarkFreshCommand replaces its store every
//     256 accounts (untimed), BenchmarkCommand1000 gives each op a store with
//     one stream of exactly 1,000 events, BenchmarkWarmCommand replaces its
//     instance and store every 16,384 commands. The stock goes store's cost
//     per query grows with everything it holds, so its figures depend on
//     these sizes.
//
// Wall time (ns/op) on a machine shared with other work is mostly a
// measure of that other work; compare CPU time first.
package peers
