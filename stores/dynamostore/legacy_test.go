package dynamostore

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aggregatekit/eventsourcing/backend"
)

// Items written by the previous version (a random binary "cid", times as
// Unix nanoseconds in "ts", the zero time left out at item level and
// written as 0 at event level) still load: their records have CommitID "",
// their times are what that version stored, and new commits follow them.
// They are never pending.
func TestLegacyItems(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	s := streamOf(t)
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	put := func(item map[string]types.AttributeValue) {
		t.Helper()
		item[attrStream] = str(s.String())
		item[legacyCommitID] = &types.AttributeValueMemberB{Value: []byte("0123456789abcdef")}
		if _, err := client.PutItem(bg, &ddb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	ev := func(typ string, extra map[string]types.AttributeValue) types.AttributeValue {
		m := map[string]types.AttributeValue{evType: str(typ), evData: &types.AttributeValueMemberB{Value: []byte(typ)}}
		for k, v := range extra {
			m[k] = v
		}
		return &types.AttributeValueMemberM{Value: m}
	}
	t1 := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	// 1-3: at the epoch (the old item-level encoding wrote 0, which it read
	// back as the zero time), event 2 at its own time, event 3 at the zero
	// time (event-level 0) with its own metadata.
	put(map[string]types.AttributeValue{
		attrSeq: n("1"), attrLast: n("3"), legacyTime: n("0"),
		attrMeta: &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": str("v")}},
		attrEvents: &types.AttributeValueMemberL{Value: []types.AttributeValue{
			ev("A", nil),
			ev("B", map[string]types.AttributeValue{legacyTime: n("1714979289123456789")}),
			ev("C", map[string]types.AttributeValue{legacyTime: n("0"),
				evMeta: &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"own": str("x")}}}),
		}},
	})
	// 4: the zero time (left out), no metadata.
	put(map[string]types.AttributeValue{
		attrSeq: n("4"), attrLast: n("4"),
		attrEvents: &types.AttributeValueMemberL{Value: []types.AttributeValue{ev("D", nil)}},
	})
	b, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ string
		ts  time.Time
		md  backend.Metadata
	}{{"A", time.Unix(0, 0), backend.Metadata{"k": "v"}}, {"B", t1, backend.Metadata{"k": "v"}},
		{"C", time.Time{}, backend.Metadata{"own": "x"}}, {"D", time.Time{}, nil}}
	got := load(t, b, s, 0)
	if len(got) != len(want) {
		t.Fatalf("loaded %d records", len(got))
	}
	for i, w := range want {
		g := got[i]
		if g.EventType != w.typ || string(g.Data) != w.typ || g.CommitID != "" || !g.Timestamp.Equal(w.ts) ||
			g.Timestamp.IsZero() != w.ts.IsZero() || !maps.Equal(g.Metadata, w.md) {
			t.Errorf("record %d: %+v, want %s at %v with %s and no commit ID", i+1, g, w.typ, w.ts, w.md)
		}
	}
	if p := pendingOf(t, b, 0); len(p) != 0 {
		t.Fatalf("legacy commits are pending: %v", spans(p))
	}
	// New commits follow, from this backend and from one that has not
	// seen the stream; a conflict with a legacy item is still a conflict.
	mustAppend(t, b, s, 4, 1)
	fresh, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	if err := appendRecs(bg, fresh, s, 3, recs(s, 4, 1, "x")); !errors.Is(err, backend.ErrConcurrency) {
		t.Fatalf("append after 3: got %v, want ErrConcurrency", err)
	}
	mustAppend(t, fresh, s, 5, 1)
	if got := seqs(load(t, fresh, s, 2)); got != "3,4,5,6" {
		t.Fatalf("after 2: [%s]", got)
	}
	if p := pendingOf(t, b, 0); spans(p) != "5-5,6-6" {
		t.Fatalf("pending: [%s], want the two new commits", spans(p))
	}

	// A snapshot written by the previous version.
	ss, err := NewSnapshotStore(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ts   types.AttributeValue
		want time.Time
	}{{n("0"), time.Unix(0, 0)}, {nil, time.Time{}}, {n("1714979289123456789"), t1}} {
		item := map[string]types.AttributeValue{attrStream: str(s.String()), attrSeq: n("0"), attrSnapSeq: n("4"),
			attrSnapVersion: n("2"), attrSnapState: &types.AttributeValueMemberB{Value: []byte("st")}}
		if c.ts != nil {
			item[legacyTime] = c.ts
		}
		if _, err := client.PutItem(bg, &ddb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
		snap, err := ss.Get(bg, s)
		if err != nil || snap.Sequence != 4 || snap.Version != 2 || string(snap.State) != "st" ||
			!snap.Time.Equal(c.want) || snap.Time.IsZero() != c.want.IsZero() {
			t.Fatalf("legacy snapshot: %+v %v, want time %v", snap, err, c.want)
		}
	}
}

