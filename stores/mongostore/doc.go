// Package mongo stores events and snapshots in MongoDB (driver
// go.mongodb.org/mongo-driver/v2), implementing eventsourcing.Backend (and,
// through eventsourcing.NewStore, eventsourcing.EventStore) and
// eventsourcing.SnapshotStore. It needs no transactions, no replica set and no
// read-modify-write operations, so it also runs on MongoDB-compatible servers
// with weaker guarantees (its tests run against FerretDB).
//
// # Construction
//
// NewBackend and NewStore take a *mongo.Client the application owns, plus a
// database and a collection name; closing the store does not disconnect the
// client. Open connects from a URI and owns its client: Close disconnects it.
// Construction ensures the required index exists (see EnsureIndexes): it
// creates it if missing, or, with WithoutIndexCreation, fails with
// ErrIndexMissing, so a store never runs without it. NewSnapshotStore needs
// no index besides _id and does no I/O.
//
// # Events collection
//
// Each commit (the events one command raised) is one document:
//
//	{
//	  _id:       "<aggregate type>/<key>/<last>",  // last as 19 digits, zero-padded
//	  aggregate: <string>,     // aggregate type
//	  key:       <string>,     // aggregate key
//	  first:     <int64>,      // sequence of the commit's first event (from 1)
//	  last:      <int64>,      // sequence of its last event
//	  time:      <date>,       // commit time, to the millisecond
//	  ns:        <int32>,      // nanoseconds within that millisecond (0-999999)
//	  meta:      [{k: <string>, v: <string>}, ...],  // the commit's metadata; absent if none
//	  events: [                // event i has sequence first+i
//	    {
//	      type: <string>,      // the registry's event type name
//	      data: <binary>,      // the event, as encoded by the registry's codec
//	      time: <date>, ns: <int32>,  // only if this event's time differs from the commit's
//	      meta: [...]                 // only if this event's metadata differ (may be empty)
//	    }, ...
//	  ]
//	}
//
// Event data is stored as BSON binary, byte for byte what the registry's codec
// produced, not as a BSON sub-document: the codec is pluggable (it need not
// produce JSON), and decoding goes from those bytes straight into the
// registered Go type, so int64 beyond 2^53, time.Time with nanoseconds and
// embedded structs survive exactly; a BSON re-encoding would lose some of
// that. Timestamps are a date plus the sub-millisecond nanoseconds, because a
// BSON date holds milliseconds only; the date stays readable and queryable
// by operators' tools. Metadata is an array of pairs rather than a
// sub-document because header names may contain '.' or start with '$',
// which servers refuse in field names.
//
// The collection needs one index besides _id; EnsureIndexes (called by
// NewBackend) creates it, and an operator can create it beforehand with
// their own tools (any name will do):
//
//	db.events.createIndex({aggregate: 1, key: 1, first: 1}, {unique: true, name: "stream_first"})
//
// An existing index with those keys counts only if it is unique, not
// partial and uses the simple collation. The collections themselves must use
// the simple (binary) collation, which is the default: under a
// case-insensitive default collation, _id ranges and uniqueness would mix
// streams whose keys differ only in case.
//
// # Atomic appends without transactions
//
// A commit is one insert of one document, so it is stored whole or not at
// all. Two writers appending after the same head build commits with the same
// first sequence: the unique index lets exactly one insert succeed, and the
// other gets a duplicate-key error, reported as eventsourcing.ErrConcurrency
// with nothing stored. (If both commits also end at the same sequence, _id
// collides first, with the same effect.) An Append whose expected sequence is
// not a commit boundary of the stream (ahead of the head, or inside a commit)
// would not collide with anything, so Append first checks, with a find by
// _id, that a commit ending at the expected sequence exists. That read is not
// a race: commits are never changed or removed, so once it exists it keeps
// existing, and the unique index settles any writer that appends after it
// at the same time. A new stream (expected 0) needs no check, and neither
// does a commit boundary the Backend has already seen: each Backend
// remembers, for a bounded number of streams, the last sequence of the
// latest commit it inserted or loaded (WithBoundaryCache), so the usual
// load-then-commit path is a single insert. Deleting commit documents out of
// band while a Backend runs can make what it remembers stale; turn the cache
// off with WithBoundaryCache(0) if anything does that.
//
// A commit whose document would exceed DefaultMaxCommitSize (16 MiB less
// 16 KiB of headroom; lower it with WithMaxCommitSize) is refused with an
// *eventsourcing.CommitTooLargeError before anything is sent.
//
// # Loads
//
// Load runs one find over the stream's _id range after the requested
// sequence (served by the _id index, in order) and reads it through a cursor,
// a batch at a time (WithBatchSize), so a long history is never held in
// memory at once. It can start inside a commit (after a snapshot taken
// mid-commit, say) and skips that commit's earlier events. A document that
// cannot be read as a commit (wrong field types, a missing events array, a
// count of events that does not match first and last...) yields an error
// matching eventsourcing.ErrCorruptStream, naming the document, and none of
// that commit's events; nothing stored is modified and other streams load as
// before. Data that the codec cannot decode is reported by the aggregate as an
// *eventsourcing.RecordError (also ErrCorruptStream).
//
// # Round trips
//
//	Backend.Append, new stream (expected 0)    1 insert
//	Backend.Append at a known boundary         1 insert
//	  (this Backend inserted or loaded the commit ending at expected)
//	Backend.Append, other expected > 0         1 find (by _id) + 1 insert;
//	                                           1 find if no commit ends there
//	Backend.Load                               1 find, + 1 getMore per further batch
//	Handle on an aggregate with no events      1 find + 1 insert
//	Handle on an existing aggregate            1 find (load) + 1 insert,
//	                                           + getMores for a long history
//	NewBackend                                 1 listIndexes (+ 1 createIndexes the first time)
//	SnapshotStore.Get                          1 find
//	SnapshotStore.Put                          1 find + 1 update (upsert) + 1 delete;
//	                                           1 find if a newer snapshot is stored
//	SnapshotStore.Delete                       1 delete
//
// eventsourcing.AggregateBase.Handle loads the aggregate's new commits, then
// appends at the last sequence loaded. That is a known boundary whenever the
// load read a commit, or when the Backend itself inserted or loaded the
// commit the aggregate's version ends at (and no later one since).
// Otherwise the append's check costs one more find: with
// WithBoundaryCache(0), when the stream was dropped from a full cache, or
// when the version came from elsewhere (a snapshot with no commit after it,
// in a Backend that never saw that commit).
//
// A server may add one empty getMore to report the end of a cursor whose last
// batch was full. With the snapshot middleware, a load reads only the commits
// after the snapshot.
//
// # Snapshots collection
//
// SnapshotStore keeps one document per (stream, sequence), in its own
// collection or in the events collection (the leading '/' of its _id keeps it
// apart from commits, whose _ids never start with one):
//
//	{
//	  _id:       "/<aggregate type>/<key>/<seq>",  // seq as 19 digits, zero-padded
//	  aggregate: <string>, key: <string>,
//	  seq:       <int64>,   // the last event the state covers
//	  version:   <int64>,   // schema version of the state's encoding
//	  state:     <binary>,  // the state, as encoded by the registry's codec
//	  time:      <date>, ns: <int32>  // when it was taken
//	}
//
// Get returns the document with the highest _id of the stream. Put inserts
// (or, for the same sequence, replaces) its document, then deletes the
// stream's older ones; it never updates a document of another sequence, so an
// older snapshot can never replace a newer one, even between racing writers
// on servers whose conditional updates are not atomic (FerretDB's are not).
//
// # Concurrency
//
// Backend and SnapshotStore are safe for concurrent use, and any number of
// them, in any number of processes, may share a collection.
package mongostore
