package dynamostore

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/aggregatekit/eventsourcing/backend"
)

// closedPort returns the URL of a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	_ = l.Close()
	return url
}

// An unreachable endpoint: every call fails with an error (once the context
// deadline or the retryer gives up), never a panic or a false conflict.
func TestServerUnreachable(t *testing.T) {
	working := newClient(t)
	table := newTable(t, working)
	b, err := NewBackend(bg, working, table) // a backend built while the server was there
	if err != nil {
		t.Fatal(err)
	}
	dead := newClient(t, withEndpoint(closedPort(t)))
	b.client = dead // as if the server went away after construction
	s := streamOf(t)

	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s against a closed port succeeded", what)
		}
		if errors.Is(err, backend.ErrConcurrency) || errors.Is(err, backend.ErrCorruptStream) {
			t.Fatalf("%s: a network failure reported as %v", what, err)
		}
		var opErr *smithy.OperationError
		if !errors.As(err, &opErr) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: %v is neither an SDK operation error nor a deadline", what, err)
		}
	}
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	_, err = NewBackend(ctx, dead, table)
	check("NewBackend", err)

	ctx, cancel = context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	check("Append", appendRecs(ctx, b, s, 0, recs(s, 1, 1, "x")))

	ctx, cancel = context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	_, err = loadErr(b, ctx, s, 0)
	check("Load", err)

	ss := &SnapshotStore{client: dead, table: aws.String(table)}
	ctx, cancel = context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	_, err = ss.Get(ctx, s)
	check("snapshot Get", err)

	// Without a deadline, the retryer gives up by itself.
	quick := newClient(t, withEndpoint(closedPort(t)), withQuickRetries())
	_, err = NewBackend(bg, quick, table)
	check("NewBackend without deadline", err)
	var netErr *net.OpError
	if !errors.As(err, &netErr) {
		t.Fatalf("the connection error is not reachable with errors.As: %v", err)
	}
}

// Throttling and internal server errors are retried by the SDK's retryer; a
// transient one is invisible, a persistent one comes back wrapped.
func TestServiceErrorsAreRetried(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
	}{
		{400, "ThrottlingException"},
		{400, "ProvisionedThroughputExceededException"},
		{500, "InternalServerError"},
		{503, "ServiceUnavailable"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			p := newProxy(tc.status, tc.code, nil)
			client := newClient(t, withHTTP(p), withQuickRetries())
			b := newBackend(t, client)
			s := streamOf(t)

			// Two failures, then through: the third attempt succeeds.
			twice := func(op string, n int) fault {
				if n <= 2 {
					return failBefore
				}
				return pass
			}
			p.setDecide(twice)
			if err := appendRecs(bg, b, s, 0, recs(s, 1, 2, "a")); err != nil {
				t.Fatalf("Append through transient %s: %v", tc.code, err)
			}
			if n := p.count("PutItem"); n != 3 {
				t.Fatalf("PutItem attempts: %d, want 3", n)
			}
			p.setDecide(twice)
			if got := seqs(load(t, b, s, 0)); got != "1,2" {
				t.Fatalf("Load through transient %s: [%s]", tc.code, got)
			}
			if n := p.count("Query"); n != 3 {
				t.Fatalf("Query attempts: %d, want 3", n)
			}

			// Persistent failure: a wrapped error naming the service's code.
			p.setDecide(func(string, int) fault { return failBefore })
			check := func(what string, err error) {
				t.Helper()
				var apiErr smithy.APIError
				if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code {
					t.Fatalf("%s: got %v, want a wrapped %s", what, err, tc.code)
				}
				var respErr *awshttp.ResponseError
				if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != tc.status {
					t.Fatalf("%s: HTTP status not reachable: %v", what, err)
				}
				if errors.Is(err, backend.ErrConcurrency) {
					t.Fatalf("%s: reported as a conflict: %v", what, err)
				}
			}
			appendErr := appendRecs(bg, b, s, 2, recs(s, 3, 1, "b"))
			check("Append", appendErr)
			// A server fault may have applied the write; a refusal did not.
			if unknown := errors.Is(appendErr, backend.ErrUnknownOutcome); unknown != (tc.status >= 500) {
				t.Fatalf("Append after HTTP %d: ErrUnknownOutcome is %v: %v", tc.status, unknown, appendErr)
			}
			if n := p.count("PutItem"); n != 3 {
				t.Fatalf("PutItem attempts: %d, want 3 (the retryer's default)", n)
			}
			_, err := loadErr(b, bg, s, 0)
			check("Load", err)
			_, err = NewBackend(bg, client, "whatever")
			check("NewBackend", err)
			ss := &SnapshotStore{client: client, table: b.table}
			check("snapshot Put", ss.Put(bg, backend.Snapshot{Stream: s, Sequence: 1}))
			_, err = ss.Get(bg, s)
			check("snapshot Get", err)
			check("snapshot Delete", ss.Delete(bg, s))

			// Nothing was stored by the failed append, and the data is intact.
			p.setDecide(nil)
			if got := seqs(load(t, b, s, 0)); got != "1,2" {
				t.Fatalf("after failures the stream holds [%s]", got)
			}
		})
	}
}

