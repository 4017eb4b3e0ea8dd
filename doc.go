// Package eventsourcing keeps the state of domain objects as an append-only
// log of events.
//
// An aggregate is a struct that embeds AggregateBase. Its Handle<Command>
// methods decide, from the current state, which events a command raises; its
// Replay<Event> methods apply an event to the state. AutomaticWireup finds
// them by reflection, once per Go type. Handle loads the aggregate's events
// from an EventStore, runs the handler, applies the new events and commits
// them atomically, retrying from fresh state when another writer got there
// first (optimistic concurrency).
//
// The pieces:
//
//   - EventRegistry maps stable stored type names to Go types, and holds the
//     Codec (JSON by default) that turns events into bytes and back into
//     typed values.
//   - EventStore is what aggregates use. NewStore builds one over a Backend,
//     the small byte-level contract a database implements (see the stores
//     directory: memory, MongoDB, DynamoDB).
//   - Middleware wraps an EventStore (snapshots, logging, publishing; see the
//     middleware directory); Wrap composes them in a documented order.
//   - SnapshotStore keeps one encoded state per stream for the snapshot
//     middleware.
//   - Errors match the exported Err* sentinels with errors.Is.
//
// Types are safe for concurrent use unless their documentation says
// otherwise; AggregateBase is not (use one instance per goroutine).
package eventsourcing
