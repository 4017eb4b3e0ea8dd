package natsjs

import (
	"bytes"
	"maps"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aggregatekit/eventsourcing/backend"
)

// FuzzDecodeCommit feeds DecodeCommit arbitrary headers and payloads: it
// must never panic, and whatever it accepts must be a valid commit that
// encodes back to a message decoding to the same commit.
func FuzzDecodeCommit(f *testing.F) {
	stream := backend.StreamID{AggregateType: "Order Line", Key: "k.1 é"}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	for _, c := range []backend.Commit{
		{Stream: stream, Expected: 2, ID: "c-1", Records: []backend.Record{
			{Stream: stream, Sequence: 3, EventType: "A", Data: []byte(`{"x":1}`), Timestamp: ts, CommitID: "c-1", Metadata: backend.Metadata{"k": "v"}},
			{Stream: stream, Sequence: 4, EventType: "Bé", Data: []byte{0, 1, 2}, Timestamp: ts, CommitID: "c-1"},
		}},
		{Stream: stream, Expected: 0, Records: []backend.Record{{Stream: stream, Sequence: 1, EventType: "A", Data: []byte{}, Timestamp: time.Time{}}}},
	} {
		h, data, err := encode(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(h.Get(HeaderEnvelope), h.Get(HeaderAggregateType), h.Get(HeaderKey), h.Get(HeaderFirstSequence),
			h.Get(HeaderLastSequence), h.Get(HeaderCommitID), h.Get(HeaderEventTypes), c.ID, data)
	}
	f.Add("1", "T", "k", "1", "1", "", "A", "", []byte(`{"v":1,"aggregate_type":"T","key":"k","events":[{"sequence":1,"type":"A","time":"0001-01-01T00:00:00Z","data":null}]}`))
	f.Add("1", "T", "k", "9223372036854775807", "9223372036854775807", "", "A", "", []byte(`{"v":1,"aggregate_type":"T","key":"k","events":[{"sequence":9223372036854775807,"type":"A","time":"2000-01-01T00:00:00Z","data":""},{"sequence":-9223372036854775808,"type":"A","time":"2000-01-01T00:00:00Z","data":""}]}`))
	f.Fuzz(func(t *testing.T, env, at, key, first, last, id, types, msgID string, data []byte) {
		h := natsgo.Header{}
		for k, v := range map[string]string{HeaderEnvelope: env, HeaderAggregateType: at, HeaderKey: key, HeaderFirstSequence: first,
			HeaderLastSequence: last, HeaderCommitID: id, HeaderEventTypes: types, jetstream.MsgIDHeader: msgID} {
			if v != "" {
				h.Set(k, v)
			}
		}
		c, err := DecodeCommit(h, data)
		if err != nil {
			return
		}
		if err := check(c); err != nil {
			t.Fatalf("DecodeCommit accepted an invalid commit: %v", err)
		}
		h2, data2, err := encode(c)
		if err != nil {
			t.Fatalf("an accepted commit does not encode: %v", err)
		}
		c2, err := DecodeCommit(h2, data2)
		if err != nil {
			t.Fatalf("an accepted commit does not round-trip: %v", err)
		}
		if c2.Stream != c.Stream || c2.Expected != c.Expected || c2.ID != c.ID || len(c2.Records) != len(c.Records) {
			t.Fatalf("round trip changed the commit: %+v, %+v", c, c2)
		}
		for i, r := range c.Records {
			r2 := c2.Records[i]
			if r2.Sequence != r.Sequence || r2.EventType != r.EventType || !bytes.Equal(r2.Data, r.Data) ||
				!r2.Timestamp.Equal(r.Timestamp) || !maps.Equal(r2.Metadata, r.Metadata) || r2.CommitID != r.CommitID {
				t.Fatalf("round trip changed record %d: %+v, %+v", i, r, r2)
			}
		}
	})
}