// The first attempt of a put reaches the server and is stored, but its
// response is lost (a 500 instead): the SDK retries, the retry fails its
// condition against our own item, and Append must report success, not a
// conflict that would make the command run twice.
func TestLostResponseIsNotAConflict(t *testing.T) {
	p := newProxy(500, "InternalServerError", nil)
	client := newClient(t, withHTTP(p), withQuickRetries())
	b := newBackend(t, client)
	s := streamOf(t)
	p.setDecide(func(op string, n int) fault {
		if op == "PutItem" && n == 1 {
			return failAfter
		}
		return pass
	})
	if err := appendRecs(bg, b, s, 0, recs(s, 1, 2, "mine")); err != nil {
		t.Fatalf("Append whose first response was lost: %v", err)
	}
	if n := p.count("PutItem"); n != 2 {
		t.Fatalf("PutItem attempts: %d, want 2", n)
	}
	if got := seqs(load(t, b, s, 0)); got != "1,2" {
		t.Fatalf("stream holds [%s]", got)
	}
	// Another writer's item at the same key is still a conflict.
	other, err := NewBackend(bg, client, *b.table)
	if err != nil {
		t.Fatal(err)
	}
	p.setDecide(nil)
	if err := appendRecs(bg, other, s, 0, recs(s, 1, 1, "theirs")); !errors.Is(err, backend.ErrConcurrency) {
		t.Fatalf("got %v, want ErrConcurrency", err)
	}
	// If checking ownership fails too, the outcome is unknown: an error,
	// but not a conflict.
	p.setDecide(func(op string, n int) fault {
		if op == "GetItem" {
			return failBefore
		}
		return pass
	})
	err = appendRecs(bg, other, s, 0, recs(s, 1, 1, "theirs"))
	if !errors.Is(err, backend.ErrUnknownOutcome) || errors.Is(err, backend.ErrConcurrency) {
		t.Fatalf("got %v, want ErrUnknownOutcome and not a conflict", err)
	}
}

