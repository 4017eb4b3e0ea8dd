// Package mongostore stores events and snapshots in MongoDB (driver
// go.mongodb.org/mongo-driver/v2). Its Backend implements backend.Backend
// and backend.Outbox (a transactional outbox: every commit carries a
// pending marker until a relay has published it); its SnapshotStore
// implements backend.SnapshotStore. Applications build their event store
// with eventsourcing.NewStore(b). The store needs no transactions, no
// replica set, no change streams and no read-modify-write operations, so it
// also runs on MongoDB-compatible servers with weaker guarantees (its tests
// run against FerretDB; see "What the tests cannot show" below). It needs
// MongoDB 4.2 or later (MarkPublished sends an update with an index hint).
//
// # Construction
//
// NewBackend takes a *mongo.Client the application owns, plus a database
// and a collection name; closing the Backend does not disconnect the
// client. Open connects from a URI and owns its client: Close disconnects
// it. Construction ensures the required indexes exist (see EnsureIndexes):
// it creates them if missing, or, with WithoutIndexCreation, fails with
// ErrIndexMissing, so a Backend never runs without them. NewSnapshotStore
// needs no index besides _id and does no I/O.
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
//	  cid:       <string>,     // the commit ID; absent in commits written before commit IDs
//	  pending:   <int64>,      // the outbox marker; absent once published (see Outbox)
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
// Event data is stored as BSON binary, byte for byte what the registry's
// codec produced, not as a BSON sub-document: the codec is pluggable (it
// need not produce JSON), and decoding goes from those bytes straight into
// the registered Go type, so int64 beyond 2^53, time.Time with nanoseconds
// and embedded structs survive exactly; a BSON re-encoding would lose some
// of that. Timestamps are a date plus the sub-millisecond nanoseconds,
// because a BSON date holds milliseconds only: every time from the zero
// time.Time (year 1) to the end of year 9999 comes back to the nanosecond,
// the Unix epoch and times before 1970 included, as an instant in UTC; the
// date stays readable and queryable by operators' tools. Metadata is an
// array of pairs rather than a sub-document because header names may
// contain '.' or start with '$', which servers refuse in field names; a
// header with an empty name, or a name or value that is not valid UTF-8,
// is refused before anything is sent (backend.CheckAppend), as BSON
// strings must be UTF-8.
//
// The collection needs two indexes besides _id; EnsureIndexes (called by
// NewBackend) creates them, and an operator can create them beforehand with
// their own tools (any names will do):
//
//	db.events.createIndex({aggregate: 1, key: 1, first: 1}, {unique: true, name: "stream_first"})
//	db.events.createIndex({pending: 1}, {name: "pending"})  // not with WithoutOutbox
//
// An existing index with those keys counts only if it has the same
// uniqueness, is not partial and uses the simple collation. The collections
// themselves must use the simple (binary) collation, which is the default:
// under a case-insensitive default collation, _id ranges and uniqueness
// would mix streams whose keys differ only in case. Collections made by a
// version of this package before the outbox lack the pending index:
// NewBackend creates it (WithoutIndexCreation reports it missing, and
// WithoutOutbox does without).
//
// # Atomic appends without transactions
//
// A commit is one insert of one document, so it is stored whole or not at
// all, together with its commit ID and its pending marker. Two writers
// appending after the same head build commits with the same first
// sequence: the unique index lets exactly one insert succeed, and the other
// gets a duplicate-key error, reported as a *backend.ConflictError
// (backend.ErrConcurrency) with nothing stored. (If both commits also end
// at the same sequence, _id collides first, with the same effect.) An Append
// whose expected sequence is not a commit boundary of the stream (ahead of
// the head, or inside a commit) would not collide with anything, so Append
// first checks, with a find by _id, that a commit ending at the expected
// sequence exists. That read is not a race: commits are never removed, and
// their identity never changes, so once it exists it keeps existing, and the
// unique index settles any writer that appends after it at the same time. A
// new stream (expected 0) needs no check, and neither does a commit boundary
// the Backend has already seen: each Backend remembers, for a bounded number
// of streams, the last sequence of the latest commit it inserted or loaded
// (WithBoundaryCache), so the usual load-then-commit path is a single
// insert. Deleting commit documents out of band while a Backend runs can
// make what it remembers stale; turn the cache off with WithBoundaryCache(0)
// if anything does that.
//
// A commit whose document would exceed DefaultMaxCommitSize (16 MiB less
// 16 KiB of headroom; lower it with WithMaxCommitSize) is refused with a
// *backend.CommitTooLargeError before anything is sent. A write whose answer
// is lost (a network error, a timeout, a context ended while the insert was
// in flight) returns an error matching backend.ErrUnknownOutcome: the commit
// may be stored, and a command repeated with the same command ID is
// recognised.
//
// # Loads
//
// Load runs one find over the stream's _id range after the requested
// sequence (served by the _id index, in order) and reads it through a
// cursor, a batch at a time (WithBatchSize), so a long history is never held
// in memory at once. It can start inside a commit (after a snapshot taken
// mid-commit, say) and skips that commit's earlier events. A document that
// cannot be read as a commit (wrong field types, a missing events array, a
// count of events that does not match first and last...) yields a
// *backend.CorruptError naming the stream and the document, and none of that
// commit's events; nothing stored is modified and other streams load as
// before. Data that the codec cannot decode is reported by the aggregate as
// an *eventsourcing.RecordError (also backend.ErrCorruptStream).
//
// # Outbox
//
// The commit document is its own outbox record: Append writes the pending
// marker in the commit's one insert, so no second write and no transaction
// can leave a commit stored but never published. The marker is an int64,
// the appending Backend's clock in Unix nanoseconds (strictly increasing per
// Backend), and the ordinary, non-unique index {pending: 1} holds the
// commits in marker order. A non-sparse index holds an entry for every
// document, null for those without the field: MarkPublished therefore
// removes the field ($unset) rather than setting another value, so that a
// published commit's entry is the smallest there is (the null key and the
// record id, compressed with its neighbours), and Pending asks for numbers
// only ($gte the smallest int64), which on the index reads exactly the
// pending entries, never the nulls. Sparse and partial indexes would drop
// the nulls altogether, but FerretDB ignores the one and refuses the other,
// so the store does not rely on them; an operator may replace the index by
// a sparse one on real MongoDB (the store accepts any non-unique,
// non-partial index on pending).
//
// Pending reads the index in marker order, then makes sure of each stream's
// order whatever the writers' clocks: a commit whose predecessor it did not
// read is yielded only once a find by _id shows that predecessor published
// (or, if it is still pending, after it). See Backend.Pending for the
// details, and WithoutOutbox to turn the marker off.
//
// What the outbox costs, in documents and index entries (round trips are
// in the next section):
//
//	Append           the same one insert; the document is 17 bytes larger and
//	                 the insert writes 3 index entries (_id, stream_first,
//	                 pending) instead of 2
//	Pending(n)       reads <= n entries of the pending index and their <= n
//	                 documents; then, for each stream whose first commit read
//	                 does not start the stream, one _id index lookup (the
//	                 predecessor's document is read only if it is still
//	                 pending)
//	MarkPublished    per commit still pending: one _id lookup and one document
//	                 update, which moves its pending index entry to null (and,
//	                 on a replica set, one oplog entry); per commit already
//	                 published, the lookup only
//
// BenchmarkOutboxMarker measures the difference in one run: Append at the
// head of a growing stream, alternated between a Backend with the marker
// and one WithoutOutbox, in wall time, client CPU and server CPU; and a
// relay's Pending and MarkPublished of 100 commits. Against FerretDB the
// marker's cost on Append was within the run-to-run noise (a few percent).
//
// # Round trips
//
//	Backend.Append, new stream (expected 0)    1 insert
//	Backend.Append at a known boundary         1 insert
//	  (this Backend inserted or loaded the commit ending at expected)
//	Backend.Append, other expected > 0         1 find (by _id) + 1 insert;
//	                                           1 find if no commit ends there
//	Backend.Load                               1 find, + 1 getMore per further batch
//	Backend.Pending                            1 find (+ getMores past 16 MiB),
//	                                           + 1 find by _id when a stream's first
//	                                           commit read has a predecessor not read
//	                                           (+ 1 per commit whose marker sorts
//	                                           below its predecessor's)
//	Backend.MarkPublished                      1 update per 1,000 refs; none for none
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
// A server may add one empty getMore to report the end of a cursor whose
// last batch was full. With the snapshot middleware, a load reads only the
// commits after the snapshot.
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
//	  first:     <int64>,   // -seq, for the events collection's unique index
//	  seq:       <int64>,   // the last event the state covers, 1 or more
//	  version:   <int64>,   // schema version of the state's encoding
//	  state:     <binary>,  // the state, as encoded by the registry's codec
//	  time:      <date>, ns: <int32>  // when it was taken
//	}
//
// In the events collection a snapshot document falls under the unique index
// on (aggregate, key, first). MongoDB indexes a missing field as null, so two
// snapshots of one stream without a first would collide there (a Put
// inserts the new snapshot before it deletes the older one); the negated
// sequence keeps every snapshot's entry distinct, and apart from every
// commit's (first >= 1). Snapshot documents written by earlier versions,
// without first, are replaced by the next Put as before.
//
// Get returns the document with the highest _id of the stream. Put inserts
// (or, for the same sequence, replaces) its document, then deletes the
// stream's older ones; it never updates a document of another sequence, so
// an older snapshot can never replace a newer one, even between racing
// writers on servers whose conditional updates are not atomic (FerretDB's
// are not). A snapshot at a sequence below 1 is refused with
// backend.ErrInvalidSnapshot before anything is sent.
//
// # Errors
//
// Errors wrap the driver's with %w and name the operation and the stream
// ("mongostore: append to Order/42: ..."); Pending, which reads every
// stream, names the operation only, and MarkPublished the first stream of
// its refs. An error of a done context still matches context.Canceled or
// context.DeadlineExceeded. After Close every call returns an error matching
// backend.ErrClosed.
//
// # What the tests cannot show
//
// The tests run against FerretDB 1.24, which differs from MongoDB where it
// matters here: it scans the whole collection for every query but an _id
// equality (so the index plans described above, and the order in which
// MarkPublished's hinted update walks the _id index, are MongoDB's, not
// measured), it ignores sparse indexes and refuses partial ones (the store
// uses neither), its conditional updates are not atomic (the store uses
// none), and its unique indexes do not treat a missing field as null (the
// tests check the stored documents against MongoDB's rule instead of
// relying on the server). Timings against FerretDB say little about
// MongoDB's; ratios measured in one run (the benchmarks) say more.
//
// # Concurrency
//
// Backend and SnapshotStore are safe for concurrent use, and any number of
// them, in any number of processes, may share a collection.
package mongostore
