// Package eventsourcing keeps the state of domain objects as an append-only
// log of events.
//
// An aggregate is a struct that embeds AggregateBase. Its Handle<Command>
// methods decide, from the current state, which events a command raises; its
// Replay<Event> methods apply an event to the state. AutomaticWireup finds
// them by reflection, once per Go type. Handle loads the aggregate's events
// from an EventStore, runs the handler, commits the new events atomically and
// applies them, retrying from fresh state when another writer got there first
// (optimistic concurrency). With a command ID (WithCommandID) a command
// applies at most once, however often it is repeated.
//
// # Layers
//
// Data goes down as values and comes up as iterators; each layer imports only
// the ones below it:
//
//	your application
//	    │  Handle(ctx, cmd)             package eventsourcing: AggregateBase, wire-up,
//	    ▼                                registry and codec, EventStore, Wrap, NewStore
//	middleware (snapshot, logging,      Refresh(ctx, Loader) / Commit(ctx, Commit)
//	publish, telemetry)                  wraps the commit value and the load
//	    │
//	    ▼  NewStore(backend)            the one adapter between the two contracts
//	backend.Backend                     package backend: bytes, commit IDs, sentinels;
//	    │                                optional Feed, Outbox, Checkpoints
//	    ▼
//	stores: memory, mongostore, dynamostore, pgstore, sqlitestore, redisstore (snapshots)
//
// Beside them, the read side reads committed events back out: package relay
// hands them to a broker (NATS JetStream, or the in-process publish.Bus) at
// least once and in order, and package projection keeps read models current
// from a store's Feed or from JetStream, with checkpoints and rebuilds.
//
// The pieces of this package:
//
//   - EventRegistry maps stable stored type names to Go types, and holds the
//     Codec (JSON by default) that turns events into bytes and back into typed
//     values.
//   - EventStore is what aggregates use; NewStore builds one over a Backend
//     (the byte-level contract of package backend that databases implement).
//     Its Commit receives a Commit value: the stream, the expected head, the
//     commit ID, the encoded records, the decoded events and (on demand) the
//     state after them. Its Refresh calls back into the aggregate through a
//     Loader, the one callback of the design.
//   - Middleware wraps an EventStore; Wrap composes them in a documented order.
//   - Names users need from package backend (StreamID, Record, Snapshot, the
//     error sentinels) are re-exported here, so applications import this
//     package and a store, never backend.
//   - Errors match the exported Err* sentinels with errors.Is, with typed
//     details through errors.As.
//
// # Where new code goes
//
//   - A database: a store package under stores/, in a module of its own if it
//     needs an SDK, implementing backend.Backend (and Feed, Outbox, Checkpoints,
//     SnapshotStore where it can), importing package backend only, and passing
//     backend/backendtest and storetest (see the checklist in package backend).
//   - Behaviour around every load or commit: a Middleware under middleware/,
//     importing this package and backend, never a store; it must pass storetest.
//   - Reading committed events: relay (to brokers) and projection (read models).
//   - Aggregate behaviour (commands, replays, retries, idempotency): this
//     package, aggregate.go (state and options), command.go (the command loop),
//     wireup.go (reflective dispatch, cached per type).
//
// Types are safe for concurrent use unless their documentation says
// otherwise; AggregateBase is not (use one instance per goroutine: a second
// concurrent call fails with ErrConcurrentUse).
package eventsourcing
