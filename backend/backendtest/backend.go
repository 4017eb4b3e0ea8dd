package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
)

// RunBackend runs the Backend conformance suite. newBackend is called once
// per subtest; the suite closes each backend it is given.
func RunBackend(t *testing.T, newBackend func(t *testing.T) backend.Backend, opts ...Option) {
	t.Helper()
	cfg := newConfig(opts)
	ctx := context.Background()
	open := func(t *testing.T) backend.Backend {
		b := newBackend(t)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	appendOK := func(t *testing.T, b backend.Backend, c backend.Commit) {
		t.Helper()
		if err := b.Append(ctx, c); err != nil {
			t.Fatalf("Append to %s after %d: %v", c.Stream, c.Expected, err)
		}
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
		id := newID("round-trip")
		in := backend.Commit{Stream: s, ID: id, Records: []backend.Record{
			{Stream: s, Sequence: 1, EventType: "Binary", Data: []byte{0, 1, 2, 0xff, '"', '\\', 0x80}, Timestamp: testTime, CommitID: id,
				Metadata: backend.Metadata{"correlation_id": "corr-1", "causation_id": "cause-1", "héader": "välue"}},
			{Stream: s, Sequence: 2, EventType: "Json", Data: []byte(`{"big":9007199254740993,"t":"2026-11-22T01:02:03.123456789Z"}`), Timestamp: testTime, CommitID: id},
			{Stream: s, Sequence: 3, EventType: "Empty", Data: []byte{}, Timestamp: testTime, CommitID: id},
		}}
		appendOK(t, b, in)
		checkRecords(t, loadAll(t, b, s, 0), in.Records)
	})

	t.Run("CommitIDs", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		first, second := commit(s, 0, 2, "one"), commit(s, 2, 1, "two")
		appendOK(t, b, first)
		appendOK(t, b, second)
		got := loadAll(t, b, s, 0)
		want := []string{first.ID, first.ID, second.ID}
		for i, r := range got {
			if r.CommitID != want[i] {
				t.Fatalf("record %d has commit ID %q, want %q", i+1, r.CommitID, want[i])
			}
		}
		if got := loadAll(t, b, s, 1); len(got) != 2 || got[0].CommitID != first.ID {
			t.Fatalf("a load starting inside a commit lost its ID: %+v", got)
		}
		for _, bad := range []string{"", "has space", "tab\t", "ünï", strings.Repeat("x", backend.MaxCommitIDLen+1)} {
			err := b.Append(ctx, withID(commit(s, 3, 1, "bad-id"), bad))
			if !errors.Is(err, backend.ErrInvalidCommitID) {
				t.Fatalf("commit ID %q: got %v, want ErrInvalidCommitID", bad, err)
			}
		}
		mismatch := commit(s, 3, 2, "mismatch")
		mismatch.Records[1].CommitID = "other"
		if err := b.Append(ctx, mismatch); !errors.Is(err, backend.ErrInvalidAppend) {
			t.Fatalf("a record with another commit ID: got %v, want ErrInvalidAppend", err)
		}
		if n := len(loadAll(t, b, s, 0)); n != 3 {
			t.Fatalf("refused commits stored records: %d in the stream, want 3", n)
		}
	})

	t.Run("Timestamps", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		local := time.FixedZone("UTC+05:30", 5*3600+1800)
		times := []time.Time{
			time.Unix(0, 0).UTC(), // the epoch, which must not read back as the zero time
			time.Time{},           // the zero time
			time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC), // before 1970
			time.Date(1066, 10, 14, 9, 0, 0, 1, time.UTC),
			time.Date(2026, 11, 30, 12, 0, 0, 123456789, local), // a local zone
			time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
			backend.MaxTime,
			time.Date(2262, 4, 11, 23, 47, 16, 854775808, time.UTC), // past Unix nanoseconds
		}
		id := newID("times")
		c := backend.Commit{Stream: s, ID: id}
		for i, ts := range times { // different per event within one commit
			c.Records = append(c.Records, backend.Record{Stream: s, Sequence: int64(i + 1), EventType: "T", Data: []byte("{}"), Timestamp: ts, CommitID: id})
		}
		appendOK(t, b, c)
		got := loadAll(t, b, s, 0)
		if len(got) != len(times) {
			t.Fatalf("loaded %d records, want %d", len(got), len(times))
		}
		for i, r := range got {
			if !r.Timestamp.Equal(times[i]) {
				t.Errorf("timestamp %d: got %v, want %v", i, r.Timestamp, times[i])
			}
			if times[i].IsZero() != r.Timestamp.IsZero() {
				t.Errorf("timestamp %d: got %v (zero %v), want %v (zero %v)", i, r.Timestamp, r.Timestamp.IsZero(), times[i], times[i].IsZero())
			}
		}
		out := commit(s, int64(len(times)), 1, "out-of-range")
		out.Records[0].Timestamp = backend.MaxTime.Add(time.Nanosecond)
		if err := b.Append(ctx, out); !errors.Is(err, backend.ErrInvalidAppend) {
			t.Fatalf("a timestamp after year 9999: got %v, want ErrInvalidAppend", err)
		}
	})

	t.Run("UnusualNames", func(t *testing.T) {
		b := open(t)
		base := uniqueStream(t, "Probe")
		for i, s := range []backend.StreamID{
			{AggregateType: "Ünïcödé-Typ€", Key: base.Key + "/with/slashes"},
			{AggregateType: "dots.and$dollars", Key: base.Key + ".$key {} [] \"quoted\" \\"},
			{AggregateType: "Probe", Key: base.Key + strings.Repeat("k", backend.MaxKeyLen-len(base.Key))},
			{AggregateType: strings.Repeat("T", backend.MaxAggregateTypeLen), Key: base.Key + "-long-type"},
			{AggregateType: "Probe", Key: base.Key + "/0000000000000000001"}, // looks like another stream's sequence suffix
		} {
			c := commit(s, 0, 2, "n"+strconv.Itoa(i))
			c.Records[0].EventType = "Ev€nt.With$Symbols/and:colons"
			c.Records[1].EventType = strings.Repeat("E", backend.MaxEventNameLen)
			md := backend.Metadata{"key.with.dots": "v1", "$dollar": "v2", "ünï": "välüe ✓", "empty-value": "", "sp ace": "\x00 nul"}
			md[strings.Repeat("m", backend.MaxMetadataKeyLen)] = strings.Repeat("long value ", 100)
			for j := range c.Records {
				c.Records[j].Metadata = md
			}
			appendOK(t, b, c)
			checkRecords(t, loadAll(t, b, s, 0), c.Records)
		}
		// A stream whose key extends another's must not see its records.
		if got := loadAll(t, b, backend.StreamID{AggregateType: "Probe", Key: base.Key}, 0); len(got) != 0 {
			t.Fatalf("stream %s sees %d records of streams whose keys extend its own", base, len(got))
		}
	})

	t.Run("InvalidMetadata", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		for name, md := range map[string]backend.Metadata{
			"empty key":             {"": "v"},
			"invalid UTF-8 value":   {"corr": "corr-\xff"},
			"invalid UTF-8 key":     {"k\xfe": "v"},
			"overlong key":          {strings.Repeat("k", backend.MaxMetadataKeyLen+1): "v"},
			"second record invalid": nil,
		} {
			c := commit(s, 0, 2, "md")
			if md == nil {
				c.Records[1].Metadata = backend.Metadata{"bad": "\xc3"}
			} else {
				c.Records[0].Metadata, c.Records[1].Metadata = md, md
			}
			if err := b.Append(ctx, c); !errors.Is(err, backend.ErrInvalidMetadata) {
				t.Errorf("%s: got %v, want ErrInvalidMetadata", name, err)
			}
		}
		if n := len(loadAll(t, b, s, 0)); n != 0 {
			t.Fatalf("refused commits stored %d records", n)
		}
	})

	t.Run("OrderAndAfter", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		for i, n := range []int{3, 1, 4} {
			appendOK(t, b, commit(s, head(t, b, s), n, strconv.Itoa(i)))
		}
		for _, after := range []int64{-1, 0, 1, 2, 3, 4, 7, 8, 100} {
			got := loadAll(t, b, s, after)
			want := 8 - max(after, 0)
			if want < 0 {
				want = 0
			}
			if int64(len(got)) != want {
				t.Fatalf("after %d: %d records, want %d", after, len(got), want)
			}
			checkSequence(t, got, max(after, 0))
		}
	})

	t.Run("ManySingleEventCommits", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		for i := int64(0); i < 50; i++ {
			appendOK(t, b, commit(s, i, 1, "single"+strconv.FormatInt(i, 10)))
			got := loadAll(t, b, s, i)
			if len(got) != 1 || got[0].Sequence != i+1 {
				t.Fatalf("after commit %d, the load after %d yielded %d records", i+1, i, len(got))
			}
		}
		checkSequence(t, loadAll(t, b, s, 0), 0)
	})

	t.Run("Conflict", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		appendOK(t, b, commit(s, 0, 2, "first"))
		for _, expected := range []int64{0, 1, 3, 10} {
			err := b.Append(ctx, commit(s, expected, 2, "loser"))
			if !errors.Is(err, backend.ErrConcurrency) {
				t.Fatalf("Append after %d with head 2: got %v, want ErrConcurrency", expected, err)
			}
			var ce *backend.ConflictError
			if !errors.As(err, &ce) || ce.Stream != s {
				t.Fatalf("Append after %d: got %v, want a *backend.ConflictError naming the stream", expected, err)
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

	t.Run("ExpectedAheadOfEmptyStream", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		for _, expected := range []int64{1, 5} {
			if err := b.Append(ctx, commit(s, expected, 1, "ahead")); !errors.Is(err, backend.ErrConcurrency) {
				t.Fatalf("Append after %d to an empty stream: got %v, want ErrConcurrency", expected, err)
			}
		}
		if n := len(loadAll(t, b, s, 0)); n != 0 {
			t.Fatalf("the stream holds %d records", n)
		}
	})

	t.Run("InvalidAppend", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		bad := commit(s, 0, 3, "bad")
		bad.Records[2].Sequence = 5
		if err := b.Append(ctx, bad); !errors.Is(err, backend.ErrInvalidAppend) {
			t.Fatalf("gap in appended sequences: got %v, want ErrInvalidAppend", err)
		}
		other := commit(s, 0, 1, "x")
		other.Records[0].Stream = backend.StreamID{AggregateType: "Other", Key: s.Key}
		if err := b.Append(ctx, other); !errors.Is(err, backend.ErrInvalidAppend) {
			t.Fatalf("record of another stream: got %v, want ErrInvalidAppend", err)
		}
		if err := b.Append(ctx, backend.Commit{Stream: backend.StreamID{AggregateType: "Probe"}, ID: "x"}); !errors.Is(err, backend.ErrInvalidStream) {
			t.Fatalf("empty key: got %v, want ErrInvalidStream", err)
		}
		noType := commit(s, 0, 1, "no-type")
		noType.Records[0].EventType = ""
		if err := b.Append(ctx, noType); !errors.Is(err, backend.ErrInvalidEventName) {
			t.Fatalf("record without an event type: got %v, want ErrInvalidEventName", err)
		}
		negative := commit(s, 0, 1, "neg")
		negative.Expected = -1
		negative.Records[0].Sequence = 0
		if err := b.Append(ctx, negative); !errors.Is(err, backend.ErrInvalidAppend) {
			t.Fatalf("negative expected: got %v, want ErrInvalidAppend", err)
		}
		if n := len(loadAll(t, b, s, 0)); n != 0 {
			t.Fatalf("invalid appends stored %d records", n)
		}
		if err := b.Append(ctx, backend.Commit{Stream: s, ID: newID("empty")}); err != nil {
			t.Fatalf("empty append: %v", err)
		}
	})

	t.Run("TwoAggregateTypesOneKey", func(t *testing.T) {
		b := open(t)
		a := uniqueStream(t, "Alpha")
		c := backend.StreamID{AggregateType: "Beta", Key: a.Key}
		appendOK(t, b, commit(a, 0, 2, "alpha"))
		appendOK(t, b, commit(c, 0, 3, "beta"))
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
		total, per := cfg.longStream, 100
		for i := 0; i < total/per; i++ {
			appendOK(t, b, commit(s, int64(i*per), per, strconv.Itoa(i)))
		}
		total = total / per * per
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
		if n != int64(total) {
			t.Fatalf("loaded %d records, want %d", n, total)
		}
		// Stopping early must be allowed and leave the backend usable.
		seen := 0
		for _, err := range b.Load(ctx, s, int64(total/2)) {
			if err != nil {
				t.Fatal(err)
			}
			if seen++; seen == 3 {
				break
			}
		}
		if got := loadAll(t, b, s, int64(total-1)); len(got) != 1 || got[0].Sequence != int64(total) {
			t.Fatalf("tail load after an early break: %v", got)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := b.Append(cctx, commit(s, 0, 1, "c")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Append with a cancelled context: got %v, want context.Canceled", err)
		}
		if n := len(loadAll(t, b, s, 0)); n != 0 {
			t.Fatalf("cancelled append stored %d records", n)
		}
		appendOK(t, b, commit(s, 0, 3, "c"))
		for _, after := range []int64{0, 2} { // also after a non-zero position
			var loadErr error
			for _, err := range b.Load(cctx, s, after) {
				if err != nil {
					loadErr = err
					break
				}
			}
			if !errors.Is(loadErr, context.Canceled) {
				t.Fatalf("Load after %d with a cancelled context: got %v, want context.Canceled", after, loadErr)
			}
		}
	})

	t.Run("ContextCancelledMidLoad", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		for i := 0; i < 20; i++ {
			appendOK(t, b, commit(s, int64(i*50), 50, "mid"+strconv.Itoa(i)))
		}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		n, last := 0, error(nil)
		for _, err := range b.Load(cctx, s, 0) {
			if err != nil {
				last = err
				break
			}
			if n++; n == 10 {
				cancel()
			}
		}
		if !errors.Is(last, context.Canceled) {
			t.Fatalf("a load whose context was cancelled after %d records ended with %v after %d records, want context.Canceled", 10, last, n)
		}
	})

	t.Run("RacingBatches", func(t *testing.T) {
		b := open(t)
		s := uniqueStream(t, "Probe")
		const writers, perWriter, size = 16, 5, 3
		racingWriters(t, writers, func(w int) error {
			for i := 0; i < perWriter; i++ {
				batch := fmt.Sprintf("w%d-%d", w, i)
				for attempt := 0; ; attempt++ {
					h, err := headOf(ctx, b, s)
					if err != nil {
						return err
					}
					err = b.Append(ctx, commit(s, h, size, batch))
					if err == nil {
						break
					}
					if !errors.Is(err, backend.ErrConcurrency) {
						return fmt.Errorf("append: %w", err)
					}
					if attempt > 1000 {
						return fmt.Errorf("writer %d starved", w)
					}
				}
			}
			return nil
		})
		got := loadAll(t, b, s, 0)
		if len(got) != writers*perWriter*size {
			t.Fatalf("stored %d records, want %d (acknowledged appends x batch size)", len(got), writers*perWriter*size)
		}
		checkSequence(t, got, 0)
		checkWholeBatches(t, got, size)
	})

	t.Run("RacingFromOneHead", func(t *testing.T) {
		// Every writer appends after the same head: exactly one may win.
		b := open(t)
		s := uniqueStream(t, "Probe")
		appendOK(t, b, commit(s, 0, 1, "base"))
		const writers = 16
		var mu sync.Mutex
		won := 0
		racingWriters(t, writers, func(w int) error {
			err := b.Append(ctx, commit(s, 1, 2, fmt.Sprintf("race%d", w)))
			switch {
			case err == nil:
				mu.Lock()
				won++
				mu.Unlock()
			case !errors.Is(err, backend.ErrConcurrency):
				return err
			}
			return nil
		})
		if won != 1 {
			t.Fatalf("%d writers appending after the same head succeeded, want exactly 1", won)
		}
		if got := loadAll(t, b, s, 0); len(got) != 3 {
			t.Fatalf("the stream holds %d records, want 3", len(got))
		}
	})

	t.Run("ConcurrentStreams", func(t *testing.T) {
		b := open(t)
		base := uniqueStream(t, "Probe")
		const streams, commits = 16, 10
		racingWriters(t, streams, func(w int) error {
			s := backend.StreamID{AggregateType: base.AggregateType, Key: fmt.Sprintf("%s-%d", base.Key, w)}
			for i := 0; i < commits; i++ {
				if err := b.Append(ctx, commit(s, int64(i*2), 2, fmt.Sprintf("s%d-%d", w, i))); err != nil {
					return fmt.Errorf("stream %d commit %d: %w", w, i, err)
				}
			}
			return nil
		})
		for w := 0; w < streams; w++ {
			s := backend.StreamID{AggregateType: base.AggregateType, Key: fmt.Sprintf("%s-%d", base.Key, w)}
			got := loadAll(t, b, s, 0)
			if len(got) != commits*2 {
				t.Fatalf("stream %d holds %d records, want %d", w, len(got), commits*2)
			}
			checkSequence(t, got, 0)
			for _, r := range got {
				if !bytes.Contains(r.Data, []byte(fmt.Sprintf(`"s%d-`, w))) {
					t.Fatalf("stream %d holds a record of another stream: %q", w, r.Data)
				}
			}
		}
	})

	if cfg.second != nil {
		t.Run("TwoInstances", func(t *testing.T) {
			b := open(t)
			other := cfg.second(t, b)
			t.Cleanup(func() { _ = other.Close() })
			s := uniqueStream(t, "Probe")
			appendOK(t, b, commit(s, 0, 2, "first"))
			// other has never seen the stream: it must refuse what conflicts
			// and accept what follows.
			for _, expected := range []int64{0, 1, 3} {
				if err := other.Append(ctx, commit(s, expected, 1, "stale")); !errors.Is(err, backend.ErrConcurrency) {
					t.Fatalf("second instance, append after %d with head 2: got %v, want ErrConcurrency", expected, err)
				}
			}
			appendOK(t, other, commit(s, 2, 2, "second"))
			if err := b.Append(ctx, commit(s, 2, 1, "stale-first")); !errors.Is(err, backend.ErrConcurrency) {
				t.Fatalf("first instance, append after 2 with head 4: got %v, want ErrConcurrency", err)
			}
			appendOK(t, b, commit(s, 4, 1, "third"))
			for _, inst := range []backend.Backend{b, other} {
				got := loadAll(t, inst, s, 0)
				if len(got) != 5 {
					t.Fatalf("an instance loads %d records, want 5", len(got))
				}
				checkSequence(t, got, 0)
			}
		})
	}

	t.Run("Closed", func(t *testing.T) {
		b := newBackend(t)
		s := uniqueStream(t, "Probe")
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := b.Append(ctx, commit(s, 0, 1, "x")); !errors.Is(err, backend.ErrClosed) {
			t.Fatalf("Append after Close: got %v, want ErrClosed", err)
		}
		var loadErr error
		for _, err := range b.Load(ctx, s, 0) {
			loadErr = err
			break
		}
		if !errors.Is(loadErr, backend.ErrClosed) {
			t.Fatalf("Load after Close: got %v, want ErrClosed", loadErr)
		}
	})
}

