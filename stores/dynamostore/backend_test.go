package dynamostore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aggregatekit/eventsourcing/backend"
)

var bg = context.Background()

func streamOf(t testing.TB) backend.StreamID {
	return backend.StreamID{AggregateType: "Probe", Key: t.Name() + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
}

var commitTime = time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC)

// recs returns n records of s numbered from first.
func recs(s backend.StreamID, first int64, n int, tag string) []backend.Record {
	out := make([]backend.Record, n)
	for i := range out {
		out[i] = backend.Record{
			Stream: s, Sequence: first + int64(i), EventType: "Added",
			Data:      []byte(fmt.Sprintf(`{"tag":%q,"i":%d}`, tag, i)),
			Timestamp: commitTime, Metadata: backend.Metadata{"tag": tag},
		}
	}
	return out
}

func load(t testing.TB, b backend.Backend, s backend.StreamID, after int64) []backend.Record {
	t.Helper()
	var out []backend.Record
	for r, err := range b.Load(bg, s, after) {
		if err != nil {
			t.Fatalf("Load(%s, %d): %v", s, after, err)
		}
		out = append(out, r)
	}
	return out
}

func loadErr(b backend.Backend, ctx context.Context, s backend.StreamID, after int64) (int, error) {
	n := 0
	for _, err := range b.Load(ctx, s, after) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func mustAppend(t testing.TB, b backend.Backend, s backend.StreamID, expected int64, n int) {
	t.Helper()
	if err := appendRecs(bg, b, s, expected, recs(s, expected+1, n, "c"+strconv.FormatInt(expected, 10))); err != nil {
		t.Fatalf("Append(%d, %d events): %v", expected, n, err)
	}
}

func seqs(rs []backend.Record) string {
	var sb strings.Builder
	for i, r := range rs {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatInt(r.Sequence, 10))
	}
	return sb.String()
}

func wantSeqs(after, head int64) string {
	var sb strings.Builder
	for s := after + 1; s <= head; s++ {
		if s > after+1 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatInt(s, 10))
	}
	return sb.String()
}

// Loads after every position, including positions inside commits, from a
// backend that wrote the stream, from fresh backends that know nothing, with
// and without the boundary cache, with one-item pages.
func TestLoadAfterInsideCommit(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	writer, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	s := streamOf(t)
	head := int64(0)
	for _, n := range []int{3, 1, 4, 2} { // commits 1-3, 4, 5-8, 9-10
		mustAppend(t, writer, s, head, n)
		head += int64(n)
	}
	configs := map[string][]Option{
		"default":      nil,
		"noCache":      {WithBoundaryCache(0)},
		"onePerPage":   {WithQueryLimit(1)},
		"noCache1Page": {WithBoundaryCache(0), WithQueryLimit(1)},
	}
	for name, opts := range configs {
		t.Run(name, func(t *testing.T) {
			for after := int64(-1); after <= head+2; after++ {
				// A fresh backend per position, so no boundary is known.
				b, err := NewBackend(bg, client, table, opts...)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := seqs(load(t, b, s, after)), wantSeqs(max(after, 0), head); got != want {
					t.Fatalf("after %d: got [%s] want [%s]", after, got, want)
				}
				// Again, now that the backend has seen the stream.
				if got, want := seqs(load(t, b, s, after)), wantSeqs(max(after, 0), head); got != want {
					t.Fatalf("after %d, second load: got [%s] want [%s]", after, got, want)
				}
			}
		})
	}
	t.Run("writer", func(t *testing.T) {
		for after := int64(0); after <= head; after++ {
			if got, want := seqs(load(t, writer, s, after)), wantSeqs(after, head); got != want {
				t.Fatalf("after %d: got [%s] want [%s]", after, got, want)
			}
		}
	})
}

