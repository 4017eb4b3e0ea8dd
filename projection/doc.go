// Package projection is the read side of the toolkit: it keeps read models
// current from the events of an event store, rebuilds them, and reports
// how far behind they are.
//
// # Projections
//
// A read model is written the way an aggregate is. Its methods whose names
// start with Project apply one event type each, found by reflection and
// checked when the projection is made (New reports every malformed method
// in one error, as AggregateBase.AutomaticWireup does):
//
//	type Totals struct {
//		mu     sync.Mutex
//		counts map[string]int64
//	}
//
//	func (t *Totals) ProjectIncremented(ev projection.Event, e Incremented) {
//		t.mu.Lock()
//		defer t.mu.Unlock()
//		t.counts[ev.Stream.Key] += e.By
//	}
//
// A method may also take a context, the store's transaction (*sql.Tx for
// an SQLStore) and the Event envelope (stream, sequence, commit ID, commit
// time, metadata, position), and return an error; On and OnTx register
// functions instead of methods. Events arrive decoded through the
// eventsourcing.EventRegistry into their Go types.
//
// # Running a projection
//
// A Runner reads commits from a Source, applies their events through the
// projection and keeps its progress in a Store:
//
//   - Sources: FromStore or FromFeed read a store's Feed (the memory,
//     SQLite and PostgreSQL stores have one); the Source of package
//     middleware/publish/natsjs reads a JetStream stream that a relay
//     (package relay) fills from any store, MongoDB and DynamoDB included.
//   - Stores: a MemoryStore beside an in-memory read model (rebuilt when
//     the process starts), or an SQLStore in the read model's database,
//     whose transaction the projection's methods write through.
//
// Run follows the source until its context ends; CatchUp returns once it
// has applied everything readable, which is how a rebuild is run, and how
// a test waits for a read model.
//
// # Delivery guarantees
//
// Sources deliver at least once, and each stream's commits in stream
// order. The runner makes that exactly once for effects made through the
// store's transaction:
//
//   - It keeps, with the read model, the last sequence it applied for
//     every stream. An event at or below it (a redelivery, a duplicate) is
//     skipped; an event more than one above it is a gap: the runner stops
//     with a *GapError rather than skip the missing events.
//   - Events are applied in units of work of up to WithBatchSize commits.
//     A unit's effects, the new per-stream sequences and the new checkpoint
//     (the source position up to which everything is applied) are
//     committed together: in one database transaction for an SQLStore, in
//     step with the handler's changes for a MemoryStore. Only then is the
//     source acknowledged.
//   - So a runner killed at any point (a process crash, a cancelled
//     context, a lost database connection) leaves the read model exactly at
//     a checkpoint, and the next runner goes on from there without applying
//     an event twice or skipping one. RunKillRestart in package
//     projectiontest proves it for each source, with 16 writers committing
//     while runners are killed.
//
// # Limits
//
//   - Effects outside the store's transaction (a call to another service,
//     a write to another database, a cache) are at least once: the handler
//     runs again for an event whose unit of work was rolled back, and once
//     per retry of a failing event. Make them idempotent; the commit ID and
//     the stream sequence identify an event.
//   - Order holds within a stream. Across streams a read model sees the
//     source's order (the feed's, or JetStream's stream sequence), not the
//     order of the writers' clocks.
//   - A parked event (Policy with Then: Park) is missing from the read
//     model until Runner.Replay applies it, after the later events of its
//     stream.
//   - A source that lost events (a JetStream stream whose limits removed
//     messages) stops the runner with a *GapError for each stream that
//     lost some.
//   - The per-stream sequences take one entry per stream the projection
//     tracks (one row in SQL): WithAggregateTypes limits them to the
//     streams the projection reads.
//   - Run one runner per projection version. A second one is safe (their
//     units of work serialise on the checkpoint) but not faster.
//   - Status.Lag is measured from the commit times, so from the writers'
//     clocks.
//
// # Rebuilds, lag and progress
//
// Each projection has a version (WithVersion) with its own checkpoint and
// progress. To rebuild, run a new version from the beginning beside the
// live one (its own read model tables or value), with CatchUp; then
// Runner.Activate switches readers to it (Store.Active tells readers which
// version to use), and the old version's runner is stopped and its
// progress deleted (Store.Delete). Runner.Status reports the position,
// counts, lag, pending commits (when the source knows) and the last
// failure at any time; Hooks report each unit of work, retry, parked event
// and recovered failure as they happen, for metrics.
//
// # Poison events
//
// An event whose handler fails (an error or a panic) or that does not
// decode is handled under the runner's Policy: it is tried again with
// back-off, each try in a unit of work of its own, then the runner either
// stops with a *PoisonError (the default; everything before the event is
// kept) or parks the event with its error and goes on. Runner.Parked lists
// parked events; Replay applies one again, Discard drops it. Failures of
// the store or the source are not the event's fault: the runner backs off
// and goes on from its checkpoint, without counting them as attempts.
//
// # Beyond read models
//
// A Runner drives any Handler, of which *Projection is one. A process
// manager, turning events into commands, fits the same shape: it decides
// in Apply and derives each command's ID from the event's commit ID
// (eventsourcing.WithCommandID), so that a redelivered event cannot
// command twice.
package projection
