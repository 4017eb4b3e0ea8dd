package memory

import (
	"context"
	"errors"
	"hash/maphash"
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
	if st, _ := b.stream(s); len(b.streams) != 1 || st == nil || st.head != 3 || len(st.commits) != 3 {
		t.Fatalf("after three appends: %d streams, %+v", len(b.streams), st)
	}
}

// Streams whose IDs hash alike share a map entry in a chain: a lookup finds
// only its own stream, and adding one keeps the others.
func TestStreamsWithCollidingHashes(t *testing.T) {
	b := NewBackend()
	one := backend.StreamID{AggregateType: "Account", Key: "1"}
	two := backend.StreamID{AggregateType: "Order", Key: "1"}
	s1, err := b.create(one)
	if err != nil {
		t.Fatal(err)
	}
	// Pretend that one hashes as two does.
	delete(b.streams, maphash.Comparable(b.seed, one))
	h := maphash.Comparable(b.seed, two)
	b.streams[h] = s1
	if s, _ := b.stream(two); s != nil {
		t.Fatalf("the lookup of %v found the stream of %v", two, s.id)
	}
	s2, err := b.create(two)
	if err != nil || s2 == s1 || s2.id != two || s2.next != s1 || b.streams[h] != s2 {
		t.Fatalf("create(%v) = %p, %v with %p in the entry, want a new stream chained before %p", two, s2, err, b.streams[h], s1)
	}
	if s, _ := b.stream(two); s != s2 {
		t.Fatalf("stream(%v) = %p, want %p", two, s, s2)
	}
	if s, _ := b.create(two); s != s2 {
		t.Fatalf("create(%v) again = %p, want %p", two, s, s2)
	}
	b.streams[h] = s2.next // pretend two hashes as one does: its stream is now second in the chain
	s1.next = s2
	s2.next = nil
	if s, _ := b.stream(two); s != s2 {
		t.Fatalf("stream(%v) second in the chain = %p, want %p", two, s, s2)
	}
	if s, _ := b.create(two); s != s2 || len(b.streams) != 1 {
		t.Fatalf("create(%v) second in the chain = %p (%d entries), want %p", two, s, len(b.streams), s2)
	}
}