// Appends at an expected sequence that is not the end of a commit (inside
// one, or ahead of the head) conflict and store nothing, whatever the
// backend knows.
func TestAppendAtNonBoundary(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	for _, opts := range [][]Option{nil, {WithBoundaryCache(0)}} {
		w, err := NewBackend(bg, client, table, opts...)
		if err != nil {
			t.Fatal(err)
		}
		s := streamOf(t)
		mustAppend(t, w, s, 0, 3)
		mustAppend(t, w, s, 3, 2) // commits 1-3, 4-5
		for _, fresh := range []bool{false, true} {
			b := w
			if fresh {
				if b, err = NewBackend(bg, client, table, opts...); err != nil {
					t.Fatal(err)
				}
			}
			for _, expected := range []int64{0, 1, 2, 3, 4, 6, 7, 100} {
				err := appendRecs(bg, b, s, expected, recs(s, expected+1, 1, "loser"))
				if !errors.Is(err, backend.ErrConcurrency) {
					t.Fatalf("fresh=%v: Append at expected %d with head 5: got %v, want ErrConcurrency", fresh, expected, err)
				}
			}
			got := load(t, b, s, 0)
			if seqs(got) != "1,2,3,4,5" {
				t.Fatalf("stream holds [%s]", seqs(got))
			}
			for _, r := range got {
				if r.Metadata["tag"] == "loser" {
					t.Fatalf("a losing append was stored: %+v", r)
				}
			}
		}
		// The right expected still works from a fresh backend.
		b, err := NewBackend(bg, client, table, opts...)
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, b, s, 5, 1)
	}
}

