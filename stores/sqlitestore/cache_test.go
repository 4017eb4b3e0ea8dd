package sqlitestore

import (
	"fmt"
	"testing"

	"github.com/aggregatekit/eventsourcing/backend"
)

func recs(s backend.StreamID, from, to int64, size int) []backend.Record {
	var out []backend.Record
	for q := from; q <= to; q++ {
		out = append(out, backend.Record{Stream: s, Sequence: q, Data: make([]byte, size)})
	}
	return out
}

func TestRecordCache(t *testing.T) {
	a, b := backend.StreamID{AggregateType: "A", Key: "a"}, backend.StreamID{AggregateType: "A", Key: "b"}
	one := recordSize(recs(a, 1, 1, 100)[0])
	c := recordCache{limit: 40 * one}

	c.add(a, 0, recs(a, 1, 3, 100))
	c.add(a, 3, recs(a, 4, 5, 100)) // continues the prefix
	if got := c.get(a); len(got) != 5 || got[4].Sequence != 5 {
		t.Fatalf("after two batches: %d records", len(got))
	}
	c.add(a, 2, recs(a, 3, 6, 100)) // not a continuation: ignored
	c.add(a, 7, recs(a, 8, 9, 100)) // a gap: ignored
	if got := c.get(a); len(got) != 5 {
		t.Fatalf("after batches that do not continue the prefix: %d records", len(got))
	}
	c.add(b, 4, recs(b, 5, 6, 100)) // not from the start: not kept
	if got := c.get(b); got != nil {
		t.Fatalf("a stream not loaded from its start is cached: %d records", len(got))
	}
	bad := recs(a, 6, 8, 100)
	bad[1].Sequence = 9
	c.add(a, 5, bad) // sequences that skip: the stream is dropped
	if got := c.get(a); got != nil || c.size != 0 {
		t.Fatalf("after a batch with a gap: %d records cached, size %d", len(got), c.size)
	}

	// A stream over a quarter of the cache is not kept.
	c.add(a, 0, recs(a, 1, 11, 100))
	if got := c.get(a); got != nil || c.size != 0 {
		t.Fatalf("a stream of 11/40 of the cache is kept (%d records, size %d)", len(got), c.size)
	}
	// Least recently used streams go first.
	for i := 0; i < 5; i++ {
		s := backend.StreamID{AggregateType: "L", Key: fmt.Sprint(i)}
		c.add(s, 0, recs(s, 1, 9, 100))
		c.get(backend.StreamID{AggregateType: "L", Key: "0"}) // keep 0 in use
	}
	if c.size > c.limit {
		t.Fatalf("the cache holds %d bytes, over its limit of %d", c.size, c.limit)
	}
	if c.get(backend.StreamID{AggregateType: "L", Key: "0"}) == nil || c.get(backend.StreamID{AggregateType: "L", Key: "4"}) == nil {
		t.Fatal("the stream used most recently, or the newest, was dropped")
	}
	if c.get(backend.StreamID{AggregateType: "L", Key: "1"}) != nil {
		t.Fatal("the least recently used stream was kept")
	}
	// Readers' slices are not changed by later additions.
	s := backend.StreamID{AggregateType: "L", Key: "0"}
	held := c.get(s)
	c.add(s, 9, recs(s, 10, 10, 100))
	if len(held) != 9 || cap(held) != 9 {
		t.Fatalf("a reader's slice changed: len %d cap %d", len(held), cap(held))
	}

	off := recordCache{}
	off.add(a, 0, recs(a, 1, 2, 1))
	if off.get(a) != nil {
		t.Fatal("a disabled cache keeps records")
	}
}
