package mongostore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/mongostore"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Metadata no store can keep exactly (an empty key, invalid UTF-8) is
// refused before anything is sent: the server receives no insert and holds
// no document.
func TestInvalidMetadataStoresNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	counter := &commandCounter{counts: map[string]int{}}
	client := connect(t, options.Client().SetMonitor(counter.monitor()))
	counter.db = newDatabase(t, client)
	name := newCollection()
	b, err := mongostore.NewBackend(ctx, client, counter.db, name)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := stream("bad-metadata")
	for what, md := range map[string]backend.Metadata{
		"empty key":           {"": "v"},
		"invalid UTF-8 value": {"correlation_id": "corr-\xff"},
		"invalid UTF-8 key":   {"k\xc3": "v"},
	} {
		c := commitOf(s, 0, 2)
		c.Records[1].Metadata = md // the commit's first record is fine
		counter.take()
		if err := b.Append(ctx, c); !errors.Is(err, backend.ErrInvalidMetadata) || !strings.Contains(err.Error(), s.String()) {
			t.Fatalf("%s: got %v, want ErrInvalidMetadata naming the stream", what, err)
		}
		if sent := counter.take(); len(sent) != 0 {
			t.Fatalf("%s: a refused commit sent commands: %v", what, sent)
		}
	}
	if n, err := client.Database(counter.db).Collection(name).CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Fatalf("refused commits left %d documents on the server (%v)", n, err)
	}
	// The stream is still empty: a valid commit after expected 0 succeeds.
	if err := b.Append(ctx, commitOf(s, 0, 1)); err != nil {
		t.Fatalf("append after refused ones: %v", err)
	}
}

// Snapshots at a sequence below 1 are refused before anything is sent.
func TestInvalidSnapshotSequence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	counter := &commandCounter{counts: map[string]int{}}
	client := connect(t, options.Client().SetMonitor(counter.monitor()))
	counter.db = newDatabase(t, client)
	name := newCollection()
	st, err := mongostore.NewSnapshotStore(client, counter.db, name)
	if err != nil {
		t.Fatal(err)
	}
	s := stream("snap-seq")
	for _, seq := range []int64{0, -1, -1 << 62} {
		counter.take()
		err := st.Put(ctx, backend.Snapshot{Stream: s, Sequence: seq, Version: 1, State: []byte("x"), Time: time.Now()})
		if !errors.Is(err, backend.ErrInvalidSnapshot) || !strings.Contains(err.Error(), s.String()) {
			t.Fatalf("Put at sequence %d: got %v, want ErrInvalidSnapshot naming the stream", seq, err)
		}
		if sent := counter.take(); len(sent) != 0 {
			t.Fatalf("Put at sequence %d sent commands: %v", seq, sent)
		}
	}
	if n, err := client.Database(counter.db).Collection(name).CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Fatalf("refused snapshots left %d documents (%v)", n, err)
	}
}

// Context errors come back wrapped, still matching context.Canceled or
// context.DeadlineExceeded, and naming the stream (where there is one) and
// the operation, whether the context was done before the call or ends
// while a load reads its cursor.
func TestContextErrorsNameStreamAndOperation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mongostore.WithBatchSize(1))
	bg := context.Background()
	s := stream("ctx")
	for i := int64(0); i < 3; i++ {
		if err := f.b.Append(bg, commitOf(s, i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := mongostore.NewSnapshotStore(f.client, f.db, newCollection())
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(bg)
	cancel()
	expired, cancel2 := context.WithDeadline(bg, time.Now().Add(-time.Second))
	defer cancel2()

	check := func(what, op string, named backend.StreamID, err error, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", what, err, want)
			return
		}
		msg := err.Error()
		if !strings.Contains(msg, "mongostore: ") || !strings.Contains(msg, op) || (named != backend.StreamID{} && !strings.Contains(msg, named.String())) {
			t.Errorf("%s: %q does not name the operation %q and the stream %s", what, msg, op, named)
		}
	}
	firstErr := func(seq func(yield func(backend.Record, error) bool)) error {
		for _, err := range seq {
			if err != nil {
				return err
			}
		}
		return nil
	}
	for name, c := range map[string]struct {
		ctx  context.Context
		want error
	}{"cancelled": {cancelled, context.Canceled}, "expired": {expired, context.DeadlineExceeded}} {
		check(name+" Append", "append to", s, f.b.Append(c.ctx, commitOf(s, 3, 1)), c.want)
		check(name+" Load", "load", s, firstErr(f.b.Load(c.ctx, s, 0)), c.want)
		var pendingErr error
		for _, err := range f.b.Pending(c.ctx, 0) {
			pendingErr = err
			break
		}
		check(name+" Pending", "pending", backend.StreamID{}, pendingErr, c.want)
		check(name+" MarkPublished", "published", s, f.b.MarkPublished(c.ctx, []backend.CommitRef{{Stream: s, First: 1, Last: 1, ID: "x"}}), c.want)
		_, err := st.Get(c.ctx, s)
		check(name+" snapshot Get", "get snapshot", s, err, c.want)
		check(name+" snapshot Put", "put snapshot", s, st.Put(c.ctx, backend.Snapshot{Stream: s, Sequence: 1, State: []byte("x")}), c.want)
		check(name+" snapshot Delete", "delete snapshot", s, st.Delete(c.ctx, s), c.want)
	}
	// A context cancelled while a load reads its cursor (one commit per
	// batch): the error after the first record names the stream too.
	ctx, cancel3 := context.WithCancel(bg)
	defer cancel3()
	var loadErr error
	for _, err := range f.b.Load(ctx, s, 0) {
		if err != nil {
			loadErr = err
			break
		}
		cancel3()
	}
	check("Load cancelled midway", "load", s, loadErr, context.Canceled)
	// Nothing was stored by the cancelled appends.
	if got, err := load(bg, f.b, s, 0); err != nil || len(got) != 3 {
		t.Fatalf("after cancelled appends: %d records, %v", len(got), err)
	}
}