func TestContextCancelled(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	b, err := NewBackend(bg, client, table, WithQueryLimit(1), WithBoundaryCache(0))
	if err != nil {
		t.Fatal(err)
	}
	s := streamOf(t)
	mustAppend(t, b, s, 0, 1)
	mustAppend(t, b, s, 1, 1)
	mustAppend(t, b, s, 2, 1)

	cancelled, cancel := context.WithCancel(bg)
	cancel()
	if _, err := NewBackend(cancelled, client, table); !errors.Is(err, context.Canceled) {
		t.Fatalf("NewBackend: got %v, want context.Canceled", err)
	}
	if err := appendRecs(cancelled, b, s, 3, recs(s, 4, 1, "x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append: got %v, want context.Canceled", err)
	}
	if _, err := loadErr(b, cancelled, s, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Load: got %v, want context.Canceled", err)
	}
	if err := CreateTable(cancelled, client, tableName(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateTable: got %v, want context.Canceled", err)
	}
	ss, err := NewSnapshotStore(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	if err := ss.Put(cancelled, backend.Snapshot{Stream: s, Sequence: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("snapshot Put: got %v", err)
	}
	if _, err := ss.Get(cancelled, s); !errors.Is(err, context.Canceled) {
		t.Fatalf("snapshot Get: got %v", err)
	}

	// Cancelled in the middle of a load (one item per page): the next page
	// fails with the context's error.
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	n := 0
	var mid error
	for _, err := range b.Load(ctx, s, 0) {
		if err != nil {
			mid = err
			break
		}
		n++
		cancel()
	}
	if n != 1 || !errors.Is(mid, context.Canceled) {
		t.Fatalf("load cancelled after the first record: %d records, then %v", n, mid)
	}
	if got := seqs(load(t, b, s, 0)); got != "1,2,3" {
		t.Fatalf("stream holds [%s]", got)
	}
}

// Items written by hand that do not have the package's layout: loads fail
// with ErrCorruptStream naming the item, never panic, and change nothing;
// other streams load normally.
func TestCorruptItems(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	b, err := NewBackend(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	healthy := streamOf(t)
	mustAppend(t, b, healthy, 0, 3)

	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	str := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	valid := func(s backend.StreamID, first int64, count int) map[string]types.AttributeValue {
		c := commitOf(s, first-1, recs(s, first, count, "h"))
		return encodeCommit(s.String(), c, layoutOf(c.Records), testMarker(s.String()))
	}
	event := func(item map[string]types.AttributeValue, i int) map[string]types.AttributeValue {
		return item[attrEvents].(*types.AttributeValueMemberL).Value[i].(*types.AttributeValueMemberM).Value
	}
	cases := map[string]func(item map[string]types.AttributeValue){
		"eventsNotAList":   func(it map[string]types.AttributeValue) { it[attrEvents] = str("garbage") },
		"eventsMissing":    func(it map[string]types.AttributeValue) { delete(it, attrEvents) },
		"tooFewEvents":     func(it map[string]types.AttributeValue) { it[attrLast] = n("5") },
		"tooManyEvents":    func(it map[string]types.AttributeValue) { it[attrLast] = n("1") },
		"lastMissing":      func(it map[string]types.AttributeValue) { delete(it, attrLast) },
		"lastNotANumber":   func(it map[string]types.AttributeValue) { it[attrLast] = str("2") },
		"lastFractional":   func(it map[string]types.AttributeValue) { it[attrLast] = n("2.5") },
		"lastHuge":         func(it map[string]types.AttributeValue) { it[attrLast] = n("1000000000000000000000000000000") },
		"lastBeforeFirst":  func(it map[string]types.AttributeValue) { it[attrLast] = n("0") },
		"timeNotANumber":   func(it map[string]types.AttributeValue) { it[attrTime] = str("yesterday") },
		"timeOverflow":     func(it map[string]types.AttributeValue) { it[attrTime] = n("99999999999999999999999") },
		"timePastYear9999": func(it map[string]types.AttributeValue) { it[attrTime] = n("253402300800000000000") },
		"timeFraction":     func(it map[string]types.AttributeValue) { it[attrTime] = n("1.5") },
		"legacyTimeString": func(it map[string]types.AttributeValue) { delete(it, attrTime); it[legacyTime] = str("x") },
		"legacyTimeHuge": func(it map[string]types.AttributeValue) {
			delete(it, attrTime)
			it[legacyTime] = n("1000000000000000000000000000000")
		},
		"commitIDBinary": func(it map[string]types.AttributeValue) {
			it[attrCommitID] = &types.AttributeValueMemberB{Value: []byte("x")}
		},
		"commitIDInvalid": func(it map[string]types.AttributeValue) { it[attrCommitID] = str("has space") },
		"commitIDEmpty":   func(it map[string]types.AttributeValue) { it[attrCommitID] = str("") },
		"metadataNotAMap": func(it map[string]types.AttributeValue) { it[attrMeta] = str("x") },
		"metadataValueNum": func(it map[string]types.AttributeValue) {
			it[attrMeta] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": n("1")}}
		},
		"eventNotAMap": func(it map[string]types.AttributeValue) {
			it[attrEvents].(*types.AttributeValueMemberL).Value[1] = str("e")
		},
		"eventTypeMissing":  func(it map[string]types.AttributeValue) { delete(event(it, 0), evType) },
		"eventTypeEmpty":    func(it map[string]types.AttributeValue) { event(it, 0)[evType] = str("") },
		"eventTypeNumber":   func(it map[string]types.AttributeValue) { event(it, 0)[evType] = n("7") },
		"eventDataString":   func(it map[string]types.AttributeValue) { event(it, 1)[evData] = str("{}") },
		"eventDataMap":      func(it map[string]types.AttributeValue) { event(it, 1)[evData] = &types.AttributeValueMemberM{} },
		"eventTimeString":   func(it map[string]types.AttributeValue) { event(it, 1)[evTime] = str("now") },
		"eventTimeTooEarly": func(it map[string]types.AttributeValue) { event(it, 1)[evTime] = n("-62135596800000000001") },
		"eventLegacyTime":   func(it map[string]types.AttributeValue) { event(it, 1)[legacyTime] = str("1") },
		"eventMetadataList": func(it map[string]types.AttributeValue) { event(it, 1)[evMeta] = &types.AttributeValueMemberL{} },
		"eventsNull": func(it map[string]types.AttributeValue) {
			it[attrEvents] = &types.AttributeValueMemberNULL{Value: true}
		},
		"eventNestedGarbage": func(it map[string]types.AttributeValue) {
			event(it, 0)[evData] = &types.AttributeValueMemberBOOL{Value: true}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			s := streamOf(t)
			mustAppend(t, b, s, 0, 2) // a good first commit (1-2)
			item := valid(s, 3, 2)    // the bad commit (3-4)
			mutate(item)
			if _, err := client.PutItem(bg, &ddb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
				t.Fatalf("writing the bad item: %v", err)
			}
			for _, fresh := range []bool{false, true} {
				lb := backend.Backend(b)
				if fresh {
					if lb, err = NewBackend(bg, client, table, WithBoundaryCache(0)); err != nil {
						t.Fatal(err)
					}
				}
				got, err := loadErr(lb, bg, s, 0)
				var ce *backend.CorruptError
				if !errors.Is(err, backend.ErrCorruptStream) || !errors.As(err, &ce) {
					t.Fatalf("Load: got %d records then %v, want a *backend.CorruptError", got, err)
				}
				if ce.Stream != s || !strings.Contains(ce.Where, table) || ce.Reason == "" {
					t.Fatalf("error fields: %+v", ce)
				}
				if got != 2 {
					t.Fatalf("records before the bad item: %d, want 2", got)
				}
				if _, err := loadErr(lb, bg, s, 3); !errors.Is(err, backend.ErrCorruptStream) {
					t.Fatalf("Load after 3 (inside the bad item): %v", err)
				}
			}
			// An append that must read the head fails rather than guess.
			nb, err := NewBackend(bg, client, table, WithBoundaryCache(0))
			if err != nil {
				t.Fatal(err)
			}
			err = appendRecs(bg, nb, s, 4, recs(s, 5, 1, "after"))
			if _, lastBroken := map[string]bool{"lastMissing": true, "lastNotANumber": true, "lastFractional": true,
				"lastHuge": true, "lastBeforeFirst": true}[name]; lastBroken && !errors.Is(err, backend.ErrCorruptStream) {
				t.Fatalf("append over a bad head item: got %v, want ErrCorruptStream", err)
			}
			// The item is untouched and other streams are fine.
			out, err := client.GetItem(bg, &ddb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
				Key: map[string]types.AttributeValue{attrStream: str(s.String()), attrSeq: n("3")}})
			if err != nil || !sameItem(out.Item, item) {
				t.Fatalf("the bad item changed: %v", err)
			}
			if got := seqs(load(t, b, healthy, 0)); got != "1,2,3" {
				t.Fatalf("healthy stream: [%s]", got)
			}
		})
	}

	t.Run("itemOfAnotherStreamCannotBeQueried", func(t *testing.T) {
		// The partition key is the stream, so a Query never returns another
		// stream's items; two aggregate types sharing a key stay apart.
		a := streamOf(t)
		c := backend.StreamID{AggregateType: "Other", Key: a.Key}
		mustAppend(t, b, a, 0, 1)
		if n := len(load(t, b, c, 0)); n != 0 {
			t.Fatalf("%d records leaked across streams", n)
		}
	})
}

// sameItem compares two items value by value.
func sameItem(a, b map[string]types.AttributeValue) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !sameValue(v, b[k]) {
			return false
		}
	}
	return true
}

