package mongostore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/stores/mongostore"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestMetadataAndTimeEdgeCases(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	s := stream("edge")
	md := backend.Metadata{"a.b": "dotted", "$c": "dollar", "nul": "x\x00y", "ключ": "значение", "empty value": ""}
	c := commitOf(s, 0, 3)
	for i, r := range []backend.Record{
		{Data: []byte{0}, Timestamp: time.Time{}, Metadata: md},
		{Data: nil, Timestamp: time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC)},
		{Data: []byte("z"), Timestamp: time.Date(2262, 4, 11, 23, 47, 16, 854_775_807, time.UTC)},
	} {
		c.Records[i].Data, c.Records[i].Timestamp, c.Records[i].Metadata = r.Data, r.Timestamp, r.Metadata
	}
	if err := f.b.Append(ctx, c); err != nil {
		t.Fatalf("Append: %v", err)
	}
	got, err := load(ctx, f.b, s, 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("Load: %d records, %v", len(got), err)
	}
	for i, g := range got {
		w := c.Records[i]
		if !g.Timestamp.Equal(w.Timestamp) || !bytes.Equal(g.Data, w.Data) || len(g.Metadata) != len(w.Metadata) || g.CommitID != c.ID {
			t.Errorf("record %d: got %v %q %v, want %v %q %v", i, g.Timestamp, g.Data, g.Metadata, w.Timestamp, w.Data, w.Metadata)
		}
		for k, v := range w.Metadata {
			if g.Metadata[k] != v {
				t.Errorf("record %d metadata[%q] = %q, want %q", i, k, g.Metadata[k], v)
			}
		}
	}
}

// TestKeysSharingAPrefix checks that a stream whose key extends another's
// with "/<digits>" (so that its _ids fall inside the other's _id range) is
// kept apart.
func TestKeysSharingAPrefix(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	a, b := stream("k"), stream("k/5")
	for _, s := range []backend.StreamID{a, b, stream("k/0000000000000000001"), {AggregateType: "Probe2", Key: "k"}} {
		if err := f.b.Append(ctx, commitOf(s, 0, 2)); err != nil {
			t.Fatalf("Append %s: %v", s, err)
		}
	}
	for _, s := range []backend.StreamID{a, b} {
		got, err := load(ctx, f.b, s, 0)
		if err != nil || len(got) != 2 {
			t.Fatalf("Load %s: %d records, %v", s, len(got), err)
		}
		if err := f.b.Append(ctx, commitOf(s, 2, 1)); err != nil {
			t.Fatalf("Append %s at 2: %v", s, err)
		}
	}
}

func TestCommitTooLarge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	counter := &commandCounter{counts: map[string]int{}}
	client := connect(t, options.Client().SetMonitor(counter.monitor()))
	counter.db = newDatabase(t, client)
	b, err := mongostore.NewBackend(ctx, client, counter.db, newCollection(), mongostore.WithMaxCommitSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := stream("big")
	big := commitOf(s, 0, 2)
	big.Records[1].Data = bytes.Repeat([]byte("x"), 5000)
	counter.take()
	err = b.Append(ctx, big)
	var tooLarge *backend.CommitTooLargeError
	if !errors.As(err, &tooLarge) || !errors.Is(err, backend.ErrCommitTooLarge) {
		t.Fatalf("got %v, want *CommitTooLargeError", err)
	}
	if tooLarge.Events != 2 || tooLarge.Limit != 4096 || tooLarge.Size <= 5000 || tooLarge.Stream != s {
		t.Fatalf("error fields: %+v", tooLarge)
	}
	if n := counter.take(); len(n) != 0 {
		t.Fatalf("a refused commit sent commands: %v", n)
	}
	if got, err := load(ctx, b, s, 0); err != nil || len(got) != 0 {
		t.Fatalf("a refused commit stored %d records (%v)", len(got), err)
	}

	// The default limit: two 9 MiB events are refused, one event just under
	// the limit is stored and loads back intact.
	d, err := mongostore.NewBackend(ctx, client, counter.db, newCollection())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	huge := commitOf(s, 0, 2)
	huge.Records[0].Data = make([]byte, 9<<20)
	huge.Records[1].Data = make([]byte, 9<<20)
	if err := d.Append(ctx, huge); !errors.As(err, &tooLarge) || tooLarge.Limit != mongostore.DefaultMaxCommitSize {
		t.Fatalf("18 MiB commit: got %v, want *CommitTooLargeError at the default limit", err)
	}
	fits := commitOf(s, 0, 1)
	fits.Records[0].Data = bytes.Repeat([]byte{0xa5}, mongostore.DefaultMaxCommitSize-1024)
	if err := d.Append(ctx, fits); err != nil {
		t.Fatalf("commit just under the default limit: %v", err)
	}
	got, err := load(ctx, d, s, 0)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].Data, fits.Records[0].Data) {
		t.Fatalf("large commit round trip: %d records, %v", len(got), err)
	}
}

