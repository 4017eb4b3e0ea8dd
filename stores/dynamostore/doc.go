// Package dynamostore stores event streams and snapshots in Amazon DynamoDB,
// through a *dynamodb.Client of aws-sdk-go-v2 that the caller creates,
// configures (credentials, region, endpoint, retryer) and keeps owning.
//
//	client := dynamodb.NewFromConfig(awsCfg)            // the SDK's package
//	b, err := dynamostore.NewBackend(ctx, client, "events")
//	store := eventsourcing.NewStore(b)
//	snaps, err := dynamostore.NewSnapshotStore(ctx, client, "events")
//
// Backend implements backend.Backend and backend.Outbox (see Pending);
// SnapshotStore implements backend.SnapshotStore. LocalClient makes a client
// for DynamoDB Local, dynalite and tests. Every type is safe for concurrent
// use.
//
// # Table layout
//
// One key schema serves events and snapshots:
//
//	partition key  "stream"  type S   the stream: "AggregateType/Key" (StreamID.String())
//	sort key       "seq"     type N   first sequence of the commit (1, 2, ...); 0 holds the stream's snapshot
//
// and one sparse global secondary index lists the commits not yet published
// (the outbox):
//
//	index "outbox"  partition key "ob" (N), sort key "obt" (N), projection KEYS_ONLY
//
// CreateTable creates such a table (on-demand billing) and waits until it is
// ACTIVE; operators may instead create it with their own tools, with any
// billing mode, encryption or TTL settings. NewBackend and NewSnapshotStore
// check the layout once (DescribeTable) and fail with a *SchemaError
// otherwise. Snapshots may share the event table or use a table of their
// own with the same key schema (which needs no index).
//
// A table made by an earlier version of this package has no outbox index.
// NewBackend refuses it with a *SchemaError saying so, unless the backend is
// opened WithoutOutbox (the application then does not relay from the
// store). To add the index (DynamoDB builds it online; commits written before
// carry no marker and are not pending):
//
//	aws dynamodb update-table --table-name events \
//	  --attribute-definitions AttributeName=ob,AttributeType=N AttributeName=obt,AttributeType=N \
//	  --global-secondary-index-updates \
//	  '[{"Create":{"IndexName":"outbox","KeySchema":[{"AttributeName":"ob","KeyType":"HASH"},{"AttributeName":"obt","KeyType":"RANGE"}],"Projection":{"ProjectionType":"KEYS_ONLY"}}}]'
//
// (with provisioned billing, add the index's ProvisionedThroughput). Wait
// until the index is ACTIVE before running a relay.
//
// # Commit items
//
// Each commit (the events of one command) is ONE item, so it is stored whole
// or not at all:
//
//	stream  S            partition key
//	seq     N            sort key: sequence of the commit's first event
//	last    N            sequence of the commit's last event (seq + number of events - 1)
//	id      S            the commit ID (backend.Commit.ID)
//	tn      N            commit time: nanoseconds since the Unix epoch, any sign and size (see Times)
//	md      M of S       commit metadata: correlation and causation IDs, user headers (absent if none)
//	ob      N            outbox marker, while the commit is pending: its shard, 0 to 3 (a hash of the stream)
//	obt     N            outbox sort key: the appending backend's clock, Unix nanoseconds
//	ev      L of M       the events, in order; each a map:
//	    t   S            event type name (the registry's)
//	    d   B            event data, the codec's bytes, verbatim (absent when empty)
//	    tn  N            the event's own time, only if it differs from the commit's
//	    md  M of S       the event's own metadata, only if it differs from the commit's
//
// Event data is stored as binary, never converted to a DynamoDB map, so
// numbers keep full 64-bit precision and any codec works.
//
// Items written before commit IDs (with a random binary "cid" instead of
// "id", and times in "ts") still load: their records have CommitID "", they
// are never pending, and new commits follow them.
//
// # Times
//
// Times are kept to the nanosecond over years 1 to 9999, the range
// backend.CheckAppend accepts: a DynamoDB number of up to 21 digits counting
// nanoseconds from the Unix epoch, so the epoch is 0, times before 1970 are
// negative and the zero time.Time (year 1) is -62135596800000000000; the
// two never meet. They load in UTC. Earlier versions stored Unix nanoseconds
// in an int64 ("ts": years 1678 to 2262 only, the zero time left out at item
// level and written as 0 for an event, where it could not be told from the
// epoch); such items load as they were written, an event-level 0 as the
// zero time.
//
// # Appends and concurrency
//
// Append writes the commit item with PutItem conditional on
// attribute_not_exists(stream), keyed by (stream, expected+1). Commit items
// tile a stream's sequence numbers without gaps, so every writer that appends
// after the same head targets the same key: exactly one put succeeds, the
// others fail their condition and return a *backend.ConflictError (matching
// backend.ErrConcurrency), having stored nothing. No transactions and no
// counters are involved. An expected sequence that is not the end of a
// commit (inside a commit, or ahead of the head) would not collide, so
// Append first checks it: for free when it is 0 or a commit boundary the
// Backend has already seen (a load or an append of its own told it; see
// WithBoundaryCache), and with one strongly consistent Query for the head
// otherwise.
//
// If the SDK's retryer resends a put whose first attempt succeeded but whose
// response was lost, the retry fails its condition against the item the
// first attempt wrote. Append recognises its own item by the commit ID and
// last sequence (one GetItem, only after a failed condition) and reports
// success, so a command is never applied twice because of a network hiccup.
// A network error, a timeout or a server fault (HTTP 5xx, which DynamoDB
// documents as possibly applied) once the retryer gives up returns an error
// matching backend.ErrUnknownOutcome; a refusal (HTTP 4xx) stored nothing.
//
// Append first checks the commit with backend.CheckAppend and sends nothing
// if it fails: metadata with an empty key (which real DynamoDB refuses in a
// map, and dynalite accepts) or invalid UTF-8 is refused with
// backend.ErrInvalidMetadata on every store alike.
//
// # Commit size
//
// DynamoDB items are limited to 400 KB, counting attribute names and values.
// Append computes the item's size the way DynamoDB does (an upper bound) and
// rejects a commit above MaxCommitSize (400 KB less 1 KB of headroom) with a
// *backend.CommitTooLargeError, matching backend.ErrCommitTooLarge, before
// anything is written. To store more, split the work into several
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
// yields a *backend.CorruptError (matching backend.ErrCorruptStream) naming
// the stream and the item, and leaves the data untouched; other streams are
// unaffected.
//
// # The outbox
//
// Every commit item is written with the outbox marker ("ob", "obt") in the
// same PutItem as its events: the item itself is the outbox record, with no
// second write and no transaction. The sparse index lists exactly the items
// that carry the marker. Pending reads the index's four shards (by the
// appending clocks), checks the listed items against the table with a
// strongly consistent BatchGetItem, and, per stream, that the commit before
// the first one it yields is no longer pending (walking back when it is), so
// that it never yields a commit while an earlier one of its stream is
// pending and not yielded, even though the index of real DynamoDB is
// eventually consistent and the appending clocks may disagree.
// MarkPublished removes the marker with a conditional UpdateItem per
// commit, which also removes the commit from the index. DynamoDB Streams
// are not used.
//
// Costs on DynamoDB: the marker adds about 20 bytes to each commit item and
// one write to the index per append (the index entry is keys only: 1 write
// unit) and per MarkPublished, whose UpdateItem is billed by the size of the
// whole commit item (1 KB write units). Each shard is one partition of the
// index, so index writes spread over four partitions (a partition takes
// about 1,000 write units a second; a throttled index throttles the table's
// writes too). The round trips and read costs of Pending are in its
// documentation. WithoutOutbox turns the marker off.
//
// # Round trips
//
//	NewBackend, NewSnapshotStore          1 DescribeTable
//	Backend.Append (usual case)           1 PutItem
//	  expected not a known boundary       +1 Query (Limit 1, keys only)
//	  condition failed                    +1 GetItem (commit ID and last sequence only)
//	Backend.Load                          1 Query per page (1 MB, or WithQueryLimit items)
//	  after inside a commit, not known    +1 Query (Limit 1)
//	Backend.Pending                       4 Queries of the index (at once) + 1 BatchGetItem per 100 commits
//	  previous commit not known published +1 Query (Limit 1) per stream, +1 per pending commit walked back over
//	Backend.MarkPublished                 1 UpdateItem per commit (up to 8 streams at once)
//	SnapshotStore.Get / Put / Delete      1 GetItem / PutItem / DeleteItem
//
// So a command on an aggregate (eventsourcing.AggregateBase.Handle: load, then
// commit) costs one Query per page of new events plus one PutItem; with the
// snapshot middleware, one GetItem more when the aggregate is not loaded yet,
// and a PutItem when a snapshot is due. A conflict costs the failed PutItem, its GetItem, and the retry.
//
// # Snapshot items
//
// A SnapshotStore keeps one item per stream at sort key 0:
//
//	stream  S   partition key
//	seq     N   0
//	at      N   the sequence the snapshot covers (1 or more)
//	ver     N   schema version of the state
//	state   B   the encoded state (absent when empty)
//	tn      N   when it was taken, as a commit's time (earlier versions: "ts", as for commits)
//
// Put checks the snapshot with backend.CheckSnapshot (a sequence below 1 is
// refused with backend.ErrInvalidSnapshot) and is conditional on
// attribute_not_exists(stream) OR at <= the new sequence, so an older
// snapshot never replaces a newer one.
//
// # Errors
//
// Service errors (throttling, internal errors, an unreachable endpoint) come
// back after the client's retryer has given up, wrapped with %w and naming
// the stream and the operation: errors.As finds the SDK's error types (for
// example *types.ProvisionedThroughputExceededException or smithy.APIError),
// and errors.Is finds context.Canceled or context.DeadlineExceeded when ctx
// ended the call.
//
// # What the tests could not check
//
// The tests run against dynalite 4.0.0, which behaves like DynamoDB for
// everything above with these exceptions: its global secondary indexes are
// updated in the same write as the table (real ones lag, which the tests
// simulate by hiding items from the index); it accepts an empty map key
// (real DynamoDB refuses it: Append never sends one); it ignores the
// creation of an index on an existing table (UpdateTable), so adding the
// outbox index to an old table is documented above but not tested; and it
// does not bill capacity, so the costs given here come from DynamoDB's
// documentation, not from measurement.
package dynamostore