func sameValue(a, b types.AttributeValue) bool {
	switch x := a.(type) {
	case *types.AttributeValueMemberS:
		y, ok := b.(*types.AttributeValueMemberS)
		return ok && x.Value == y.Value
	case *types.AttributeValueMemberN:
		y, ok := b.(*types.AttributeValueMemberN)
		return ok && x.Value == y.Value
	case *types.AttributeValueMemberB:
		y, ok := b.(*types.AttributeValueMemberB)
		return ok && string(x.Value) == string(y.Value)
	case *types.AttributeValueMemberBOOL:
		y, ok := b.(*types.AttributeValueMemberBOOL)
		return ok && x.Value == y.Value
	case *types.AttributeValueMemberNULL:
		_, ok := b.(*types.AttributeValueMemberNULL)
		return ok
	case *types.AttributeValueMemberL:
		y, ok := b.(*types.AttributeValueMemberL)
		if !ok || len(x.Value) != len(y.Value) {
			return false
		}
		for i := range x.Value {
			if !sameValue(x.Value[i], y.Value[i]) {
				return false
			}
		}
		return true
	case *types.AttributeValueMemberM:
		y, ok := b.(*types.AttributeValueMemberM)
		return ok && sameItem(x.Value, y.Value)
	}
	return false
}

