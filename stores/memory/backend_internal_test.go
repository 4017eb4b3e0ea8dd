package memory

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
)

// An append expecting records in a stream that has none is refused
// without adding the stream; the first append expecting it new adds it.
func TestAppendAddsStreamOnlyWhenExpectedNew(t *testing.T) {
	ctx := context.Background()
	b := NewBackend()
	s := backend.StreamID{AggregateType: "Account", Key: "k"}
	c := func(expected int64) backend.Commit {
		return backend.Commit{Stream: s, Expected: expected, ID: "c", Records: []backend.Record{{Stream: s,
			Sequence: expected + 1, EventType: "Deposited", Timestamp: time.Now(), CommitID: "c"}}}
	}
	var ce *backend.ConflictError
	if err := b.Append(ctx, c(3)); !errors.As(err, &ce) || ce.Head != 0 || ce.Expected != 3 {
		t.Fatalf("append after 3 to a missing stream: %v, want a conflict at head 0", err)
	}
	if len(b.streams) != 0 {
		t.Fatalf("the refused append added %d streams", len(b.streams))
	}
	for i := int64(0); i < 3; i++ {
		if err := b.Append(ctx, c(i)); err != nil {
			t.Fatalf("append after %d: %v", i, err)
		}
	}
	if err := b.Append(ctx, c(0)); !errors.As(err, &ce) || ce.Head != 3 {
		t.Fatalf("append expecting a new stream at head 3: %v, want a conflict at head 3", err)
	}
	if st := b.streams[s]; len(b.streams) != 1 || st == nil || st.head != 3 || len(st.commits) != 3 {
		t.Fatalf("after three appends: %d streams, %+v", len(b.streams), st)
	}
}
