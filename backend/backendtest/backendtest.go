// Package backendtest is the conformance suite of the store contracts in
// package backend, for store authors. Run it from the store's own tests,
// against the real database, under -race:
//
//	func TestConformance(t *testing.T) {
//		backendtest.RunBackend(t, func(t *testing.T) backend.Backend { return open(t) })
//		backendtest.RunSnapshotStore(t, func(t *testing.T) backend.SnapshotStore { return openSnapshots(t) })
//	}
//
// RunBackend checks the Backend contract; RunFeed, RunOutbox and
// RunCheckpoints check the optional capabilities; RunSnapshotStore checks a
// SnapshotStore. Each subtest gets a store from the factory and uses stream
// keys of its own, so the factory may return stores over one shared
// database; the suite closes every Backend it is given. Concurrency
// subtests run real goroutines against one stream.
package backendtest

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
)

// Option adjusts a Run function.
type Option func(*config)

type config struct {
	second     func(t *testing.T, first backend.Backend) backend.Backend
	eventual   time.Duration
	longStream int
}

// WithSecondInstance gives the suite a way to open a second Backend over the
// same storage as first (the same collection, table or file), as another
// process would. The suite then checks that two instances that have not seen
// each other's commits still refuse conflicting appends and read each
// other's commits. Without it those checks do not run.
func WithSecondInstance(open func(t *testing.T, first backend.Backend) backend.Backend) Option {
	return func(c *config) { c.second = open }
}

// WithEventualConsistency tells RunOutbox that Pending reads an index that
// lags behind writes (a DynamoDB global secondary index) by up to d: the
// suite then polls for up to d before it concludes that a commit is not
// pending.
func WithEventualConsistency(d time.Duration) Option {
	return func(c *config) { c.eventual = d }
}

// WithLongStream sets the number of events of the long-stream checks
// (default 10,000).
func WithLongStream(events int) Option {
	return func(c *config) { c.longStream = events }
}

func newConfig(opts []Option) config {
	c := config{longStream: 10000}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

var unique atomic.Int64

// uniqueStream returns a stream of type typ that no other test uses.
func uniqueStream(t *testing.T, typ string) backend.StreamID {
	return backend.StreamID{AggregateType: typ, Key: t.Name() + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatInt(unique.Add(1), 10)}
}

var commitIDs atomic.Int64

// newID returns a commit ID no other test uses.
func newID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), commitIDs.Add(1))
}

// testTime is a timestamp with nanoseconds, in UTC.
var testTime = time.Date(2026, 1, 2, 3, 4, 5, 987654321, time.UTC)

// commit returns a commit of n records of stream after expected, with
// payloads that name their batch, so that tests can check batches come back
// whole.
func commit(stream backend.StreamID, expected int64, n int, batch string) backend.Commit {
	c := backend.Commit{Stream: stream, Expected: expected, ID: newID(batch), Records: make([]backend.Record, n)}
	for i := range c.Records {
		c.Records[i] = backend.Record{
			Stream:    stream,
			Sequence:  expected + int64(i) + 1,
			EventType: "Added",
			Data:      []byte(fmt.Sprintf(`{"batch":%q,"index":%d,"size":%d}`, batch, i, n)),
			Timestamp: testTime,
			Metadata:  backend.Metadata{"batch": batch},
			CommitID:  c.ID,
		}
	}
	return c
}

// withID returns c with its commit ID (and its records') set to id.
func withID(c backend.Commit, id string) backend.Commit {
	c.ID = id
	recs := make([]backend.Record, len(c.Records))
	for i, r := range c.Records {
		r.CommitID = id
		recs[i] = r
	}
	c.Records = recs
	return c
}

func loadAll(t *testing.T, b backend.Backend, stream backend.StreamID, after int64) []backend.Record {
	t.Helper()
	var out []backend.Record
	for r, err := range b.Load(context.Background(), stream, after) {
		if err != nil {
			t.Fatalf("Load(%s, %d): %v", stream, after, err)
		}
		out = append(out, r)
	}
	return out
}

func head(t *testing.T, b backend.Backend, stream backend.StreamID) int64 {
	t.Helper()
	h, err := headOf(context.Background(), b, stream)
	if err != nil {
		t.Fatalf("Load(%s): %v", stream, err)
	}
	return h
}

// headOf returns the stream's last sequence; it may run on any goroutine.
func headOf(ctx context.Context, b backend.Backend, stream backend.StreamID) (int64, error) {
	var h int64
	for r, err := range b.Load(ctx, stream, 0) {
		if err != nil {
			return 0, err
		}
		h = r.Sequence
	}
	return h, nil
}

func checkSequence(t *testing.T, recs []backend.Record, after int64) {
	t.Helper()
	for i, r := range recs {
		if want := after + int64(i) + 1; r.Sequence != want {
			t.Fatalf("record %d has sequence %d, want %d", i, r.Sequence, want)
		}
	}
}

// deadline returns how long a test may still run, less a margin.
func deadline(t *testing.T) time.Duration {
	if d, ok := t.Deadline(); ok {
		return time.Until(d) * 9 / 10
	}
	return 10 * time.Minute
}
