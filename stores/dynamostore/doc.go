// Package dynamodb stores event streams and snapshots in Amazon DynamoDB,
// through a *dynamodb.Client of aws-sdk-go-v2 that the caller creates,
// configures (credentials, region, endpoint, retryer) and keeps owning.
//
//	client := dynamodb.NewFromConfig(awsCfg)           // the SDK's package
//	store, err := esdynamodb.NewStore(ctx, client, "events")
//	snaps, err := esdynamodb.NewSnapshotStore(ctx, client, "events")
//
// Backend implements eventsourcing.Backend, NewStore adapts it into an
// eventsourcing.EventStore, and SnapshotStore implements
// eventsourcing.SnapshotStore.
//
// # Table schema
//
// One key schema serves events and snapshots:
//
//	partition key  "stream"  type S   the stream: "AggregateType/Key" (eventsourcing.StreamID.String())
//	sort key       "seq"     type N   first sequence of the commit (1, 2, ...); 0 holds the stream's snapshot
//
// No secondary index is needed. CreateTable creates such a table (on-demand
// billing) and waits until it is ACTIVE; operators may instead create it with
// their own tools, with any billing mode, encryption or TTL settings. NewBackend
// and NewSnapshotStore check the key schema once (DescribeTable) and fail with
// a *SchemaError otherwise. Snapshots may share the event table or use a
// table of their own with the same schema.
//
// # Commit items
//
// Each commit (the events of one command) is ONE item, so it is stored whole
// or not at all:
//
//	stream  S            partition key
//	seq     N            sort key: sequence of the commit's first event
//	last    N            sequence of the commit's last event (seq + number of events - 1)
//	cid     B            16 random bytes identifying the commit (see Append)
//	ts      N            commit time in Unix nanoseconds (absent for the zero time)
//	md      M of S       commit metadata: correlation and causation IDs, user headers (absent if none)
//	ev      L of M       the events, in order; each a map:
//	    t   S            event type name (the registry's)
//	    d   B            event data, the codec's bytes, verbatim (absent when empty)
//	    ts  N            the event's own time, only if it differs from the commit's
//	    md  M of S       the event's own metadata, only if it differs from the commit's
//
// Event data is stored as binary, never converted to a DynamoDB map, so
// numbers keep full 64-bit precision and any codec works; times keep
// nanoseconds.
//
// # Appends and concurrency
//
// Append writes the commit item with PutItem conditional on
// attribute_not_exists(stream), keyed by (stream, expected+1). Commit items
// tile a stream's sequence numbers without gaps, so every writer that appends
// after the same head targets the same key: exactly one put succeeds, the
// others fail their condition and return an error matching
// eventsourcing.ErrConcurrency, having stored nothing. No transactions and no
// counters are involved. An expected sequence that is not the end of a
// commit (inside a commit, or ahead of the head) would not collide, so
// Append first checks it: for free when it is 0 or a commit boundary the
// Backend has already seen (a load or an append of its own told it; see
// WithBoundaryCache), and with one strongly consistent Query for the head
// otherwise.
//
// If the SDK's retryer resends a put whose first attempt succeeded but whose
// response was lost, the retry fails its condition against the item the
// first attempt wrote. Append recognises its own item by the commit ID (one
// GetItem, only after a failed condition) and reports success, so a command
// is never applied twice because of a network hiccup.
//
// # Commit size
//
// DynamoDB items are limited to 400 KB, counting attribute names and values.
// Append computes the item's size the way DynamoDB does (an upper bound) and
// rejects a commit above MaxCommitSize (400 KB less 1 KB of headroom) with an
// *eventsourcing.CommitTooLargeError, matching eventsourcing.ErrCommitTooLarge,
// before anything is written. To store more, split the work into several
// commands, each committing part of the events, or keep large payloads
// elsewhere (Amazon S3, a blob store) and put a reference in the event.
//
// # Loads
//
// Load reads a stream with strongly consistent Queries on its partition, in
// ascending sort key order, following LastEvaluatedKey page by page, and
// yields records as it goes: a long history is never held in memory at once.
// Loading after a sequence starts the Query at that sequence + 1; if the
// sequence falls inside a commit (a snapshot taken mid-commit, say), one more
// Query fetches that commit, whose earlier events are skipped.
//
// Stored items are validated as they are decoded: a wrong attribute type, a
// missing attribute or an event count that does not match the item's range
// yields a *CorruptItemError (matching eventsourcing.ErrCorruptStream) and
// leaves the data untouched; other streams are unaffected.
//
// # Round trips
//
//	NewBackend, NewSnapshotStore          1 DescribeTable
//	Backend.Append (usual case)           1 PutItem
//	  expected not a known boundary       +1 Query (Limit 1, keys only)
//	  condition failed                    +1 GetItem (commit ID only)
//	Backend.Load                          1 Query per page (1 MB, or WithQueryLimit items)
//	  after inside a commit, not known    +1 Query (Limit 1)
//	SnapshotStore.Get / Put / Delete      1 GetItem / PutItem / DeleteItem
//
// So a command on an aggregate (eventsourcing.AggregateBase.Handle: load, then
// commit) costs one Query per page of new events plus one PutItem; with the
// snapshot middleware, one GetItem more, and a PutItem when a snapshot is
// due. A conflict costs the failed PutItem, its GetItem, and the retry.
//
// # Snapshot items
//
// A SnapshotStore keeps one item per stream at sort key 0:
//
//	stream  S   partition key
//	seq     N   0
//	at      N   the sequence the snapshot covers
//	ver     N   schema version of the state
//	state   B   the encoded state (absent when empty)
//	ts      N   when it was taken, Unix nanoseconds (absent for the zero time)
//
// Put is conditional on attribute_not_exists(stream) OR at <= the new
// sequence, so an older snapshot never replaces a newer one.
//
// # Errors
//
// Service errors (throttling, internal errors, an unreachable endpoint) come
// back after the client's retryer has given up, wrapped with %w: errors.As
// finds the SDK's error types (for example *types.ProvisionedThroughputExceededException
// or smithy.APIError), and errors.Is finds context.Canceled or
// context.DeadlineExceeded when ctx ended the call.
package dynamodb
