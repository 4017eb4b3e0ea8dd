package dynamostore

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aggregatekit/eventsourcing/backend"
)

// pendingOf returns what Pending yields, failing t on an error.
func pendingOf(t *testing.T, b *Backend, limit int) []backend.Commit {
	t.Helper()
	var out []backend.Commit
	for c, err := range b.Pending(bg, limit) {
		if err != nil {
			t.Fatalf("Pending(%d): %v", limit, err)
		}
		out = append(out, c)
	}
	return out
}

// spans renders commits as "first-last" ranges, in the order given.
func spans(cs []backend.Commit) string {
	out := ""
	for i, c := range cs {
		if i > 0 {
			out += ","
		}
		out += strconv.FormatInt(c.First(), 10) + "-" + strconv.FormatInt(c.Last(), 10)
	}
	return out
}

func refs(cs []backend.Commit) []backend.CommitRef {
	out := make([]backend.CommitRef, len(cs))
	for i, c := range cs {
		out[i] = c.Ref()
	}
	return out
}

// setShard rewrites the outbox marker of the commit at (s, first) by hand:
// to a shard Pending does not read, it is pending in the table but not yet
// listed by the index, as when the index of real DynamoDB lags behind.
func setShard(t *testing.T, client *ddb.Client, table string, s backend.StreamID, first int64, shard int) {
	t.Helper()
	_, err := client.UpdateItem(bg, &ddb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       map[string]types.AttributeValue{attrStream: str(s.String()), attrSeq: num(first)},
		UpdateExpression:          aws.String("SET #ob = :shard"),
		ConditionExpression:       aws.String("attribute_exists(#ob)"),
		ExpressionAttributeNames:  map[string]string{"#ob": attrShard},
		ExpressionAttributeValues: map[string]types.AttributeValue{":shard": num(int64(shard))},
	})
	if err != nil {
		t.Fatalf("setting the marker of %s at %d: %v", s, first, err)
	}
}

// Appending backends whose clocks disagree put a stream's later commit
// before its earlier one in the index: Pending still yields them in stream
// order, and never the later one alone.
func TestPendingClockSkew(t *testing.T) {
	for _, cache := range []int{DefaultBoundaryCacheSize, 0} {
		t.Run("cache"+strconv.Itoa(cache), func(t *testing.T) {
			client := newClient(t)
			table := newTable(t, client)
			ahead, err := NewBackend(bg, client, table, WithBoundaryCache(cache))
			if err != nil {
				t.Fatal(err)
			}
			behind, err := NewBackend(bg, client, table, WithBoundaryCache(cache))
			if err != nil {
				t.Fatal(err)
			}
			behind.now = func() time.Time { return time.Now().Add(-time.Hour) }
			s := streamOf(t)
			mustAppend(t, ahead, s, 0, 2)  // 1-2, listed second
			mustAppend(t, behind, s, 2, 1) // 3, listed first
			mustAppend(t, ahead, s, 3, 2)  // 4-5, listed last

			relay, err := NewBackend(bg, client, table, WithBoundaryCache(cache))
			if err != nil {
				t.Fatal(err)
			}
			if got := spans(pendingOf(t, relay, 1)); got != "1-2" {
				t.Fatalf("Pending(1) yields [%s], want the oldest commit 1-2", got)
			}
			if got := spans(pendingOf(t, relay, 0)); got != "1-2,3-3,4-5" {
				t.Fatalf("Pending yields [%s], want 1-2,3-3,4-5", got)
			}
			first := pendingOf(t, relay, 1)
			if err := relay.MarkPublished(bg, refs(first)); err != nil {
				t.Fatal(err)
			}
			if got := spans(pendingOf(t, relay, 2)); got != "3-3,4-5" {
				t.Fatalf("after marking 1-2, Pending(2) yields [%s]", got)
			}
			// Another relay that has seen nothing yields the same.
			other, err := NewBackend(bg, client, table, WithBoundaryCache(cache))
			if err != nil {
				t.Fatal(err)
			}
			if got := spans(pendingOf(t, other, 1)); got != "3-3" {
				t.Fatalf("a fresh relay's Pending(1) yields [%s], want 3-3", got)
			}
			if err := other.MarkPublished(bg, refs(pendingOf(t, other, 0))); err != nil {
				t.Fatal(err)
			}
			if got := pendingOf(t, relay, 0); len(got) != 0 {
				t.Fatalf("after marking everything, Pending yields [%s]", spans(got))
			}
		})
	}
}

