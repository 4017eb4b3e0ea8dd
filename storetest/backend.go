package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

// records returns n records of stream numbered from first, with payloads that
// name their batch, so that tests can check batches come back whole.
func records(stream es.StreamID, first int64, n int, batch string) []es.Record {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 987654321, time.UTC)
	out := make([]es.Record, n)
	for i := range out {
		seq := first + int64(i)
		out[i] = es.Record{
			Stream:    stream,
			Sequence:  seq,
			EventType: "Added",
			Data:      []byte(fmt.Sprintf(`{"batch":%q,"index":%d,"size":%d}`, batch, i, n)),
			Timestamp: ts,
			Metadata:  es.Metadata{"batch": batch},
		}
	}
	return out
}

func loadAll(t *testing.T, b es.Backend, stream es.StreamID, after int64) []es.Record {
	t.Helper()
	var out []es.Record
	for r, err := range b.Load(context.Background(), stream, after) {
		if err != nil {
			t.Fatalf("Load(%s, %d): %v", stream, after, err)
		}
		out = append(out, r)
	}
	return out
}

func checkSequence(t *testing.T, recs []es.Record, after int64) {
	t.Helper()
	for i, r := range recs {
		if want := after + int64(i) + 1; r.Sequence != want {
			t.Fatalf("record %d has sequence %d, want %d", i, r.Sequence, want)
		}
	}
}