// Counts the requests each operation makes, as the package documents them.
func TestRoundTrips(t *testing.T) {
	p := newProxy(500, "InternalServerError", nil)
	client := newClient(t, withHTTP(p))
	table := newTable(t, client)
	s := streamOf(t)

	p.reset()
	b, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	check := func(step string, want map[string]int) {
		t.Helper()
		p.mu.Lock()
		got := maps.Clone(p.counts)
		p.mu.Unlock()
		for op, n := range got {
			if n == 0 {
				delete(got, op)
			}
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%s: requests %v, want %v", step, got, want)
		}
		p.reset()
	}
	check("NewBackend", map[string]int{"DescribeTable": 1})

	mustAppend(t, b, s, 0, 2)
	check("first append", map[string]int{"PutItem": 1})
	mustAppend(t, b, s, 2, 3)
	check("append at the head this backend wrote", map[string]int{"PutItem": 1})
	load(t, b, s, 0)
	check("load", map[string]int{"Query": 1})
	load(t, b, s, 2)
	check("load after a boundary", map[string]int{"Query": 1})

	// A second backend knows nothing: the head is read once, then known.
	b2, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	p.reset()
	mustAppend(t, b2, s, 5, 1)
	check("append at an unknown boundary", map[string]int{"Query": 1, "PutItem": 1})
	mustAppend(t, b2, s, 6, 1)
	check("append at a known boundary", map[string]int{"PutItem": 1})

	// Load then commit, the aggregate's path, from yet another backend.
	b3, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	p.reset()
	load(t, b3, s, 0)
	mustAppend(t, b3, s, 7, 1)
	check("load then append", map[string]int{"Query": 1, "PutItem": 1})

	// A conflict at a boundary the backend knows: the failed put, and the
	// GetItem telling it from a retry of its own put.
	if err := appendRecs(bg, b, s, 5, recs(s, 6, 1, "x")); !errors.Is(err, backend.ErrConcurrency) {
		t.Fatalf("got %v, want ErrConcurrency", err)
	}
	check("stale append at a known boundary", map[string]int{"PutItem": 1, "GetItem": 1})
	// A conflict at an older boundary: the head read settles it.
	if err := appendRecs(bg, b2, s, 6, recs(s, 7, 1, "x")); !errors.Is(err, backend.ErrConcurrency) {
		t.Fatalf("got %v, want ErrConcurrency", err)
	}
	check("stale append at an older boundary", map[string]int{"Query": 1})

	b4, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	p.reset()
	load(t, b4, s, 0) // knows 8
	if err := appendRecs(bg, b3, s, 8, recs(s, 9, 1, "y")); err != nil {
		t.Fatal(err)
	}
	p.reset()
	if err := appendRecs(bg, b4, s, 8, recs(s, 9, 1, "z")); !errors.Is(err, backend.ErrConcurrency) {
		t.Fatalf("got %v, want ErrConcurrency", err)
	}
	check("conflicting put", map[string]int{"PutItem": 1, "GetItem": 1})

	// Loads after a position inside a commit, on a backend that has not seen it.
	b5, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	p.reset()
	if got := seqs(load(t, b5, s, 3)); got != "4,5,6,7,8,9" {
		t.Fatalf("load after 3: [%s]", got)
	}
	check("load inside a commit", map[string]int{"Query": 2})
	if got := seqs(load(t, b5, s, 5)); got != "6,7,8,9" {
		t.Fatalf("load after 5: [%s]", got)
	}
	check("load after a boundary not cached", map[string]int{"Query": 1})

	// Outbox: commits 1-2, 3-5, 6, 7, 8 and 9 are pending. A relay's
	// Pending reads the index (one Query per shard) and the listed items (one
	// BatchGetItem); the stream's first pending commit starts at 1, so there
	// is no earlier one to check.
	relay, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	p.reset()
	if got := spans(pendingOf(t, relay, 0)); got != "1-2,3-5,6-6,7-7,8-8,9-9" {
		t.Fatalf("pending: [%s]", got)
	}
	check("pending", map[string]int{"Query": outboxShards, "BatchGetItem": 1})
	if err := relay.MarkPublished(bg, refs(pendingOf(t, relay, 2))); err != nil {
		t.Fatal(err)
	}
	p.reset()
	if err := relay.MarkPublished(bg, refs(pendingOf(t, relay, 2))); err != nil {
		t.Fatal(err)
	}
	check("pending and marking two", map[string]int{"Query": outboxShards, "BatchGetItem": 1, "UpdateItem": 2})
	// The relay marked 1-2 and 3-5, then 6 and 7, so 6 and 8 needed no check.
	// Another relay checks 7 once (one Query), then knows it.
	other, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{outboxShards + 1, outboxShards} {
		p.reset()
		if got := spans(pendingOf(t, other, 0)); got != "8-8,9-9" {
			t.Fatalf("pending: [%s]", got)
		}
		check("pending, another relay "+strconv.Itoa(i), map[string]int{"Query": want, "BatchGetItem": 1})
	}

	// Snapshot store: one request per call.
	ss, err := NewSnapshotStore(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	p.reset()
	if err := ss.Put(bg, backend.Snapshot{Stream: s, Sequence: 9, State: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Get(bg, s); err != nil {
		t.Fatal(err)
	}
	if err := ss.Delete(bg, s); err != nil {
		t.Fatal(err)
	}
	check("snapshots", map[string]int{"PutItem": 1, "GetItem": 1, "DeleteItem": 1})
}

func TestRecordFieldsRoundTrip(t *testing.T) {
	client := newClient(t)
	b := newBackend(t, client)
	s := streamOf(t)
	t1 := time.Date(2262, 4, 11, 23, 47, 16, 854775808, time.UTC) // past the last Unix nanosecond
	t2 := time.Date(1492, 10, 12, 0, 0, 0, 1, time.UTC)
	in := []backend.Record{
		{Stream: s, Sequence: 1, EventType: "A", Data: []byte(`{"n":9223372036854775807,"u":18446744073709551615}`),
			Timestamp: commitTime, Metadata: backend.Metadata{"k": "v", "e": ""}},
		{Stream: s, Sequence: 2, EventType: "B", Data: []byte{0, 0xff, 0xfe, 0}, Timestamp: commitTime,
			Metadata: backend.Metadata{"k": "v", "e": ""}},
		{Stream: s, Sequence: 3, EventType: "Ünïcode-type", Data: nil, Timestamp: t1, Metadata: nil},
		{Stream: s, Sequence: 4, EventType: "D", Data: []byte{}, Timestamp: t2, Metadata: backend.Metadata{"other": "x"}},
		{Stream: s, Sequence: 5, EventType: "E", Data: []byte("z"), Timestamp: time.Time{}, Metadata: backend.Metadata{"k": "v"}},
		{Stream: s, Sequence: 6, EventType: "F", Data: []byte("e"), Timestamp: time.Unix(0, 0), Metadata: backend.Metadata{"k": "v"}},
	}
	c := commitOf(s, 0, in)
	if err := b.Append(bg, c); err != nil {
		t.Fatal(err)
	}
	zero := backend.Record{Stream: s, Sequence: 1, EventType: "Z", Data: []byte("zero")}
	s2 := streamOf(t)
	zero.Stream = s2
	if err := appendRecs(bg, b, s2, 0, []backend.Record{zero}); err != nil {
		t.Fatal(err)
	}
	if got := load(t, b, s2, 0); len(got) != 1 || !got[0].Timestamp.IsZero() || got[0].Metadata != nil {
		t.Fatalf("zero time and no metadata: %+v", got)
	}
	got := load(t, b, s, 0)
	if len(got) != len(in) {
		t.Fatalf("loaded %d records, want %d", len(got), len(in))
	}
	for i, w := range in {
		g := got[i]
		if g.Stream != w.Stream || g.Sequence != w.Sequence || g.EventType != w.EventType || !bytes.Equal(g.Data, w.Data) || g.CommitID != c.ID {
			t.Errorf("record %d: got %+v want %+v (commit ID %q)", i, g, w, c.ID)
		}
		if g.Data == nil {
			t.Errorf("record %d: nil data, want empty", i)
		}
		if !g.Timestamp.Equal(w.Timestamp) || g.Timestamp.IsZero() != w.Timestamp.IsZero() || g.Timestamp.Location() != time.UTC {
			t.Errorf("record %d: time %v want %v (UTC, nanoseconds)", i, g.Timestamp, w.Timestamp)
		}
		if !maps.Equal(g.Metadata, w.Metadata) {
			t.Errorf("record %d: metadata %v want %v", i, g.Metadata, w.Metadata)
		}
	}
}

// Times past year 9999 are refused before anything is sent; times before
// 1678 and after 2262 (beyond Unix nanoseconds in an int64, which earlier
// versions stored) are kept.
func TestTimestampRange(t *testing.T) {
	p := newProxy(500, "x", nil)
	client := newClient(t, withHTTP(p))
	b := newBackend(t, client)
	s := streamOf(t)
	r := recs(s, 1, 2, "x")
	r[1].Timestamp = backend.MaxTime.Add(time.Nanosecond)
	p.reset()
	if err := appendRecs(bg, b, s, 0, r); !errors.Is(err, backend.ErrInvalidAppend) {
		t.Fatalf("got %v, want ErrInvalidAppend", err)
	}
	if n := p.count("PutItem"); n != 0 {
		t.Fatalf("a refused commit sent %d PutItem requests", n)
	}
	r[0].Timestamp = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC) // commit-level time out of the old range
	r[1].Timestamp = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) // event-level too
	if err := appendRecs(bg, b, s, 0, r); err != nil {
		t.Fatal(err)
	}
	got := load(t, b, s, 0)
	if len(got) != 2 || !got[0].Timestamp.Equal(r[0].Timestamp) || !got[1].Timestamp.Equal(r[1].Timestamp) {
		t.Fatalf("loaded %+v", got)
	}
}

// testMarker is an outbox marker of the size Append writes now.
func testMarker(pk string) *marker { return &marker{shard: shardOf(pk), at: time.Now().UnixNano()} }

func TestCommitTooLarge(t *testing.T) {
	p := newProxy(500, "x", nil)
	client := newClient(t, withHTTP(p))
	b := newBackend(t, client)
	s := streamOf(t)
	pk := s.String()

	// One event whose item is exactly MaxCommitSize: accepted.
	c := commitOf(s, 0, recs(s, 1, 1, "big"))
	base := commitSize(pk, c, layoutOf(c.Records), testMarker(pk))
	c.Records[0].Data = bytes.Repeat([]byte("x"), len(c.Records[0].Data)+MaxCommitSize-base)
	if got := commitSize(pk, c, layoutOf(c.Records), testMarker(pk)); got != MaxCommitSize {
		t.Fatalf("test setup: size %d", got)
	}
	if err := b.Append(bg, c); err != nil {
		t.Fatalf("commit of exactly MaxCommitSize bytes: %v", err)
	}

	// One byte more: rejected before any request.
	c = commitOf(s, 1, recs(s, 2, 1, "big"))
	base = commitSize(pk, c, layoutOf(c.Records), testMarker(pk))
	c.Records[0].Data = bytes.Repeat([]byte("y"), len(c.Records[0].Data)+MaxCommitSize-base+1)
	p.reset()
	err := b.Append(bg, c)
	var tooLarge *backend.CommitTooLargeError
	if !errors.Is(err, backend.ErrCommitTooLarge) || !errors.As(err, &tooLarge) {
		t.Fatalf("got %v, want *CommitTooLargeError", err)
	}
	if tooLarge.Limit != MaxCommitSize || tooLarge.Size != MaxCommitSize+1 || tooLarge.Events != 1 || tooLarge.Stream != s {
		t.Fatalf("error fields: %+v", tooLarge)
	}
	if n := p.count("PutItem") + p.count("Query"); n != 0 {
		t.Fatalf("a rejected commit sent %d requests", n)
	}

	// Many small events with metadata: also rejected, nothing stored.
	many := recs(s, 2, 12000, strings.Repeat("m", 40))
	if err := appendRecs(bg, b, s, 1, many); !errors.Is(err, backend.ErrCommitTooLarge) {
		t.Fatalf("12000 events: got %v, want ErrCommitTooLarge", err)
	}
	if got := seqs(load(t, b, s, 0)); got != "1" {
		t.Fatalf("stream holds [%s]", got)
	}
}

// commitSize must never under-estimate what DynamoDB measures: items whose
// computed size is exactly MaxItemSize, of many shapes, must be accepted by
// the server (which enforces the 400 KB limit).
func TestCommitSizeIsAnUpperBound(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	s := streamOf(t)
	pk := s.String()
	shapes := map[string]func(first int64) []backend.Record{
		"one event": func(first int64) []backend.Record { return recs(s, first, 1, "a") },
		"many events": func(first int64) []backend.Record {
			return recs(s, first, 2000, "b")
		},
		"own times and metadata": func(first int64) []backend.Record {
			r := recs(s, first, 500, "c")
			for i := range r {
				r[i].Timestamp = r[i].Timestamp.Add(time.Duration(i) * time.Nanosecond)
				r[i].Metadata = backend.Metadata{"i": strconv.Itoa(i), "ü": "ß€𝄞"}
			}
			return r
		},
		"big sequences": func(first int64) []backend.Record { return recs(s, first+1<<60, 3, "d") },
		"extreme times": func(first int64) []backend.Record {
			r := recs(s, first, 300, "f")
			r[0].Timestamp = time.Time{}
			for i := 1; i < len(r); i++ {
				r[i].Timestamp = []time.Time{backend.MaxTime, time.Date(1, 2, 3, 4, 5, 6, 7, time.UTC), time.Unix(0, 0)}[i%3]
			}
			return r
		},
	}
	first := int64(1)
	for name, shape := range shapes {
		c := commitOf(s, first-1, shape(first))
		c.Expected = c.Records[0].Sequence - 1
		l := layoutOf(c.Records)
		m := &marker{shard: shardOf(pk), at: 1<<63 - 1}
		pad := MaxItemSize - commitSize(pk, c, l, m)
		if pad < 0 {
			t.Fatalf("%s: test shape too big", name)
		}
		c.Records[0].Data = append(c.Records[0].Data, bytes.Repeat([]byte("p"), pad)...)
		if got := commitSize(pk, c, l, m); got != MaxItemSize {
			t.Fatalf("%s: size %d", name, got)
		}
		if err := backend.CheckAppend(c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		item := encodeCommit(pk, c, l, m)
		if _, err := client.PutItem(bg, &ddb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatalf("%s: the server refused an item we measured at %d bytes: %v", name, MaxItemSize, err)
		}
		first = c.Last() + 1
	}
	// And the server does enforce the limit, so the test means something.
	c := commitOf(s, first-1, recs(s, first, 1, "e"))
	c.Records[0].Data = bytes.Repeat([]byte("q"), MaxItemSize)
	item := encodeCommit(pk, c, layoutOf(c.Records), nil)
	if _, err := client.PutItem(bg, &ddb.PutItemInput{TableName: aws.String(table), Item: item}); err == nil {
		t.Fatal("the server accepted an item over 400 KB")
	}
}

func TestSchema(t *testing.T) {
	client := newClient(t)
	create := func(t *testing.T, attrs []types.AttributeDefinition, keys []types.KeySchemaElement) string {
		table := tableName(t)
		_, err := client.CreateTable(bg, &ddb.CreateTableInput{
			TableName: aws.String(table), AttributeDefinitions: attrs, KeySchema: keys,
			BillingMode: types.BillingModePayPerRequest,
		})
		if err != nil {
			t.Fatalf("CreateTable: %v", err)
		}
		t.Cleanup(func() { _, _ = client.DeleteTable(bg, &ddb.DeleteTableInput{TableName: aws.String(table)}) })
		return table
	}
	attr := func(name string, typ types.ScalarAttributeType) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: typ}
	}
	key := func(name string, typ types.KeyType) types.KeySchemaElement {
		return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: typ}
	}
	wrong := map[string]struct {
		attrs []types.AttributeDefinition
		keys  []types.KeySchemaElement
	}{
		"hashOnly":      {[]types.AttributeDefinition{attr("stream", "S")}, []types.KeySchemaElement{key("stream", types.KeyTypeHash)}},
		"otherNames":    {[]types.AttributeDefinition{attr("pk", "S"), attr("sk", "N")}, []types.KeySchemaElement{key("pk", types.KeyTypeHash), key("sk", types.KeyTypeRange)}},
		"stringSortKey": {[]types.AttributeDefinition{attr("stream", "S"), attr("seq", "S")}, []types.KeySchemaElement{key("stream", types.KeyTypeHash), key("seq", types.KeyTypeRange)}},
		"binaryPK":      {[]types.AttributeDefinition{attr("stream", "B"), attr("seq", "N")}, []types.KeySchemaElement{key("stream", types.KeyTypeHash), key("seq", types.KeyTypeRange)}},
		"swapped":       {[]types.AttributeDefinition{attr("stream", "S"), attr("seq", "N")}, []types.KeySchemaElement{key("seq", types.KeyTypeHash), key("stream", types.KeyTypeRange)}},
	}
	for name, w := range wrong {
		t.Run(name, func(t *testing.T) {
			table := create(t, w.attrs, w.keys)
			var se *SchemaError
			if _, err := NewBackend(bg, client, table); !errors.Is(err, ErrTableSchema) || !errors.As(err, &se) || se.Table != table {
				t.Fatalf("NewBackend: got %v, want *SchemaError", err)
			}
			if _, err := NewBackend(bg, client, table, WithoutOutbox()); !errors.Is(err, ErrTableSchema) {
				t.Fatalf("NewBackend WithoutOutbox: got %v, want ErrTableSchema", err)
			}
			if _, err := NewSnapshotStore(bg, client, table); !errors.Is(err, ErrTableSchema) {
				t.Fatalf("NewSnapshotStore: got %v, want ErrTableSchema", err)
			}
			if err := CreateTable(bg, client, table); !errors.Is(err, ErrTableSchema) {
				t.Fatalf("CreateTable over a wrong table: got %v, want ErrTableSchema", err)
			}
		})
	}
	// A table made by an earlier version: the right keys, no outbox index.
	t.Run("noOutboxIndex", func(t *testing.T) {
		table := newTableWithoutIndex(t, client)
		var se *SchemaError
		_, err := NewBackend(bg, client, table)
		if !errors.As(err, &se) || !strings.Contains(se.Problem, `index "outbox"`) {
			t.Fatalf("NewBackend: got %v, want a *SchemaError about the outbox index", err)
		}
		if err := CreateTable(bg, client, table); !errors.Is(err, ErrTableSchema) {
			t.Fatalf("CreateTable over a table without the index: got %v, want ErrTableSchema", err)
		}
		if _, err := NewSnapshotStore(bg, client, table); err != nil {
			t.Fatalf("NewSnapshotStore: %v", err)
		}
		b, err := NewBackend(bg, client, table, WithoutOutbox())
		if err != nil {
			t.Fatalf("NewBackend WithoutOutbox: %v", err)
		}
		s := streamOf(t)
		mustAppend(t, b, s, 0, 2)
		for _, err := range b.Pending(bg, 0) {
			if !errors.Is(err, ErrTableSchema) {
				t.Fatalf("Pending without the index: got %v, want ErrTableSchema", err)
			}
		}
		if err := b.MarkPublished(bg, []backend.CommitRef{{Stream: s, First: 1, Last: 2, ID: "x"}}); err != nil {
			t.Fatalf("MarkPublished without the index: %v", err)
		}
	})
	t.Run("wrongOutboxIndex", func(t *testing.T) {
		table := tableName(t)
		_, err := client.CreateTable(bg, &ddb.CreateTableInput{
			TableName:            aws.String(table),
			AttributeDefinitions: []types.AttributeDefinition{attr("stream", "S"), attr("seq", "N"), attr("ob", "S")},
			KeySchema:            []types.KeySchemaElement{key("stream", types.KeyTypeHash), key("seq", types.KeyTypeRange)},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{IndexName: aws.String("outbox"),
				KeySchema:  []types.KeySchemaElement{key("ob", types.KeyTypeHash), key("seq", types.KeyTypeRange)},
				Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly}}},
			BillingMode: types.BillingModePayPerRequest,
		})
		if err != nil {
			t.Fatalf("CreateTable: %v", err)
		}
		t.Cleanup(func() { _, _ = client.DeleteTable(bg, &ddb.DeleteTableInput{TableName: aws.String(table)}) })
		for _, opts := range [][]Option{nil, {WithoutOutbox()}} {
			if _, err := NewBackend(bg, client, table, opts...); !errors.Is(err, ErrTableSchema) {
				t.Fatalf("NewBackend: got %v, want ErrTableSchema", err)
			}
		}
	})
	t.Run("missingTable", func(t *testing.T) {
		var nf *types.ResourceNotFoundException
		if _, err := NewBackend(bg, client, tableName(t)); !errors.As(err, &nf) {
			t.Fatalf("got %v, want *types.ResourceNotFoundException", err)
		}
	})
	t.Run("createTableIsIdempotent", func(t *testing.T) {
		table := newTable(t, client)
		if err := CreateTable(bg, client, table); err != nil {
			t.Fatalf("second CreateTable: %v", err)
		}
		if _, err := NewBackend(bg, client, table); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("nilClient", func(t *testing.T) {
		if _, err := NewBackend(bg, nil, "x"); err == nil {
			t.Fatal("nil client accepted")
		}
		if _, err := NewSnapshotStore(bg, nil, "x"); err == nil {
			t.Fatal("nil client accepted")
		}
		if err := CreateTable(bg, nil, "x"); err == nil {
			t.Fatal("nil client accepted")
		}
	})
}

// Close ends the backend, not the client: another backend on the same
// client keeps working.
func TestCloseLeavesClientAlone(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	a, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	s := streamOf(t)
	mustAppend(t, a, s, 0, 1)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := appendRecs(bg, a, s, 1, recs(s, 2, 1, "x")); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
	mustAppend(t, b, s, 1, 1)
	if got := seqs(load(t, b, s, 0)); got != "1,2" {
		t.Fatalf("stream holds [%s]", got)
	}

	// Closing during a load stops it with ErrClosed at the next page.
	c, err := NewBackend(bg, client, table, WithQueryLimit(1))
	if err != nil {
		t.Fatal(err)
	}
	var loadErr error
	n := 0
	for _, err := range c.Load(bg, s, 0) {
		if err != nil {
			loadErr = err
			break
		}
		n++
		_ = c.Close()
	}
	if n != 1 || !errors.Is(loadErr, backend.ErrClosed) {
		t.Fatalf("load across Close: %d records then %v", n, loadErr)
	}
}

// The snapshot store may share the event table: snapshots live at sort key
// 0, which loads and head reads never touch.
func TestSnapshotsInTheEventTable(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	b, err := NewBackend(bg, client, table, WithBoundaryCache(0))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := NewSnapshotStore(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	s := streamOf(t)
	if err := ss.Put(bg, backend.Snapshot{Stream: s, Sequence: 0, Version: 1, State: []byte("none")}); !errors.Is(err, backend.ErrInvalidSnapshot) {
		t.Fatalf("a snapshot at sequence 0: got %v, want ErrInvalidSnapshot", err)
	}
	if err := ss.Put(bg, backend.Snapshot{Stream: s, Sequence: 1, Version: 1, State: []byte("ahead")}); err != nil {
		t.Fatal(err)
	}
	if n := len(load(t, b, s, 0)); n != 0 {
		t.Fatalf("the snapshot shows as %d records", n)
	}
	if err := appendRecs(bg, b, s, 1, recs(s, 2, 1, "x")); !errors.Is(err, backend.ErrConcurrency) {
		t.Fatalf("append at 1 on an empty stream with a snapshot: %v", err)
	}
	mustAppend(t, b, s, 0, 2)
	mustAppend(t, b, s, 2, 2)
	if err := ss.Put(bg, backend.Snapshot{Stream: s, Sequence: 4, Version: 1, State: []byte("four")}); err != nil {
		t.Fatal(err)
	}
	if got := seqs(load(t, b, s, 0)); got != "1,2,3,4" {
		t.Fatalf("stream holds [%s]", got)
	}
	if got := seqs(load(t, b, s, 1)); got != "2,3,4" {
		t.Fatalf("after 1: [%s]", got)
	}
	mustAppend(t, b, s, 4, 1)
	if snap, err := ss.Get(bg, s); err != nil || snap.Sequence != 4 || string(snap.State) != "four" {
		t.Fatalf("snapshot: %+v %v", snap, err)
	}
	// Snapshots are never pending.
	n := 0
	for c, err := range b.Pending(bg, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if c.Stream != s || c.First() < 1 {
			t.Fatalf("Pending yields %+v", c)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d commits pending, want 3", n)
	}
}

func TestSnapshotPutRejects(t *testing.T) {
	client := newClient(t)
	ss, err := NewSnapshotStore(bg, client, newTable(t, client))
	if err != nil {
		t.Fatal(err)
	}
	s := streamOf(t)
	err = ss.Put(bg, backend.Snapshot{Stream: s, Sequence: 3, State: make([]byte, MaxItemSize)})
	if !errors.Is(err, ErrSnapshotTooLarge) {
		t.Fatalf("got %v, want ErrSnapshotTooLarge", err)
	}
	if _, err := ss.Get(bg, s); !errors.Is(err, backend.ErrSnapshotNotFound) {
		t.Fatalf("got %v, want ErrSnapshotNotFound", err)
	}
	for _, bad := range []backend.Snapshot{
		{Stream: s, Sequence: 1, Time: backend.MaxTime.Add(time.Nanosecond)},
		{Stream: s, Sequence: -1},
		{Stream: s, Sequence: 0},
	} {
		if err := ss.Put(bg, bad); !errors.Is(err, backend.ErrInvalidSnapshot) {
			t.Fatalf("Put at %d, %v: got %v, want ErrInvalidSnapshot", bad.Sequence, bad.Time, err)
		}
	}
	if _, err := ss.Get(bg, s); !errors.Is(err, backend.ErrSnapshotNotFound) {
		t.Fatalf("got %v, want ErrSnapshotNotFound", err)
	}
	// Times beyond Unix nanoseconds, which earlier versions refused, are kept.
	far := time.Date(2300, 1, 1, 0, 0, 0, 1, time.UTC)
	if err := ss.Put(bg, backend.Snapshot{Stream: s, Sequence: 1, Time: far}); err != nil {
		t.Fatal(err)
	}
	if got, err := ss.Get(bg, s); err != nil || !got.Time.Equal(far) {
		t.Fatalf("got %v %v, want time %v", got.Time, err, far)
	}
	if err := ss.Put(bg, backend.Snapshot{Stream: backend.StreamID{Key: "k"}, Sequence: 1}); !errors.Is(err, backend.ErrInvalidStream) {
		t.Fatalf("invalid stream: got %v", err)
	}
}

func TestSequenceLimits(t *testing.T) {
	client := newClient(t)
	b := newBackend(t, client)
	s := streamOf(t)
	mustAppend(t, b, s, 0, 1)
	r := recs(s, math.MaxInt64, 2, "x") // MaxInt64, then an overflow
	if err := appendRecs(bg, b, s, math.MaxInt64-1, r); !errors.Is(err, backend.ErrInvalidAppend) {
		t.Fatalf("overflowing sequences: got %v, want ErrInvalidAppend", err)
	}
	if n := len(load(t, b, s, math.MaxInt64)); n != 0 {
		t.Fatalf("after MaxInt64: %d records", n)
	}
	if got := seqs(load(t, b, s, math.MinInt64)); got != "1" {
		t.Fatalf("after MinInt64: [%s]", got)
	}
}