// racingWriters runs fn(0..n-1) on n goroutines released at once and fails
// t with every error they return.
func racingWriters(t *testing.T, n int, fn func(w int) error) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := fn(w); err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// checkWholeBatches fails t unless recs are batches of size records, each
// stored once and whole.
func checkWholeBatches(t *testing.T, recs []backend.Record, size int) {
	t.Helper()
	seen := map[string]bool{}
	for i := 0; i+size <= len(recs); i += size {
		batch := string(recs[i].Data)
		batch = batch[:strings.IndexByte(batch, ',')]
		if seen[batch] {
			t.Fatalf("batch %s stored twice", batch)
		}
		seen[batch] = true
		for j := 0; j < size; j++ {
			r := recs[i+j]
			if want := fmt.Sprintf(`,"index":%d,`, j); !bytes.HasPrefix(r.Data, []byte(batch)) || !bytes.Contains(r.Data, []byte(want)) {
				t.Fatalf("records %d..%d are not one whole batch: %q", i, i+size-1, r.Data)
			}
			if r.CommitID != recs[i].CommitID {
				t.Fatalf("records %d..%d of one batch carry different commit IDs", i, i+size-1)
			}
		}
	}
}

// checkRecords fails t unless got equals want field by field (timestamps
// as instants, data byte for byte, metadata exactly).
func checkRecords(t *testing.T, got, want []backend.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("loaded %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Stream != w.Stream || g.Sequence != w.Sequence || g.EventType != w.EventType || g.CommitID != w.CommitID {
			t.Errorf("record %d identity: got %v/%d/%q/%q want %v/%d/%q/%q", i, g.Stream, g.Sequence, g.EventType, g.CommitID,
				w.Stream, w.Sequence, w.EventType, w.CommitID)
		}
		if !bytes.Equal(g.Data, w.Data) || g.Data == nil {
			t.Errorf("record %d data: got %q want %q (empty data must load as a non-nil empty slice)", i, g.Data, w.Data)
		}
		if !g.Timestamp.Equal(w.Timestamp) {
			t.Errorf("record %d timestamp: got %v want %v (nanoseconds must survive)", i, g.Timestamp, w.Timestamp)
		}
		if len(g.Metadata) != len(w.Metadata) {
			t.Errorf("record %d metadata: got %d headers %q, want %d %q", i, len(g.Metadata), g.Metadata, len(w.Metadata), w.Metadata)
		}
		for k, v := range w.Metadata {
			if gv, ok := g.Metadata[k]; !ok || gv != v {
				t.Errorf("record %d metadata[%q]: got %q (present %v), want %q", i, k, gv, ok, v)
			}
		}
	}
}
