// Package backend is the contract between the eventsourcing toolkit and the
// databases that keep its events, in bytes: the role database/sql/driver
// plays for database/sql. A store (package stores/memory, and the MongoDB,
// DynamoDB, PostgreSQL, SQLite and Redis modules) implements the interfaces
// here and imports nothing else of the toolkit; applications use the root
// package eventsourcing, which re-exports the names they need (StreamID,
// Record, Snapshot, the error sentinels) and adapts a Backend with
// eventsourcing.NewStore.
//
// # The contract
//
//   - Backend appends commits and loads streams. A Commit is one command's
//     events for one stream, numbered from Expected+1, with an ID unique
//     across the store; it is stored whole or not at all, and only if the
//     stream's head is still Expected (optimistic concurrency).
//   - SnapshotStore keeps one encoded state per stream and never lets an
//     older snapshot replace a newer one.
//   - Optional capabilities, discovered with a type assertion as
//     database/sql does with optional driver interfaces: Feed (every commit
//     of every stream in one order that never skips), Outbox (commits not
//     yet handed to a publisher, marked in the commit's own atomic write)
//     and Checkpoints (named feed positions kept next to the data).
//   - Outcomes are errors matching the sentinels of this package with
//     errors.Is: ErrConcurrency (through a *ConflictError), ErrUnknownOutcome,
//     ErrClosed, ErrCommitTooLarge (*CommitTooLargeError), ErrCorruptStream
//     (*CorruptError), ErrInvalidAppend, ErrInvalidStream, ErrInvalidMetadata,
//     ErrSnapshotNotFound, ErrInvalidSnapshot, ErrInvalidPosition.
//
// # Writing a store
//
// The conformance suites in package backend/backendtest check every point
// below that a test can reach; run them from your store's tests, under
// -race, against the real database.
//
//  1. Append calls CheckAppend first and writes nothing when it fails.
//  2. A commit is one atomic write: one document, item, row transaction or
//     locked slice. Never a loop of writes that a crash can cut in half.
//  3. The concurrency check is enforced by the database (a unique index, a
//     conditional write, a lock held across the check and the write), not
//     by a read followed by a write. Of any number of writers racing from
//     the same head, exactly one wins; the others get a *ConflictError and
//     store nothing. An Expected ahead of the head, or inside an earlier
//     commit, is a conflict too.
//  4. Keep exactly what CheckAppend accepts: event data byte for byte,
//     timestamps to the nanosecond over years 1 to 9999 (the Unix epoch and
//     times before 1970 included), metadata keys and values as given, and
//     the commit ID. Records come back with their Stream, Sequence and
//     CommitID set.
//  5. Tell a refused write from a lost answer: a write the database refused
//     stored nothing and returns that error; a network error, a timeout or a
//     server fault after the write was sent returns an error matching
//     ErrUnknownOutcome, never ErrConcurrency and never success.
//  6. A commit too large for one atomic write is refused with a
//     *CommitTooLargeError before anything is sent.
//  7. Load streams: a cursor or pages, never the whole history in memory.
//     It honours ctx between records, not only before the first.
//  8. Data the store cannot read as what it writes yields a *CorruptError
//     naming the stream and the damaged unit, and never a panic; nothing is
//     modified and other streams load as before.
//  9. Errors name the stream and the operation and wrap the database's
//     error with %w; context errors still match context.Canceled and
//     context.DeadlineExceeded.
//  10. After Close every call returns an error matching ErrClosed; Close is
//     idempotent and closes only what the store opened itself.
//  11. Design for the real database, not the emulator the tests run
//     against, and say in the package documentation what the tests could not
//     check.
//  12. Document the round trips of each operation.
package backend