// Appends at an expected sequence that is not the end of a commit (inside
// one, or ahead of the head), or at an older boundary, conflict and store
// nothing, whatever the Backend knows: the writer (which remembers the head),
// a Backend that loaded the stream, and one that knows nothing, with and
// without the boundary cache.
func TestExpectedAheadOrInsideCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, opts := range map[string][]mongostore.Option{
		"default": nil,
		"noCache": {mongostore.WithBoundaryCache(0)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, opts...)
			s := stream("ahead")
			if err := f.b.Append(ctx, commitOf(s, 0, 3)); err != nil {
				t.Fatal(err)
			}
			if err := f.b.Append(ctx, commitOf(s, 3, 2)); err != nil { // commits 1-3, 4-5
				t.Fatal(err)
			}
			newBackend := func() *mongostore.Backend {
				b, err := mongostore.NewBackend(ctx, f.client, f.db, f.name, opts...)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			loaded := newBackend()
			if got, err := load(ctx, loaded, s, 0); err != nil || len(got) != 5 {
				t.Fatalf("load: %d records, %v", len(got), err)
			}
			for who, b := range map[string]*mongostore.Backend{"writer": f.b, "loaded": loaded, "fresh": newBackend()} {
				for _, expected := range []int64{0, 1, 2, 3, 4, 6, 7, 1000} {
					if err := b.Append(ctx, commitOf(s, expected, 1)); !errors.Is(err, backend.ErrConcurrency) {
						t.Fatalf("%s: expected %d with head 5: got %v, want ErrConcurrency", who, expected, err)
					}
				}
			}
			if n, err := f.coll.CountDocuments(ctx, bson.D{}); err != nil || n != 2 {
				t.Fatalf("conflicting appends stored documents: %d in the collection (%v)", n, err)
			}
			// The right expected still works, from each kind of Backend.
			if err := f.b.Append(ctx, commitOf(s, 5, 2)); err != nil {
				t.Fatalf("writer: append at the head: %v", err)
			}
			if err := loaded.Append(ctx, commitOf(s, 5, 1)); !errors.Is(err, backend.ErrConcurrency) {
				t.Fatalf("loaded: append at a head that moved on: got %v, want ErrConcurrency", err)
			}
			if err := newBackend().Append(ctx, commitOf(s, 7, 1)); err != nil {
				t.Fatalf("fresh: append at the head: %v", err)
			}
			if err := f.b.Append(ctx, commitOf(s, 7, 1)); !errors.Is(err, backend.ErrConcurrency) {
				t.Fatalf("writer: append at its stale head: got %v, want ErrConcurrency", err)
			}
			if got, err := load(ctx, newBackend(), s, 0); err != nil || len(got) != 8 {
				t.Fatalf("final load: %d records, %v", len(got), err)
			}
		})
	}
}