func uniqueStream(t *testing.T, typ string) es.StreamID {
	return es.StreamID{AggregateType: typ, Key: t.Name() + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
}

// RunBackend runs the Backend conformance suite. newBackend is called once
// per subtest; the suite closes each backend it is given unless the test
// itself closes it.
func RunBackend(t *testing.T, newBackend func(t *testing.T) es.Backend) {
	t.Helper()
	ctx := context.Background()
	open := func(t *testing.T) es.Backend {
		b := newBackend(t)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}

	t.Run("EmptyStream", func(t *testing.T) {
		b := open(t)
		if got := loadAll(t, b, uniqueStream(t, "Probe"), 0); len(got) != 0 {
			t.Fatalf("empty stream yielded %d records", len(got))
		}
	})

	t.Run("RoundTrip", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		ts := time.Date(2026, 11, 22, 1, 2, 3, 123456789, time.UTC)
		in := []es.Record{
			{Stream: s, Sequence: 1, EventType: "Binary", Data: []byte{0, 1, 2, 0xff, '"', '\\', 0x80}, Timestamp: ts,
				Metadata: es.Metadata{es.MetadataCorrelationID: "corr-1", es.MetadataCausationID: "cause-1", "héader": "välue"}},
			{Stream: s, Sequence: 2, EventType: "Json", Data: []byte(`{"big":9007199254740993,"t":"2026-11-22T01:02:03.123456789Z"}`), Timestamp: ts},
			{Stream: s, Sequence: 3, EventType: "Empty", Data: []byte{}, Timestamp: ts},
		}
		if err := b.Append(ctx, s, 0, in); err != nil {
			t.Fatalf("Append: %v", err)
		}
		got := loadAll(t, b, s, 0)
		if len(got) != len(in) {
			t.Fatalf("loaded %d records, want %d", len(got), len(in))
		}
		for i := range in {
			g, w := got[i], in[i]
			if g.Stream != w.Stream || g.Sequence != w.Sequence || g.EventType != w.EventType {
				t.Errorf("record %d identity: got %v/%d/%q want %v/%d/%q", i, g.Stream, g.Sequence, g.EventType, w.Stream, w.Sequence, w.EventType)
			}
			if !bytes.Equal(g.Data, w.Data) {
				t.Errorf("record %d data: got %q want %q", i, g.Data, w.Data)
			}
			if !g.Timestamp.Equal(w.Timestamp) {
				t.Errorf("record %d timestamp: got %v want %v (nanoseconds must survive)", i, g.Timestamp, w.Timestamp)
			}
			if len(g.Metadata) != len(w.Metadata) {
				t.Errorf("record %d metadata: got %v want %v", i, g.Metadata, w.Metadata)
			}
			for k, v := range w.Metadata {
				if g.Metadata[k] != v {
					t.Errorf("record %d metadata[%q]: got %q want %q", i, k, g.Metadata[k], v)
				}
			}
		}
	})

	t.Run("OrderAndAfter", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		for i, n := range []int{3, 1, 4} {
			head := int64(len(loadAll(t, b, s, 0)))
			if err := b.Append(ctx, s, head, records(s, head+1, n, strconv.Itoa(i))); err != nil {
				t.Fatalf("Append %d: %v", i, err)
			}
		}
		for _, after := range []int64{0, 1, 2, 3, 4, 7, 8, 100} {
			got := loadAll(t, b, s, after)
			want := max(0, 8-after)
			if int64(len(got)) != want {
				t.Fatalf("after %d: %d records, want %d", after, len(got), want)
			}
			checkSequence(t, got, after)
		}
	})

	t.Run("Conflict", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		if err := b.Append(ctx, s, 0, records(s, 1, 2, "first")); err != nil {
			t.Fatalf("Append: %v", err)
		}
		for _, expected := range []int64{0, 1, 3, 10} {
			err := b.Append(ctx, s, expected, records(s, expected+1, 2, "loser"))
			if !errors.Is(err, es.ErrConcurrency) {
				t.Fatalf("Append at expected %d with head 2: got %v, want ErrConcurrency", expected, err)
			}
		}
		got := loadAll(t, b, s, 0)
		if len(got) != 2 {
			t.Fatalf("after conflicts the stream has %d records, want 2", len(got))
		}
		for _, r := range got {
			if !bytes.Contains(r.Data, []byte(`"first"`)) {
				t.Fatalf("a losing append stored %q", r.Data)
			}
		}
	})

	t.Run("InvalidAppend", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		bad := records(s, 1, 3, "bad")
		bad[2].Sequence = 5
		if err := b.Append(ctx, s, 0, bad); !errors.Is(err, es.ErrInvalidAppend) {
			t.Fatalf("gap in appended sequences: got %v, want ErrInvalidAppend", err)
		}
		other := records(es.StreamID{AggregateType: "Other", Key: s.Key}, 1, 1, "x")
		if err := b.Append(ctx, s, 0, other); !errors.Is(err, es.ErrInvalidAppend) {
			t.Fatalf("record of another stream: got %v, want ErrInvalidAppend", err)
		}
		if err := b.Append(ctx, es.StreamID{AggregateType: "Probe"}, 0, nil); !errors.Is(err, es.ErrInvalidStream) {
			t.Fatalf("empty key: got %v, want ErrInvalidStream", err)
		}
		if n := len(loadAll(t, b, s, 0)); n != 0 {
			t.Fatalf("invalid appends stored %d records", n)
		}
		if err := b.Append(ctx, s, 0, nil); err != nil {
			t.Fatalf("empty append: %v", err)
		}
	})

	t.Run("TwoAggregateTypesOneKey", func(t *testing.T) {
		b := open(t)
		a := uniqueStream(t, "Alpha")
		c := es.StreamID{AggregateType: "Beta", Key: a.Key}
		if err := b.Append(ctx, a, 0, records(a, 1, 2, "alpha")); err != nil {
			t.Fatal(err)
		}
		if err := b.Append(ctx, c, 0, records(c, 1, 3, "beta")); err != nil {
			t.Fatalf("second type, same key, new stream: %v", err)
		}
		if got := loadAll(t, b, a, 0); len(got) != 2 || got[0].Stream != a {
			t.Fatalf("alpha stream: %d records", len(got))
		}
		if got := loadAll(t, b, c, 0); len(got) != 3 || got[0].Stream != c {
			t.Fatalf("beta stream: %d records", len(got))
		}
	})

	t.Run("LongStream", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		const total, per = 10000, 100
		for i := 0; i < total/per; i++ {
			if err := b.Append(ctx, s, int64(i*per), records(s, int64(i*per+1), per, strconv.Itoa(i))); err != nil {
				t.Fatalf("Append %d: %v", i, err)
			}
		}
		n := int64(0)
		for r, err := range b.Load(ctx, s, 0) {
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			n++
			if r.Sequence != n {
				t.Fatalf("record %d has sequence %d", n, r.Sequence)
			}
		}
		if n != total {
			t.Fatalf("loaded %d records, want %d", n, total)
		}
		// Stopping early must be allowed and leave the backend usable.
		seen := 0
		for _, err := range b.Load(ctx, s, 5000) {
			if err != nil {
				t.Fatal(err)
			}
			if seen++; seen == 3 {
				break
			}
		}
		if got := loadAll(t, b, s, total-1); len(got) != 1 || got[0].Sequence != total {
			t.Fatalf("tail load after an early break: %v", got)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := b.Append(cctx, s, 0, records(s, 1, 1, "c")); err == nil {
			t.Fatal("Append with a cancelled context succeeded")
		}
		if n := len(loadAll(t, b, s, 0)); n != 0 {
			t.Fatalf("cancelled append stored %d records", n)
		}
		if err := b.Append(ctx, s, 0, records(s, 1, 1, "c")); err != nil {
			t.Fatal(err)
		}
		var loadErr error
		for _, err := range b.Load(cctx, s, 0) {
			if err != nil {
				loadErr = err
				break
			}
		}
		if loadErr == nil {
			t.Fatal("Load with a cancelled context yielded no error")
		}
	})

	t.Run("RacingBatches", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		const writers, perWriter, size = 16, 5, 3
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perWriter; i++ {
					batch := fmt.Sprintf("w%d-%d", w, i)
					for attempt := 0; ; attempt++ {
						head := int64(0)
						for r, err := range b.Load(ctx, s, 0) {
							if err != nil {
								errs <- err
								return
							}
							head = r.Sequence
						}
						err := b.Append(ctx, s, head, records(s, head+1, size, batch))
						if err == nil {
							break
						}
						if !errors.Is(err, es.ErrConcurrency) {
							errs <- fmt.Errorf("append: %w", err)
							return
						}
						if attempt > 1000 {
							errs <- fmt.Errorf("writer %d starved", w)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got := loadAll(t, b, s, 0)
		if len(got) != writers*perWriter*size {
			t.Fatalf("stored %d records, want %d (acknowledged appends x batch size)", len(got), writers*perWriter*size)
		}
		checkSequence(t, got, 0)
		seen := map[string]bool{}
		for i := 0; i < len(got); i += size {
			batch := string(got[i].Data)
			batch = batch[:bytes.IndexByte(got[i].Data, ',')]
			if seen[batch] {
				t.Fatalf("batch %s stored twice", batch)
			}
			seen[batch] = true
			for j := 0; j < size; j++ {
				if want := fmt.Sprintf(`,"index":%d,`, j); !bytes.HasPrefix(got[i+j].Data, []byte(batch)) || !bytes.Contains(got[i+j].Data, []byte(want)) {
					t.Fatalf("records %d..%d are not one whole batch: %q", i, i+size-1, got[i+j].Data)
				}
			}
		}
	})

	t.Run("Closed", func(t *testing.T) {
		b := newBackend(t)
		s := uniqueStream(t, "Probe")
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := b.Append(ctx, s, 0, records(s, 1, 1, "x")); !errors.Is(err, es.ErrClosed) {
			t.Fatalf("Append after Close: got %v, want ErrClosed", err)
		}
		var loadErr error
		for _, err := range b.Load(ctx, s, 0) {
			loadErr = err
			break
		}
		if !errors.Is(loadErr, es.ErrClosed) {
			t.Fatalf("Load after Close: got %v, want ErrClosed", loadErr)
		}
	})
}