// A commit that is pending in the table but not yet listed by the index
// (real DynamoDB's index lags): Pending does not yield the commits after it
// without it; it reads it from the table and yields it first.
func TestPendingIndexLag(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	b, err := NewBackend(bg, client, table, WithBoundaryCache(0))
	if err != nil {
		t.Fatal(err)
	}
	s := streamOf(t)
	for i := int64(0); i < 4; i++ {
		mustAppend(t, b, s, i, 1)
	}
	if err := b.MarkPublished(bg, refs(pendingOf(t, b, 1))); err != nil { // 1 published
		t.Fatal(err)
	}
	setShard(t, client, table, s, 2, 99) // 2 unlisted
	if got := spans(pendingOf(t, b, 0)); got != "2-2,3-3,4-4" {
		t.Fatalf("Pending yields [%s], want 2-2,3-3,4-4", got)
	}
	if got := spans(pendingOf(t, b, 2)); got != "2-2,3-3" {
		t.Fatalf("Pending(2) yields [%s], want 2-2,3-3", got)
	}
	setShard(t, client, table, s, 3, 99) // 2 and 3 unlisted
	if got := spans(pendingOf(t, b, 0)); got != "2-2,3-3,4-4" {
		t.Fatalf("Pending yields [%s], want 2-2,3-3,4-4", got)
	}
	// Walking back over more unlisted commits than the limit: the stream
	// waits for the index rather than yield out of order.
	if got := pendingOf(t, b, 1); len(got) != 0 {
		t.Fatalf("Pending(1) yields [%s], want nothing until the index lists 2", spans(got))
	}
	if err := b.MarkPublished(bg, refs(pendingOf(t, b, 0))); err != nil {
		t.Fatal(err)
	}
	if got := pendingOf(t, b, 0); len(got) != 0 {
		t.Fatalf("after marking, Pending yields [%s]", spans(got))
	}
	// The commits load as before.
	if got := seqs(load(t, b, s, 0)); got != "1,2,3,4" {
		t.Fatalf("stream holds [%s]", got)
	}
}

// Pending reads in pages of 100 keys and over all shards; limits cap what it
// yields, across streams in append order.
func TestPendingMany(t *testing.T) {
	client := newClient(t)
	b := newBackend(t, client)
	var want []backend.CommitRef
	for i := range 150 {
		s := backend.StreamID{AggregateType: "Many", Key: "s" + strconv.Itoa(i%30)}
		c := commitOf(s, int64(i/30), recs(s, int64(i/30)+1, 1, "m"))
		if err := b.Append(bg, c); err != nil {
			t.Fatal(err)
		}
		want = append(want, c.Ref())
	}
	if got := pendingOf(t, b, 0); len(got) != DefaultPendingLimit {
		t.Fatalf("Pending(0) yields %d commits, want %d", len(got), DefaultPendingLimit)
	}
	got := pendingOf(t, b, 1000)
	if len(got) != len(want) {
		t.Fatalf("Pending(1000) yields %d commits, want %d", len(got), len(want))
	}
	for i, c := range got {
		if c.Ref() != want[i] {
			t.Fatalf("commit %d: %+v, want %+v (append order)", i, c.Ref(), want[i])
		}
		if len(c.Records) != 1 || c.Records[0].CommitID != c.ID || c.Records[0].Stream != c.Stream {
			t.Fatalf("commit %d: records %+v", i, c.Records)
		}
	}
	if err := b.MarkPublished(bg, refs(got[:120])); err != nil {
		t.Fatal(err)
	}
	if got := pendingOf(t, b, 0); len(got) != 30 || got[0].Ref() != want[120] {
		t.Fatalf("after marking 120, Pending yields %d commits", len(got))
	}
}

