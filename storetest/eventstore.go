package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
)

var unique atomic.Int64

// uniqueKey returns a stream key that no other test uses.
func uniqueKey(t *testing.T) string {
	return t.Name() + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatInt(unique.Add(1), 10)
}

// recorder is a Loader that keeps the records it is given, to check what a
// store returns (metadata, timestamps) beyond what an aggregate sees.
type recorder struct {
	stream es.StreamID
	seq    int64
	recs   []es.Record
}

func (r *recorder) Stream() es.StreamID { return r.stream }
func (r *recorder) Sequence() int64     { return r.seq }
func (r *recorder) State() any          { return &struct{}{} }
func (r *recorder) Apply(rec es.Record) error {
	if rec.Sequence != r.seq+1 {
		return &es.SequenceError{Stream: r.stream, Expected: r.seq + 1, Got: rec.Sequence}
	}
	r.seq = rec.Sequence
	r.recs = append(r.recs, rec)
	return nil
}
func (r *recorder) Restore(int64, []byte, []string) error {
	r.seq, r.recs = 0, nil
	return es.ErrInvalidSnapshot // a recorder wants every record
}

// RunEventStore runs the EventStore conformance suite against the stores
// newStore returns (a store or a middleware stack). newStore is called once
// per subtest; the suite closes each store. Subtests use stream keys of their
// own, so the stores may share one database.
func RunEventStore(t *testing.T, newStore func(t *testing.T) es.EventStore) {
	t.Helper()
	ctx := context.Background()
	reg := probe.NewRegistry()
	open := func(t *testing.T) es.EventStore {
		s := newStore(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	newProbe := func(t *testing.T, store es.EventStore, key, typ string) *probe.Probe {
		t.Helper()
		p, err := probe.New(key, typ, reg, store)
		if err != nil {
			t.Fatalf("NewProbe: %v", err)
		}
		return p
	}
	fresh := func(t *testing.T, store es.EventStore, key, typ string) *probe.Probe {
		t.Helper()
		p := newProbe(t, store, key, typ)
		if err := p.Refresh(ctx); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		return p
	}
	key := uniqueKey

	t.Run("EmptyStream", func(t *testing.T) {
		s := open(t)
		p := fresh(t, s, key(t), "")
		if p.SequenceNumber() != 0 || p.Count != 0 {
			t.Fatalf("empty stream: sequence %d, count %d", p.SequenceNumber(), p.Count)
		}
	})

	t.Run("RoundTripKinds", func(t *testing.T) {
		s := open(t)
		k := key(t)
		want := probe.SampleKinds()
		if err := newProbe(t, s, k, "").Handle(ctx, probe.RecordKinds{Kinds: want}); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		p := fresh(t, s, k, "")
		if p.Kinds == nil {
			t.Fatal("KindsRecorded was not replayed")
		}
		probe.CheckKinds(t, *p.Kinds, want)
	})

	t.Run("OrderAndIncrementalRefresh", func(t *testing.T) {
		s := open(t)
		k := key(t)
		w := newProbe(t, s, k, "")
		r := fresh(t, s, k, "")
		var want []string
		for i, n := range []int{1, 3, 2} {
			batch := fmt.Sprintf("b%d", i)
			if err := w.Handle(ctx, probe.Add{Batch: batch, Size: n}); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			for j := 0; j < n; j++ {
				want = append(want, fmt.Sprintf("%s-%d", batch, j))
			}
			if err := r.Refresh(ctx); err != nil {
				t.Fatalf("incremental Refresh: %v", err)
			}
		}
		for _, p := range []*probe.Probe{w, r, fresh(t, s, k, "")} {
			if got := strings.Join(p.IDs, ","); got != strings.Join(want, ",") {
				t.Fatalf("events out of order or missing:\n got  %s\n want %s", got, strings.Join(want, ","))
			}
			if p.SequenceNumber() != int64(len(want)) {
				t.Fatalf("sequence %d, want %d", p.SequenceNumber(), len(want))
			}
		}
	})

	t.Run("MetadataAndTimestamps", func(t *testing.T) {
		s := open(t)
		k := key(t)
		mctx := es.WithCorrelationID(ctx, "corr-42")
		mctx = es.WithCausationID(mctx, "cause-7")
		mctx = es.WithMetadata(mctx, "tenant", "ünïcode")
		before := time.Now()
		if err := newProbe(t, s, k, "").Handle(mctx, probe.Add{Batch: "m", Size: 2}); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		rec := &recorder{stream: es.StreamID{AggregateType: "Probe", Key: k}}
		if err := s.Refresh(ctx, rec); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if len(rec.recs) != 2 {
			t.Fatalf("loaded %d records, want 2", len(rec.recs))
		}
		for _, r := range rec.recs {
			if r.Metadata[es.MetadataCorrelationID] != "corr-42" || r.Metadata[es.MetadataCausationID] != "cause-7" || r.Metadata["tenant"] != "ünïcode" {
				t.Fatalf("metadata not stamped on every event: %v", r.Metadata)
			}
			if r.Timestamp.Before(before.Add(-time.Millisecond)) || r.Timestamp.After(after.Add(time.Millisecond)) {
				t.Fatalf("timestamp %v outside the commit window %v..%v", r.Timestamp, before, after)
			}
			if r.EventType != "Added" {
				t.Fatalf("event type %q, want Added", r.EventType)
			}
		}
		if !rec.recs[0].Timestamp.Equal(rec.recs[1].Timestamp) {
			t.Fatalf("events of one commit carry different timestamps")
		}
	})

	t.Run("TwoAggregateTypesOneKey", func(t *testing.T) {
		s := open(t)
		k := key(t)
		if err := newProbe(t, s, k, "Alpha").Handle(ctx, probe.Add{Batch: "a", Size: 2}); err != nil {
			t.Fatal(err)
		}
		if err := newProbe(t, s, k, "Beta").Handle(ctx, probe.Add{Batch: "b", Size: 3}); err != nil {
			t.Fatalf("same key, other type: %v", err)
		}
		if a, b := fresh(t, s, k, "Alpha"), fresh(t, s, k, "Beta"); a.Count != 2 || b.Count != 3 {
			t.Fatalf("streams mixed: Alpha has %d events, Beta %d", a.Count, b.Count)
		}
	})

	t.Run("LongStream", func(t *testing.T) {
		s := open(t)
		k := key(t)
		w := newProbe(t, s, k, "")
		const commands, size = 100, 100
		for i := 0; i < commands; i++ {
			if err := w.Handle(ctx, probe.Add{Batch: fmt.Sprintf("c%d", i), Size: size}); err != nil {
				t.Fatalf("Handle %d: %v", i, err)
			}
		}
		p := fresh(t, s, k, "")
		if p.Count != commands*size || p.SequenceNumber() != commands*size {
			t.Fatalf("count %d sequence %d, want %d", p.Count, p.SequenceNumber(), commands*size)
		}
		for i, id := range p.IDs {
			if want := fmt.Sprintf("c%d-%d", i/size, i%size); id != want {
				t.Fatalf("event %d is %s, want %s", i, id, want)
			}
		}
	})

	t.Run("CommitWholeOrNothing", func(t *testing.T) {
		s := open(t)
		k := key(t)
		p := newProbe(t, s, k, "")
		err := p.Handle(ctx, probe.AddThenFail{Batch: "half"})
		if !errors.Is(err, es.ErrEncoding) {
			t.Fatalf("unencodable event: got %v, want ErrEncoding", err)
		}
		if got := fresh(t, s, k, ""); got.Count != 0 {
			t.Fatalf("a failed commit stored %d events", got.Count)
		}
		// The losing side of a conflict stores nothing either.
		a, b := fresh(t, s, k, ""), fresh(t, s, k, "")
		b.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 1})
		if err := b.Run(ctx, func(context.Context) ([]es.Event, error) {
			if err := a.Handle(ctx, probe.Add{Batch: "win", Size: 3}); err != nil { // commits first
				return nil, err
			}
			return []es.Event{probe.Added{ID: "lose-0"}, probe.Added{ID: "lose-1"}, probe.Added{ID: "lose-2"}}, nil
		}); !errors.Is(err, es.ErrConcurrency) {
			t.Fatalf("stale writer: got %v, want ErrConcurrency", err)
		}
		got := fresh(t, s, k, "")
		if strings.Join(got.IDs, ",") != "win-0,win-1,win-2" {
			t.Fatalf("after a lost conflict the stream holds %v", got.IDs)
		}
		// Both instances stay usable.
		if err := p.Handle(ctx, probe.Add{Batch: "p", Size: 1}); err != nil {
			t.Fatalf("instance unusable after encoding failure: %v", err)
		}
		if err := b.Handle(ctx, probe.Add{Batch: "b", Size: 1}); err != nil {
			t.Fatalf("instance unusable after conflict: %v", err)
		}
		if got := fresh(t, s, k, ""); strings.Join(got.IDs, ",") != "win-0,win-1,win-2,p-0,b-0" {
			t.Fatalf("stream holds %v", got.IDs)
		}
		if b.Count != 5 || b.SequenceNumber() != 5 {
			t.Fatalf("instance state after retry: count %d sequence %d, want 5", b.Count, b.SequenceNumber())
		}
	})

	t.Run("HandlerErrorStoresNothing", func(t *testing.T) {
		s := open(t)
		k := key(t)
		p := newProbe(t, s, k, "")
		if err := p.Handle(ctx, probe.Add{Batch: "ok", Size: 1}); err != nil {
			t.Fatal(err)
		}
		if err := p.Handle(ctx, probe.Reject{}); !errors.Is(err, probe.ErrRejected) {
			t.Fatalf("got %v, want the handler's error", err)
		}
		if err := p.Handle(ctx, probe.Add{Batch: "ok2", Size: 1}); err != nil {
			t.Fatal(err)
		}
		if got := fresh(t, s, k, ""); strings.Join(got.IDs, ",") != "ok-0,ok2-0" {
			t.Fatalf("stream holds %v", got.IDs)
		}
	})

	t.Run("RacingWritersOneAggregate", func(t *testing.T) {
		s := open(t)
		k := key(t)
		const writers, perWriter = 16, 8
		var acked atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, writers*perWriter)
		rctx, cancel := context.WithTimeout(ctx, deadline(t)*9/10)
		defer cancel()
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := probe.New(k, "", reg, s)
				if err != nil {
					errs <- err
					return
				}
				p.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 1000, MinDelay: 100 * time.Microsecond, MaxDelay: 5 * time.Millisecond})
				for i := 0; i < perWriter; i++ {
					size := 1 + (w+i)%3
					if err := p.Handle(rctx, probe.Add{Batch: fmt.Sprintf("w%d-%d", w, i), Size: size}); err != nil {
						errs <- err
						continue
					}
					acked.Add(int64(size))
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("command failed: %v", err)
		}
		got := fresh(t, s, k, "")
		if got.Count != acked.Load() {
			t.Fatalf("stored %d events, acknowledged %d", got.Count, acked.Load())
		}
		checkBatches(t, k, got.IDs)
	})

	t.Run("ConflictRetriedFromFreshState", func(t *testing.T) {
		s := open(t)
		k := key(t)
		a, b := fresh(t, s, k, ""), fresh(t, s, k, "")
		calls := 0
		err := b.Run(ctx, func(context.Context) ([]es.Event, error) {
			calls++
			if calls == 1 { // another writer commits while b decides
				if err := a.Handle(ctx, probe.Add{Batch: "a", Size: 2}); err != nil {
					return nil, err
				}
			}
			return []es.Event{probe.Added{ID: fmt.Sprintf("b%d", b.Count)}}, nil
		})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if calls != 2 {
			t.Fatalf("decide ran %d times, want 2 (one conflict, one retry)", calls)
		}
		if got := fresh(t, s, k, ""); strings.Join(got.IDs, ",") != "a-0,a-1,b2" {
			t.Fatalf("stream holds %v; the retry must decide on fresh state", got.IDs)
		}
		if b.Count != 3 || b.SequenceNumber() != 3 {
			t.Fatalf("retried instance: count %d sequence %d, want 3 (no effect of the failed attempt may survive)", b.Count, b.SequenceNumber())
		}
	})

	t.Run("CommitIDs", func(t *testing.T) {
		s := open(t)
		k := key(t)
		p := newProbe(t, s, k, "")
		for i := 0; i < 3; i++ {
			if err := p.Handle(ctx, probe.Add{Batch: fmt.Sprintf("c%d", i), Size: 2}); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Handle(es.WithCommandID(ctx, "cmd-"+k), probe.Add{Batch: "given", Size: 1}); err != nil {
			t.Fatal(err)
		}
		rec := &recorder{stream: es.StreamID{AggregateType: "Probe", Key: k}}
		if err := s.Refresh(ctx, rec); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if len(rec.recs) != 7 {
			t.Fatalf("loaded %d records, want 7", len(rec.recs))
		}
		seen := map[string]bool{}
		for i := 0; i < 6; i += 2 {
			a, b := rec.recs[i].CommitID, rec.recs[i+1].CommitID
			if a == "" || a != b {
				t.Fatalf("the events of one commit carry commit IDs %q and %q", a, b)
			}
			if seen[a] {
				t.Fatalf("two commits share the ID %q", a)
			}
			seen[a] = true
		}
		if got := rec.recs[6].CommitID; got != "cmd-"+k {
			t.Fatalf("a command run WithCommandID was stored with commit ID %q", got)
		}
	})

	t.Run("RepeatedCommandAppliesOnce", func(t *testing.T) {
		s := open(t)
		k := key(t)
		cmd := func(i int) context.Context { return es.WithCommandID(ctx, fmt.Sprintf("%s-cmd%d", k, i)) }
		p := newProbe(t, s, k, "")
		if err := p.Handle(cmd(0), probe.Add{Batch: "once", Size: 2}); err != nil {
			t.Fatal(err)
		}
		// Repeated on the same instance, and on a fresh one.
		if err := p.Handle(cmd(0), probe.Add{Batch: "twice", Size: 2}); err != nil {
			t.Fatalf("repeat on the same instance: %v", err)
		}
		q := newProbe(t, s, k, "")
		if err := q.Handle(cmd(0), probe.Add{Batch: "thrice", Size: 2}); err != nil {
			t.Fatalf("repeat on a fresh instance: %v", err)
		}
		if q.Count != 2 || q.SequenceNumber() != 2 {
			t.Fatalf("a fresh instance that repeated the command holds %d events at %d, want the 2 stored", q.Count, q.SequenceNumber())
		}
		// Far behind other commits (past any snapshot interval, inside the
		// idempotency window), from a fresh instance.
		for i := 1; i <= 60; i++ {
			if err := p.Handle(cmd(i), probe.Add{Batch: fmt.Sprintf("b%d", i), Size: 1}); err != nil {
				t.Fatal(err)
			}
		}
		for _, i := range []int{0, 1, 30, 60} {
			r := newProbe(t, s, k, "")
			if err := r.Handle(cmd(i), probe.Add{Batch: "again", Size: 5}); err != nil {
				t.Fatalf("repeat of command %d: %v", i, err)
			}
			if r.Count != 62 {
				t.Fatalf("after repeating command %d the aggregate holds %d events, want 62", i, r.Count)
			}
		}
		got := fresh(t, s, k, "")
		if got.Count != 62 {
			t.Fatalf("the stream holds %d events, want 62: a repeated command was applied again (%v)", got.Count, got.IDs)
		}
		// A repeat with the same ID is recognised between racing writers too.
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := probe.New(k, "", reg, s)
				if err == nil {
					p.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 100, MinDelay: 100 * time.Microsecond, MaxDelay: 5 * time.Millisecond})
					err = p.Handle(cmd(1000), probe.Add{Batch: "racing-repeat", Size: 1})
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("racing repeats: %v", err)
			}
		}
		if got := fresh(t, s, k, ""); got.Count != 63 {
			t.Fatalf("8 racing repeats of one command stored %d events, want 1", got.Count-62)
		}
	})

	t.Run("InvalidMetadataStoresNothing", func(t *testing.T) {
		s := open(t)
		k := key(t)
		p := newProbe(t, s, k, "")
		for _, mctx := range []context.Context{
			es.WithMetadata(ctx, "corr", "corr-\xff"),
			es.WithMetadata(ctx, "", "empty key"),
		} {
			if err := p.Handle(mctx, probe.Add{Batch: "md", Size: 1}); !errors.Is(err, es.ErrInvalidMetadata) {
				t.Fatalf("got %v, want ErrInvalidMetadata", err)
			}
		}
		if err := p.Handle(es.WithCommandID(ctx, "has space"), probe.Add{Batch: "id", Size: 1}); !errors.Is(err, es.ErrInvalidCommitID) {
			t.Fatalf("a command ID with a space: got %v, want ErrInvalidCommitID", err)
		}
		if got := fresh(t, s, k, ""); got.Count != 0 {
			t.Fatalf("refused commands stored %d events", got.Count)
		}
	})

}