// Metadata real DynamoDB refuses (an empty map key, which the test server
// accepts) or that no store can keep exactly (invalid UTF-8) is refused
// before any request: nothing is stored.
func TestInvalidMetadataSendsNothing(t *testing.T) {
	p := newProxy(500, "x", nil)
	client := newClient(t, withHTTP(p))
	b := newBackend(t, client)
	s := streamOf(t)
	mustAppend(t, b, s, 0, 1)
	for name, md := range map[string]backend.Metadata{
		"empty key":           {"": "v"},
		"invalid UTF-8 key":   {"\xff": "v"},
		"invalid UTF-8 value": {"k": "\xc3"},
	} {
		for _, where := range []int{0, 1} { // commit level, and one event's own
			r := recs(s, 2, 2, "bad")
			r[where].Metadata = md
			p.reset()
			if err := appendRecs(bg, b, s, 1, r); !errors.Is(err, backend.ErrInvalidMetadata) || !strings.Contains(err.Error(), s.String()) {
				t.Fatalf("%s on record %d: got %v, want ErrInvalidMetadata naming the stream", name, where, err)
			}
			if n := p.count("PutItem") + p.count("Query"); n != 0 {
				t.Fatalf("%s: %d requests sent", name, n)
			}
		}
	}
	if got := seqs(load(t, b, s, 0)); got != "1" {
		t.Fatalf("stream holds [%s]", got)
	}
}

// Every error of a cancelled or timed-out call names the stream (where there
// is one) and the operation, and still matches the context's error.
func TestContextErrorsNamed(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	b, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := NewSnapshotStore(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	s := streamOf(t)
	mustAppend(t, b, s, 0, 1)
	cancelled, cancel := context.WithCancel(bg)
	cancel()
	expired, cancel2 := context.WithDeadline(bg, time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		check := func(op, words string, err error) {
			t.Helper()
			if !errors.Is(err, c.want) {
				t.Fatalf("%s: got %v, want %v", op, err, c.want)
			}
			for _, w := range strings.Fields(words) {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("%s: %q does not say %q", op, err.Error(), w)
				}
			}
		}
		check("Append", "append "+s.String(), appendRecs(c.ctx, b, s, 1, recs(s, 2, 1, "x")))
		_, err := loadErr(b, c.ctx, s, 0)
		check("Load", "load "+s.String(), err)
		var perr error
		for _, err := range b.Pending(c.ctx, 0) {
			perr = err
		}
		check("Pending", "pending", perr)
		check("MarkPublished", "mark published", b.MarkPublished(c.ctx, []backend.CommitRef{{Stream: s, First: 1, Last: 1, ID: "x"}}))
		check("snapshot Put", "put snapshot "+s.String(), ss.Put(c.ctx, backend.Snapshot{Stream: s, Sequence: 1}))
		_, err = ss.Get(c.ctx, s)
		check("snapshot Get", "get snapshot "+s.String(), err)
		check("snapshot Delete", "delete snapshot "+s.String(), ss.Delete(c.ctx, s))
	}
	if got := seqs(load(t, b, s, 0)); got != "1" {
		t.Fatalf("stream holds [%s]", got)
	}
}