func TestCorruptSnapshot(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	ss, err := NewSnapshotStore(bg, client, table)
	if err != nil {
		t.Fatal(err)
	}
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	str := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	cases := map[string]map[string]types.AttributeValue{
		"seqMissing":     {attrSnapVersion: n("1")},
		"seqString":      {attrSnapSeq: str("3"), attrSnapVersion: n("1")},
		"seqNegative":    {attrSnapSeq: n("-3"), attrSnapVersion: n("1")},
		"versionHuge":    {attrSnapSeq: n("3"), attrSnapVersion: n("1e40")},
		"versionMissing": {attrSnapSeq: n("3")},
		"stateString":    {attrSnapSeq: n("3"), attrSnapVersion: n("1"), attrSnapState: str("x")},
		"timeString":     {attrSnapSeq: n("3"), attrSnapVersion: n("1"), attrSnapTime: str("x")},
	}
	for name, item := range cases {
		t.Run(name, func(t *testing.T) {
			s := streamOf(t)
			item[attrStream] = str(s.String())
			item[attrSeq] = n("0")
			if _, err := client.PutItem(bg, &ddb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
				t.Fatal(err)
			}
			_, err := ss.Get(bg, s)
			var ce *backend.CorruptError
			if !errors.Is(err, backend.ErrInvalidSnapshot) || !errors.Is(err, backend.ErrCorruptStream) || !errors.As(err, &ce) {
				t.Fatalf("got %v, want ErrInvalidSnapshot and *backend.CorruptError", err)
			}
			// A later good snapshot replaces the corrupt one (and any
			// good one does when the corrupt one's sequence is unreadable).
			if err := ss.Put(bg, backend.Snapshot{Stream: s, Sequence: 4, Version: 2, State: []byte("ok")}); err != nil {
				t.Fatal(err)
			}
			got, err := ss.Get(bg, s)
			if err != nil || got.Sequence != 4 || string(got.State) != "ok" {
				t.Fatalf("after a good Put: %+v %v", got, err)
			}
		})
	}
}

// The test transport itself must not be what makes retries happen: a
// connection-level failure is retried too.
func TestConnectionErrorsAreRetried(t *testing.T) {
	p := newProxy(500, "x", nil)
	client := newClient(t, withHTTP(p), withQuickRetries())
	b := newBackend(t, client)
	s := streamOf(t)
	p.setDecide(func(op string, n int) fault {
		if op == "PutItem" && n == 1 {
			return refuseConn
		}
		return pass
	})
	if err := appendRecs(bg, b, s, 0, recs(s, 1, 1, "x")); err != nil {
		t.Fatalf("Append after one dropped connection: %v", err)
	}
	if n := p.count("PutItem"); n != 2 {
		t.Fatalf("PutItem attempts: %d, want 2", n)
	}
}

var _ aws.HTTPClient = (*proxy)(nil)
