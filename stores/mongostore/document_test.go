package mongostore

import (
	"bytes"
	"errors"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestDocIDOrder(t *testing.T) {
	s := backend.StreamID{AggregateType: "Order", Key: "k/1"}
	seqs := []int64{0, 1, 9, 10, 99, 100, 1 << 40, math.MaxInt64}
	ids := make([]string, len(seqs))
	for i, q := range seqs {
		ids[i] = docID(s, q)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatalf("ids not in sequence order: %q", ids)
	}
	if got, want := docID(s, 42), "Order/k/1/0000000000000000042"; got != want {
		t.Fatalf("docID = %q, want %q", got, want)
	}
}

func TestTimeSplitRoundTrip(t *testing.T) {
	for _, ts := range []time.Time{
		{},
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Unix(-1, 999_999_999),
		time.Date(1969, 12, 31, 23, 59, 59, 123_456_789, time.UTC),
		time.Date(2026, 11, 22, 1, 2, 3, 123_456_789, time.FixedZone("X", 3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
	} {
		ms, ns := splitTime(ts)
		got := joinTime(int64(ms), ns)
		if !got.Equal(ts) || got.Location() != time.UTC {
			t.Errorf("%v: round trip gave %v", ts, got)
		}
	}
}

func TestEncodeDecodeCommit(t *testing.T) {
	s := backend.StreamID{AggregateType: "Order", Key: "42"}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 987_654_321, time.UTC)
	md := backend.Metadata{"a.b": "1", "$c": "2", "nul": "x\x00y"}
	in := []backend.Record{
		{Stream: s, Sequence: 5, EventType: "A", Data: []byte{0, 1, 0xff}, Timestamp: t0, Metadata: md},
		{Stream: s, Sequence: 6, EventType: "B", Data: nil, Timestamp: t0, Metadata: md},
		{Stream: s, Sequence: 7, EventType: "C", Data: []byte("x"), Timestamp: t0.Add(time.Nanosecond)},
		{Stream: s, Sequence: 8, EventType: "D", Data: []byte("y"), Timestamp: t0, Metadata: backend.Metadata{"other": "v"}},
	}
	c := backend.Commit{Stream: s, Expected: 4, ID: "commit-1", Records: in}
	for i := range in {
		in[i].CommitID = c.ID
	}
	doc, err := encodeCommit(c, 42)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := intField(doc, fPending); err != nil || m != 42 {
		t.Fatalf("pending marker %d, %v", m, err)
	}
	unmarked, err := encodeCommit(c, 0)
	if err != nil || bson.Raw(unmarked).Lookup(fPending).Type != 0 {
		t.Fatalf("a commit without the marker has a pending field (%v)", err)
	}
	if d := len(doc) - len(unmarked); d != 17 { // the figure WithoutOutbox documents
		t.Fatalf("the marker adds %d bytes", d)
	}
	for _, after := range []int64{0, 4, 5, 6, 7, 8, 100} {
		out, err := decodeCommit(s, doc, after, nil)
		if err != nil {
			t.Fatalf("after %d: %v", after, err)
		}
		var want []backend.Record
		for _, r := range in {
			if r.Sequence > after {
				want = append(want, r)
			}
		}
		if len(out) != len(want) {
			t.Fatalf("after %d: %d records, want %d", after, len(out), len(want))
		}
		for i, g := range out {
			w := want[i]
			if g.Stream != w.Stream || g.Sequence != w.Sequence || g.EventType != w.EventType || !bytes.Equal(g.Data, w.Data) || g.CommitID != c.ID ||
				!g.Timestamp.Equal(w.Timestamp) || len(g.Metadata) != len(w.Metadata) {
				t.Fatalf("after %d, record %d: got %+v, want %+v", after, i, g, w)
			}
			for k, v := range w.Metadata {
				if g.Metadata[k] != v {
					t.Fatalf("record %d metadata[%q] = %q, want %q", i, k, g.Metadata[k], v)
				}
			}
		}
	}
	// The commit's shared timestamp and metadata are stored once.
	raw := bson.Raw(doc)
	evs, _ := raw.Lookup(fEvents).Array().Values()
	if _, err := evs[1].Document().LookupErr(fMeta); err == nil {
		t.Error("event sharing the commit's metadata stores its own copy")
	}
	if _, err := evs[2].Document().LookupErr(fTime); err != nil {
		t.Error("event with its own timestamp does not store it")
	}
	if m, err := evs[2].Document().LookupErr(fMeta); err != nil || len(m.Array()) != 5 { // empty array: 5 bytes
		t.Errorf("event without metadata in a commit with metadata: meta %v, %v", m, err)
	}
}

// Documents written before commit IDs and the pending marker (no cid, no
// pending, and no ns where the time had whole milliseconds) read as
// before: an empty commit ID, the time to the millisecond.
func TestDecodeOldCommitDocument(t *testing.T) {
	s := backend.StreamID{AggregateType: "Order", Key: "42"}
	at := time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC)
	doc, err := bson.Marshal(bson.D{
		{Key: fID, Value: docID(s, 2)}, {Key: fAggregate, Value: "Order"}, {Key: fKey, Value: "42"},
		{Key: fFirst, Value: int32(1)}, {Key: fLast, Value: int64(2)},
		{Key: fTime, Value: bson.NewDateTimeFromTime(at)},
		{Key: fEvents, Value: bson.A{
			bson.D{{Key: fType, Value: "A"}, {Key: fData, Value: []byte("a")}},
			bson.D{{Key: fType, Value: "B"}, {Key: fData, Value: []byte("b")}, {Key: fTime, Value: bson.DateTime(0)}, {Key: fNanos, Value: int32(7)}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeCommit(s, doc, 0, nil)
	if err != nil || len(out) != 2 {
		t.Fatalf("decode: %d records, %v", len(out), err)
	}
	if out[0].CommitID != "" || !out[0].Timestamp.Equal(at) || !out[1].Timestamp.Equal(time.Unix(0, 7)) || out[1].Timestamp.IsZero() {
		t.Fatalf("old document read as %+v", out)
	}
}

func TestDecodeCorruptCommit(t *testing.T) {
	s := backend.StreamID{AggregateType: "Order", Key: "42"}
	event := bson.D{{Key: fType, Value: "A"}, {Key: fData, Value: []byte("x")}}
	base := func(edit func(d bson.D) bson.D) []byte {
		d := bson.D{
			{Key: fID, Value: docID(s, 1)}, {Key: fAggregate, Value: "Order"}, {Key: fKey, Value: "42"},
			{Key: fFirst, Value: int64(1)}, {Key: fLast, Value: int64(1)},
			{Key: fTime, Value: bson.DateTime(0)}, {Key: fNanos, Value: int32(0)},
			{Key: fEvents, Value: bson.A{event}},
		}
		b, err := bson.Marshal(edit(d))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	set := func(key string, v any) func(bson.D) bson.D {
		return func(d bson.D) bson.D {
			for i := range d {
				if d[i].Key == key {
					if v == nil {
						return append(d[:i:i], d[i+1:]...)
					}
					d[i].Value = v
					return d
				}
			}
			return append(d, bson.E{Key: key, Value: v})
		}
	}
	if _, err := decodeCommit(s, base(func(d bson.D) bson.D { return d }), 0, nil); err != nil {
		t.Fatalf("valid document: %v", err)
	}
	var ce *backend.CorruptError
	if _, err := decodeCommit(s, base(set(fFirst, "1")), 0, nil); !errors.As(err, &ce) || ce.Stream != s || ce.Where == "" {
		t.Fatalf("damaged document: got %v, want a *backend.CorruptError naming the stream and the document", err)
	}
	cases := map[string]func(bson.D) bson.D{
		"first string":      set(fFirst, "1"),
		"first missing":     set(fFirst, nil),
		"last missing":      set(fLast, nil),
		"last before first": set(fLast, int64(0)),
		"first zero":        set(fFirst, int64(0)),
		"aggregate int":     set(fAggregate, 7),
		"other stream":      set(fKey, "43"),
		"events missing":    set(fEvents, nil),
		"events string":     set(fEvents, "x"),
		"too many events":   set(fEvents, bson.A{event, event}),
		"no events":         set(fEvents, bson.A{}),
		"event int":         set(fEvents, bson.A{int32(3)}),
		"event no type":     set(fEvents, bson.A{bson.D{{Key: fData, Value: []byte("x")}}}),
		"event empty type":  set(fEvents, bson.A{bson.D{{Key: fType, Value: ""}, {Key: fData, Value: []byte("x")}}}),
		"data string":       set(fEvents, bson.A{bson.D{{Key: fType, Value: "A"}, {Key: fData, Value: "x"}}}),
		"data missing":      set(fEvents, bson.A{bson.D{{Key: fType, Value: "A"}}}),
		"event time string": set(fEvents, bson.A{bson.D{{Key: fType, Value: "A"}, {Key: fData, Value: []byte("x")}, {Key: fTime, Value: "now"}}}),
		"event meta doc":    set(fEvents, bson.A{bson.D{{Key: fType, Value: "A"}, {Key: fData, Value: []byte("x")}, {Key: fMeta, Value: bson.D{{Key: "a", Value: "b"}}}}}),
		"time string":       set(fTime, "2026"),
		"time missing":      set(fTime, nil),
		"ns too big":        set(fNanos, int32(1_000_000)),
		"ns negative":       set(fNanos, int32(-1)),
		"ns int64":          set(fNanos, int64(5)),
		"meta string":       set(fMeta, "x"),
		"meta pair int":     set(fMeta, bson.A{int32(1)}),
		"meta pair no v":    set(fMeta, bson.A{bson.D{{Key: fMetaKey, Value: "a"}}}),
		"meta value int":    set(fMeta, bson.A{bson.D{{Key: fMetaKey, Value: "a"}, {Key: fMetaValue, Value: int32(1)}}}),
		"commit ID int":     set(fCommitID, int64(1)),
	}
	for name, edit := range cases {
		out, err := decodeCommit(s, base(edit), 0, nil)
		if !errors.Is(err, backend.ErrCorruptStream) {
			t.Errorf("%s: got %v, want ErrCorruptStream", name, err)
		}
		if len(out) != 0 {
			t.Errorf("%s: yielded %d records of a damaged commit", name, len(out))
		}
	}
	// Truncated or mangled BSON (which a server would not send) must not
	// panic either.
	good := base(func(d bson.D) bson.D { return d })
	for n := 0; n < len(good)-1; n++ {
		_, _ = decodeCommit(s, append([]byte(nil), good[:n]...), 0, nil)
		bad := append([]byte(nil), good...)
		bad[n] ^= 0xff
		_, _ = decodeCommit(s, bad, 0, nil)
	}
}