func TestLoadCancelledMidway(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mongostore.WithBatchSize(1))
	s := stream("cancel")
	for i := int64(0); i < 4; i++ {
		if err := f.b.Append(context.Background(), commitOf(s, i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	var loadErr error
	for _, err := range f.b.Load(ctx, s, 0) {
		if err != nil {
			loadErr = err
			break
		}
		if n++; n == 1 {
			cancel()
		}
	}
	if !errors.Is(loadErr, context.Canceled) {
		t.Fatalf("after %d records: got %v, want context.Canceled", n, loadErr)
	}
	// The backend is still usable.
	if got, err := load(context.Background(), f.b, s, 2); err != nil || len(got) != 2 {
		t.Fatalf("load after a cancelled one: %d records, %v", len(got), err)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if err := f.b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := f.b.EnsureIndexes(ctx); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("EnsureIndexes after Close: %v", err)
	}
	// A backend that does not own its client leaves it connected.
	if err := f.client.Ping(ctx, nil); err != nil {
		t.Fatalf("Close disconnected a client it does not own: %v", err)
	}
}

func TestOpenOwnsClient(t *testing.T) {
	t.Parallel()
	client := connect(t)
	db := newDatabase(t, client)
	ctx := context.Background()
	b, err := mongostore.Open(ctx, mongoURI(t), db, newCollection())
	if err != nil {
		t.Fatal(err)
	}
	owned := b.Client()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := owned.Ping(ctx, nil); !errors.Is(err, mongo.ErrClientDisconnected) {
		t.Fatalf("ping through the client of a closed Open backend: %v, want ErrClientDisconnected", err)
	}
	s := stream("owned")
	if err := b.Append(ctx, commitOf(s, 0, 1)); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := load(ctx, b, s, 0); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Load after Close: %v", err)
	}
}

// TestSmallBatches loads from every position, commit boundaries or not,
// with a cursor batch of one document, so that each commit comes from its
// own getMore.
func TestSmallBatches(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mongostore.WithBatchSize(1))
	ctx := context.Background()
	s := stream("batches")
	head := int64(0)
	for _, n := range []int{3, 1, 4, 1, 5} {
		if err := f.b.Append(ctx, commitOf(s, head, n)); err != nil {
			t.Fatal(err)
		}
		head += int64(n)
	}
	for after := int64(-1); after <= head+1; after++ {
		got, err := load(ctx, f.b, s, after)
		if err != nil {
			t.Fatalf("after %d: %v", after, err)
		}
		from := max(after, 0)
		if want := max(head-from, 0); int64(len(got)) != want {
			t.Fatalf("after %d: %d records, want %d", after, len(got), want)
		}
		for i, r := range got {
			if r.Sequence != from+int64(i)+1 || string(r.Data) != fmt.Sprintf(`{"id":"e%d"}`, r.Sequence) {
				t.Fatalf("after %d: record %d is %d %s", after, i, r.Sequence, r.Data)
			}
		}
	}
	// Stopping early releases the cursor and leaves the backend usable.
	for range f.b.Load(ctx, s, 0) {
		break
	}
	if got, err := load(ctx, f.b, s, head-1); err != nil || len(got) != 1 {
		t.Fatalf("tail after an early stop: %d records, %v", len(got), err)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	_ = mongoURI(t) // skip with the others when there is no server
	addr := closedPort(t)

	// A short server selection timeout in the URI bounds Open.
	_, err := mongostore.Open(context.Background(), "mongodb://"+addr+"/?serverSelectionTimeoutMS=200&connectTimeoutMS=200", "db", "events")
	if !mongo.IsTimeout(err) {
		t.Fatalf("Open of a closed port: got %v, want a server selection timeout", err)
	}

	// So does a context deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = mongostore.Open(ctx, "mongodb://"+addr+"/", "db", "events")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open of a closed port with a deadline: got %v, want context.DeadlineExceeded", err)
	}
	if _, err := mongostore.Open(context.Background(), "not a uri", "db", "events"); err == nil {
		t.Fatal("Open of a malformed URI succeeded")
	}
}

