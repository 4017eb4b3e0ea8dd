package backend_test

import (
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
)

// BenchmarkCheckAppend checks the commit of one event to a new stream, as
// an aggregate's first command writes it.
func BenchmarkCheckAppend(b *testing.B) {
	s := backend.StreamID{AggregateType: "Account", Key: "3f2b8c1e-9d4a-4e6b-8a7c-5d1e2f3a4b5c"}
	id := "0195f7c2-3b7a-7cc3-9a8e-0d4f6e2b1a90"
	c := backend.Commit{Stream: s, ID: id, Records: []backend.Record{{Stream: s, Sequence: 1, EventType: "Deposited",
		Data: []byte(`{"Amount":1,"Reference":"benchmark"}`), Timestamp: time.Now().UTC(), CommitID: id}}}
	b.ReportAllocs()
	for b.Loop() {
		if err := backend.CheckAppend(c); err != nil {
			b.Fatal(err)
		}
	}
}