// MarkPublished leaves alone what its refs do not name exactly.
func TestMarkPublishedRefs(t *testing.T) {
	client := newClient(t)
	b := newBackend(t, client)
	s := streamOf(t)
	c := commitOf(s, 0, recs(s, 1, 2, "x"))
	if err := b.Append(bg, c); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]backend.CommitRef{
		"other ID":       {Stream: s, First: 1, Last: 2, ID: "someone-else"},
		"other last":     {Stream: s, First: 1, Last: 1, ID: c.ID},
		"other first":    {Stream: s, First: 2, Last: 2, ID: c.ID},
		"other stream":   {Stream: backend.StreamID{AggregateType: "Other", Key: s.Key}, First: 1, Last: 2, ID: c.ID},
		"no ID":          {Stream: s, First: 1, Last: 2},
		"negative first": {Stream: s, First: -1, Last: 2, ID: c.ID},
	} {
		if err := b.MarkPublished(bg, []backend.CommitRef{r}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := pendingOf(t, b, 0); len(got) != 1 {
			t.Fatalf("%s: the commit is no longer pending", name)
		}
	}
	if err := b.MarkPublished(bg, []backend.CommitRef{{Stream: backend.StreamID{Key: "k"}, First: 1, Last: 1, ID: "x"}}); !errors.Is(err, backend.ErrInvalidStream) {
		t.Fatalf("a ref of an invalid stream: got %v, want ErrInvalidStream", err)
	}
	if err := b.MarkPublished(bg, []backend.CommitRef{c.Ref()}); err != nil {
		t.Fatal(err)
	}
	if got := pendingOf(t, b, 0); len(got) != 0 {
		t.Fatalf("after marking, %d pending", len(got))
	}
	// The item is as before, less the marker.
	out, err := client.GetItem(bg, &ddb.GetItemInput{TableName: b.table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{attrStream: str(s.String()), attrSeq: num(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Item[attrShard]; ok {
		t.Fatal("the marker is still there")
	}
	if _, ok := out.Item[attrPendAt]; ok {
		t.Fatal("the marker's time is still there")
	}
	if got := load(t, b, s, 0); len(got) != 2 || got[1].CommitID != c.ID {
		t.Fatalf("after marking, the stream loads %+v", got)
	}
	_ = b.Close()
	if err := b.MarkPublished(bg, []backend.CommitRef{c.Ref()}); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("MarkPublished after Close: got %v, want ErrClosed", err)
	}
	for _, err := range b.Pending(bg, 0) {
		if !errors.Is(err, backend.ErrClosed) {
			t.Fatalf("Pending after Close: got %v, want ErrClosed", err)
		}
	}
}

// WithoutOutbox writes no marker: its commits are never pending, even to a
// backend with the outbox that reads the same table.
func TestWithoutOutbox(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	plain, err := NewBackend(bg, client, table, WithoutOutbox())
	if err != nil {
		t.Fatal(err)
	}
	marked, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	s := streamOf(t)
	mustAppend(t, plain, s, 0, 2)
	mustAppend(t, marked, s, 2, 1)
	mustAppend(t, plain, s, 3, 1)
	if got := spans(pendingOf(t, plain, 0)); got != "3-3" {
		t.Fatalf("Pending yields [%s], want only the marked commit 3-3", got)
	}
	out, err := client.GetItem(bg, &ddb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{attrStream: str(s.String()), attrSeq: num(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Item[attrShard]; ok {
		t.Fatal("a commit appended WithoutOutbox carries the marker")
	}
	if got := seqs(load(t, marked, s, 0)); got != "1,2,3,4" {
		t.Fatalf("stream holds [%s]", got)
	}
}

// A pending commit whose item is damaged stops Pending with a
// *backend.CorruptError naming it; nothing is changed.
func TestPendingCorruptItem(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	b, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	s := streamOf(t)
	c := commitOf(s, 0, recs(s, 1, 2, "x"))
	item := encodeCommit(s.String(), c, layoutOf(c.Records), testMarker(s.String()))
	item[attrLast] = num(5)
	if _, err := client.PutItem(bg, &ddb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
	var got error
	for _, err := range b.Pending(bg, 0) {
		got = err
	}
	var ce *backend.CorruptError
	if !errors.As(got, &ce) || ce.Stream != s || ce.Sequence != 1 {
		t.Fatalf("got %v, want a *backend.CorruptError naming %s at 1", got, s)
	}
}

// The index of real DynamoDB may still list a commit a moment after it was
// marked published, or deleted: Pending checks every listed commit against
// the table and yields only those still pending. The test server's index
// never lags, so the test adds such entries to its answers.
func TestPendingStaleIndex(t *testing.T) {
	p := newProxy(500, "x", nil)
	client := newClient(t, withHTTP(p))
	table := newTable(t, client)
	b, err := NewBackend(bg, client, table, WithBoundaryCache(0))
	if err != nil {
		t.Fatal(err)
	}
	s := streamOf(t)
	mustAppend(t, b, s, 0, 1)
	mustAppend(t, b, s, 1, 1)
	if err := b.MarkPublished(bg, refs(pendingOf(t, b, 1))); err != nil {
		t.Fatal(err)
	}
	shard := strconv.Itoa(shardOf(s.String()))
	stale := func(seq string) string {
		return `{"stream":{"S":` + strconv.Quote(s.String()) + `},"seq":{"N":"` + seq + `"},"ob":{"N":"` + shard + `"},"obt":{"N":"1"}}`
	}
	p.setRewrite(func(op string, req, resp []byte) []byte {
		if op != "Query" || !strings.Contains(string(req), `"IndexName":"outbox"`) || !strings.Contains(string(req), `":shard":{"N":"`+shard+`"}`) {
			return resp
		}
		// Listed first (obt 1): commit 1, published, and 7, deleted.
		return []byte(strings.Replace(string(resp), `"Items":[`, `"Items":[`+stale("1")+`,`+stale("7")+`,`, 1))
	})
	if got := spans(pendingOf(t, b, 0)); got != "2-2" {
		t.Fatalf("Pending yields [%s], want 2-2 only", got)
	}
	if got := spans(pendingOf(t, b, 1)); got != "" {
		t.Fatalf("Pending(1) yields [%s], want nothing (the one listed entry is stale)", got)
	}
}