// proxy forwards TCP connections to target until stopped, so that a test can
// take a server away from a client.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
			go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) stop() {
	_ = p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// TestServerGoesAway checks that a Backend whose server disappears reports
// errors, neither conflicts nor panics, within the caller's deadline.
func TestServerGoesAway(t *testing.T) {
	t.Parallel()
	uri := mongoURI(t)
	target := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	if i := strings.IndexAny(target, "/?"); i >= 0 {
		target = target[:i]
	}
	p := newProxy(t, target)
	ctx := context.Background()
	direct := connect(t)
	db := newDatabase(t, direct)
	b, err := mongostore.Open(ctx, "mongodb://"+p.l.Addr().String()+"/?directConnection=true&serverSelectionTimeoutMS=300", db, newCollection())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := stream("away")
	if err := b.Append(ctx, commitOf(s, 0, 1)); err != nil {
		t.Fatal(err)
	}
	p.stop()

	err = b.Append(ctx, commitOf(s, 1, 1))
	if err == nil || errors.Is(err, backend.ErrConcurrency) {
		t.Fatalf("Append without a server: got %v, want a connection error", err)
	}
	_, err = load(ctx, b, s, 0)
	if err == nil || errors.Is(err, backend.ErrCorruptStream) {
		t.Fatalf("Load without a server: got %v, want a connection error", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := load(dctx, b, s, 0); err == nil {
		t.Fatal("Load without a server and with a deadline succeeded")
	}
}

func TestIndexes(t *testing.T) {
	t.Parallel()
	client := connect(t)
	db := newDatabase(t, client)
	ctx := context.Background()

	// Verification only, on a collection without the index.
	name := newCollection()
	if _, err := mongostore.NewBackend(ctx, client, db, name, mongostore.WithoutIndexCreation()); !errors.Is(err, mongostore.ErrIndexMissing) {
		t.Fatalf("verify-only on a new collection: got %v, want ErrIndexMissing", err)
	}
	b, err := mongostore.NewBackend(ctx, client, db, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureIndexes(ctx); err != nil {
		t.Fatalf("EnsureIndexes again: %v", err)
	}
	if _, err := mongostore.NewBackend(ctx, client, db, name, mongostore.WithoutIndexCreation()); err != nil {
		t.Fatalf("verify-only after creation: %v", err)
	}

	// An operator's index with the same keys under another name serves.
	name = newCollection()
	coll := client.Database(db).Collection(name)
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "aggregate", Value: 1}, {Key: "key", Value: 1}, {Key: "first", Value: 1}},
		Options: options.Index().SetName("ops_made").SetUnique(true),
	}); err != nil {
		t.Fatal(err)
	}
	// Without the pending marker, that index is all a Backend needs.
	if _, err := mongostore.NewBackend(ctx, client, db, name, mongostore.WithoutIndexCreation(), mongostore.WithoutOutbox()); err != nil {
		t.Fatalf("verify-only without the pending marker, over an operator's index: %v", err)
	}
	// With it (the default), the pending index is missing.
	if _, err := mongostore.NewBackend(ctx, client, db, name, mongostore.WithoutIndexCreation()); !errors.Is(err, mongostore.ErrIndexMissing) ||
		!strings.Contains(err.Error(), "pending") {
		t.Fatalf("verify-only without the pending index: got %v, want ErrIndexMissing naming it", err)
	}
	if _, err := mongostore.NewBackend(ctx, client, db, name); err != nil {
		t.Fatalf("NewBackend over an operator's index: %v", err)
	}
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 3 { // _id_, ops_made and pending
		t.Fatalf("a second index was created beside the operator's, or no pending index: %v", specs)
	}
	for _, spec := range specs {
		if spec.Name == "pending" && (spec.Unique != nil && *spec.Unique || len(spec.KeysDocument) == 0) {
			t.Fatalf("pending index: %+v", spec)
		}
	}

	// A Backend without the pending marker creates no pending index.
	name = newCollection()
	coll = client.Database(db).Collection(name)
	if _, err := mongostore.NewBackend(ctx, client, db, name, mongostore.WithoutOutbox()); err != nil {
		t.Fatal(err)
	}
	if specs, err := coll.Indexes().ListSpecifications(ctx); err != nil || len(specs) != 2 {
		t.Fatalf("indexes of a collection made without the pending marker: %v, %v", specs, err)
	}

	// A non-unique index with the right keys does not.
	name = newCollection()
	coll = client.Database(db).Collection(name)
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "aggregate", Value: 1}, {Key: "key", Value: 1}, {Key: "first", Value: 1}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := mongostore.NewBackend(ctx, client, db, name, mongostore.WithoutIndexCreation()); !errors.Is(err, mongostore.ErrIndexMissing) {
		t.Fatalf("verify-only over a non-unique index: got %v, want ErrIndexMissing", err)
	}
}

// TestStoreWithAggregate runs a real aggregate through es.NewStore.
func TestStoreWithAggregate(t *testing.T) {
	t.Parallel()
	client := connect(t)
	db := newDatabase(t, client)
	ctx := context.Background()
	b, err := mongostore.NewBackend(ctx, client, db, newCollection())
	if err != nil {
		t.Fatal(err)
	}
	store := es.NewStore(b)
	defer store.Close()
	p, err := probe.New("k", "", probe.NewRegistry(), store)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(ctx, probe.Add{Batch: "a", Size: 3}); err != nil {
		t.Fatal(err)
	}
	q, _ := probe.New("k", "", probe.NewRegistry(), store)
	if err := q.Refresh(ctx); err != nil || q.Count != 3 {
		t.Fatalf("Refresh: count %d, %v", q.Count, err)
	}
}
