package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

// recorder is a Loader that keeps the records it is given, to check what a
// store returns (metadata, timestamps) beyond what an aggregate sees.
type recorder struct {
	stream   es.StreamID
	registry es.EventRegistry
	seq      int64
	recs     []es.Record
}

func (r *recorder) Stream() es.StreamID        { return r.stream }
func (r *recorder) Sequence() int64            { return r.seq }
func (r *recorder) Registry() es.EventRegistry { return r.registry }
func (r *recorder) State() any                 { return &struct{}{} }
func (r *recorder) Apply(rec es.Record) error {
	if rec.Sequence != r.seq+1 {
		return &es.SequenceError{Stream: r.stream, Expected: r.seq + 1, Got: rec.Sequence}
	}
	r.seq = rec.Sequence
	r.recs = append(r.recs, rec)
	return nil
}
func (r *recorder) Restore(int64, []byte) error {
	r.seq, r.recs = 0, nil
	return es.ErrInvalidSnapshot // a recorder wants every record
}

// RunEventStore runs the EventStore conformance suite against the stores
// newStore returns (a store or a middleware stack). The suite closes each.
func RunEventStore(t *testing.T, newStore func(t *testing.T) es.EventStore) {
	t.Helper()
	ctx := context.Background()
	reg := NewRegistry()
	open := func(t *testing.T) es.EventStore {
		s := newStore(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	probe := func(t *testing.T, store es.EventStore, key, typ string) *Probe {
		t.Helper()
		p, err := NewProbe(key, typ, reg, store)
		if err != nil {
			t.Fatalf("NewProbe: %v", err)
		}
		return p
	}
	fresh := func(t *testing.T, store es.EventStore, key, typ string) *Probe {
		t.Helper()
		p := probe(t, store, key, typ)
		if err := p.Refresh(ctx); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		return p
	}
	key := func(t *testing.T) string { return uniqueStream(t, "Probe").Key }

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
		want := SampleKinds()
		if err := probe(t, s, k, "").Handle(ctx, RecordKinds{Kinds: want}); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		p := fresh(t, s, k, "")
		if p.Kinds == nil {
			t.Fatal("KindsRecorded was not replayed")
		}
		CheckKinds(t, *p.Kinds, want)
	})

	t.Run("OrderAndIncrementalRefresh", func(t *testing.T) {
		s := open(t)
		k := key(t)
		w := probe(t, s, k, "")
		r := fresh(t, s, k, "")
		var want []string
		for i, n := range []int{1, 3, 2} {
			batch := fmt.Sprintf("b%d", i)
			if err := w.Handle(ctx, Add{Batch: batch, Size: n}); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			for j := 0; j < n; j++ {
				want = append(want, fmt.Sprintf("%s-%d", batch, j))
			}
			if err := r.Refresh(ctx); err != nil {
				t.Fatalf("incremental Refresh: %v", err)
			}
		}
		for _, p := range []*Probe{w, r, fresh(t, s, k, "")} {
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
		if err := probe(t, s, k, "").Handle(mctx, Add{Batch: "m", Size: 2}); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		rec := &recorder{stream: es.StreamID{AggregateType: "Probe", Key: k}, registry: reg}
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
		if err := probe(t, s, k, "Alpha").Handle(ctx, Add{Batch: "a", Size: 2}); err != nil {
			t.Fatal(err)
		}
		if err := probe(t, s, k, "Beta").Handle(ctx, Add{Batch: "b", Size: 3}); err != nil {
			t.Fatalf("same key, other type: %v", err)
		}
		if a, b := fresh(t, s, k, "Alpha"), fresh(t, s, k, "Beta"); a.Count != 2 || b.Count != 3 {
			t.Fatalf("streams mixed: Alpha has %d events, Beta %d", a.Count, b.Count)
		}
	})

	t.Run("LongStream", func(t *testing.T) {
		s := open(t)
		k := key(t)
		w := probe(t, s, k, "")
		const commands, size = 100, 100
		for i := 0; i < commands; i++ {
			if err := w.Handle(ctx, Add{Batch: fmt.Sprintf("c%d", i), Size: size}); err != nil {
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
		p := probe(t, s, k, "")
		err := p.Handle(ctx, AddThenFail{Batch: "half"})
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
			if err := a.Handle(ctx, Add{Batch: "win", Size: 3}); err != nil { // commits first
				return nil, err
			}
			return []es.Event{Added{ID: "lose-0"}, Added{ID: "lose-1"}, Added{ID: "lose-2"}}, nil
		}); !errors.Is(err, es.ErrConcurrency) {
			t.Fatalf("stale writer: got %v, want ErrConcurrency", err)
		}
		got := fresh(t, s, k, "")
		if strings.Join(got.IDs, ",") != "win-0,win-1,win-2" {
			t.Fatalf("after a lost conflict the stream holds %v", got.IDs)
		}
		// Both instances stay usable.
		if err := p.Handle(ctx, Add{Batch: "p", Size: 1}); err != nil {
			t.Fatalf("instance unusable after encoding failure: %v", err)
		}
		if err := b.Handle(ctx, Add{Batch: "b", Size: 1}); err != nil {
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
		p := probe(t, s, k, "")
		if err := p.Handle(ctx, Add{Batch: "ok", Size: 1}); err != nil {
			t.Fatal(err)
		}
		if err := p.Handle(ctx, Reject{}); !errors.Is(err, ErrRejected) {
			t.Fatalf("got %v, want the handler's error", err)
		}
		if err := p.Handle(ctx, Add{Batch: "ok2", Size: 1}); err != nil {
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
				p, err := NewProbe(k, "", reg, s)
				if err != nil {
					errs <- err
					return
				}
				p.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 1000, MinDelay: 100 * time.Microsecond, MaxDelay: 5 * time.Millisecond})
				for i := 0; i < perWriter; i++ {
					size := 1 + (w+i)%3
					if err := p.Handle(rctx, Add{Batch: fmt.Sprintf("w%d-%d", w, i), Size: size}); err != nil {
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
				if err := a.Handle(ctx, Add{Batch: "a", Size: 2}); err != nil {
					return nil, err
				}
			}
			return []es.Event{Added{ID: fmt.Sprintf("b%d", b.Count)}}, nil
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
}
