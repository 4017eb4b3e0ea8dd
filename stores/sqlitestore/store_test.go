package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/sqlitestore"
)

// appendN appends commits of the given sizes to s and returns them.
func appendN(t *testing.T, b backend.Backend, s backend.StreamID, sizes ...int) []backend.Commit {
	t.Helper()
	var out []backend.Commit
	head := int64(0)
	for r, err := range b.Load(context.Background(), s, 0) {
		if err != nil {
			t.Fatal(err)
		}
		head = r.Sequence
	}
	for i, n := range sizes {
		c := crashCommit(s, head, n, fmt.Sprintf("%s-%d-%d", s.Key, head, i))
		if err := b.Append(context.Background(), c); err != nil {
			t.Fatalf("append to %s after %d: %v", s, head, err)
		}
		head = c.Last()
		out = append(out, c)
	}
	return out
}

func feedOf(t *testing.T, f backend.Feed, after backend.Position) []backend.FeedCommit {
	t.Helper()
	var out []backend.FeedCommit
	for c, err := range f.ReadFeed(context.Background(), after) {
		if err != nil {
			t.Fatalf("ReadFeed after %q: %v", after, err)
		}
		out = append(out, c)
	}
	return out
}

// Commits larger than a batch, and batch boundaries inside commits: the
// feed read two rows at a time is the feed read 500 at a time.
func TestFeedAcrossBatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "batches.db")
	big := open(t, path)
	small := open(t, path, sqlitestore.WithBatchSize(2))
	a, c := backend.StreamID{AggregateType: "F", Key: "a"}, backend.StreamID{AggregateType: "F", Key: "c"}
	appendN(t, big, a, 1, 5, 2)
	appendN(t, big, c, 3, 1)
	appendN(t, big, a, 4)
	want := feedOf(t, big, "")
	if len(want) != 6 {
		t.Fatalf("the feed holds %d commits, want 6", len(want))
	}
	for i := -1; i < len(want); i++ {
		var after backend.Position
		if i >= 0 {
			after = want[i].Position
		}
		got := feedOf(t, small, after)
		if len(got) != len(want)-i-1 {
			t.Fatalf("after commit %d, batches of 2 yield %d commits, want %d", i, len(got), len(want)-i-1)
		}
		for j, g := range got {
			w := want[i+1+j]
			if g.Position != w.Position || g.ID != w.ID || g.Stream != w.Stream || g.Expected != w.Expected || len(g.Records) != len(w.Records) {
				t.Fatalf("batches of 2: commit %s of %s after %d at %q, want %s of %s after %d at %q",
					g.ID, g.Stream, g.Expected, g.Position, w.ID, w.Stream, w.Expected, w.Position)
			}
		}
	}
	// A position inside a commit is not one the feed produced.
	inside := fmt.Sprintf("%020d", mustPosition(t, want[1].Position)-1)
	for _, err := range small.ReadFeed(context.Background(), backend.Position(inside)) {
		if !errors.Is(err, backend.ErrInvalidPosition) {
			t.Fatalf("a position inside a commit: got %v, want ErrInvalidPosition", err)
		}
		break
	}
}

func mustPosition(t *testing.T, p backend.Position) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscanf(string(p), "%d", &n); err != nil || len(p) != 20 {
		t.Fatalf("position %q is not 20 digits", p)
	}
	return n
}

// WaitFeed of one Backend wakes for a commit of another Backend on the
// same file (as of another process), by polling.
func TestWaitFeedOtherInstance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wait.db")
	waiter := open(t, path, sqlitestore.WithPollInterval(20*time.Millisecond))
	writer := open(t, path)
	start := backend.Position("")
	if f := feedOf(t, waiter, ""); len(f) > 0 {
		start = f[len(f)-1].Position
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		appendN(t, writer, backend.StreamID{AggregateType: "W", Key: "w"}, 1)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(feedOf(t, waiter, start)) == 0 {
		if err := waiter.WaitFeed(ctx, start); err != nil {
			t.Fatalf("WaitFeed never saw the other instance's commit: %v", err)
		}
	}
	if err := waiter.Close(); err != nil {
		t.Fatal(err)
	}
	if err := waiter.WaitFeed(ctx, start); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("WaitFeed after Close: got %v, want ErrClosed", err)
	}
}

// A Backend's cache of loaded records never hides what another instance
// (another process) appended since: the load asks the database for the
// rows after the cached ones.
func TestCachedLoadSeesOtherInstance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	reader, writer := open(t, path), open(t, path)
	s := backend.StreamID{AggregateType: "C", Key: "c"}
	appendN(t, writer, s, 3, 2)
	for round := 0; round < 3; round++ {
		if n := countEvents(t, reader, s); n != 5+round {
			t.Fatalf("round %d: the reader loads %d events, want %d", round, n, 5+round)
		}
		appendN(t, writer, s, 1)
	}
	// Loads after a position inside and past the cached records.
	for _, after := range []int64{0, 3, 7, 8, 20} {
		n := 0
		for r, err := range reader.Load(context.Background(), s, after) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; r.Sequence != after+int64(n) {
				t.Fatalf("load after %d: record %d has sequence %d", after, n, r.Sequence)
			}
		}
		if want := max(8-after, 0); int64(n) != want {
			t.Fatalf("load after %d: %d records, want %d", after, n, want)
		}
	}
	// A stale commit is refused without a transaction, and a commit at
	// the head still goes through the database's check.
	if err := reader.Append(context.Background(), crashCommit(s, 5, 1, "stale")); !errors.Is(err, backend.ErrConcurrency) {
		t.Fatalf("a stale append: got %v, want ErrConcurrency", err)
	}
	appendN(t, writer, s, 1) // the reader has not seen event 9
	if err := reader.Append(context.Background(), crashCommit(s, 8, 1, "behind")); !errors.Is(err, backend.ErrConcurrency) {
		t.Fatalf("an append after 8 with head 9 written elsewhere: got %v, want ErrConcurrency", err)
	}
}

// Rows written out of band that are not what the store writes: the load
// of their stream yields a *backend.CorruptError naming the stream and the
// row, other streams load as before, and nothing is modified.
func TestCorruptRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "corrupt.db")
	b := open(t, path, sqlitestore.WithRecordCache(0))
	good := backend.StreamID{AggregateType: "Good", Key: "g"}
	appendN(t, b, good, 2)
	for name, tc := range map[string]struct {
		set   string
		value any
	}{
		"metadata not JSON":   {"metadata", "{not json"},
		"metadata not object": {"metadata", `["a"]`},
		"metadata null":       {"metadata", `null`},
		"time not a time":     {"time", "yesterday"},
		"time out of range":   {"time", "2026-13-01T00:00:00.000000000Z"},
		"february 30":         {"time", "2026-02-30T00:00:00.000000000Z"},
	} {
		t.Run(name, func(t *testing.T) {
			s := backend.StreamID{AggregateType: "Bad", Key: strings.ReplaceAll(name, " ", "-")}
			appendN(t, b, s, 3)
			if _, err := b.DB().Exec(`UPDATE es_events SET `+tc.set+` = ? WHERE aggregate_type = ? AND aggregate_key = ? AND sequence = 2`,
				tc.value, s.AggregateType, s.Key); err != nil {
				t.Fatal(err)
			}
			n, err := 0, error(nil)
			for _, e := range b.Load(ctx, s, 0) {
				if e != nil {
					err = e
					break
				}
				n++
			}
			var ce *backend.CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, backend.ErrCorruptStream) || ce.Stream != s || ce.Sequence != 2 {
				t.Fatalf("got %v after %d records, want a *backend.CorruptError of %s at sequence 2", err, n, s)
			}
			if n != 1 {
				t.Fatalf("the load yielded %d records before the damaged one, want 1", n)
			}
			for _, e := range b.ReadFeed(ctx, "") {
				if e != nil {
					err = e
				}
			}
			if !errors.As(err, &ce) || ce.Stream != s {
				t.Fatalf("the feed: got %v, want a *backend.CorruptError of %s", err, s)
			}
			if countEvents(t, b, good) != 2 {
				t.Fatal("another stream no longer loads")
			}
			if _, err := b.DB().Exec(`DELETE FROM es_events WHERE aggregate_type = ? AND aggregate_key = ?`, s.AggregateType, s.Key); err != nil {
				t.Fatal(err)
			}
		})
	}
	// STRICT tables refuse a value of the wrong type from anyone.
	if _, err := b.DB().Exec(`UPDATE es_events SET sequence = 'two' WHERE aggregate_type = 'Good'`); err == nil {
		t.Fatal("the events table took text in an integer column")
	}
	// A commit missing its last event: the feed yields the commits before
	// it, then names it.
	s := backend.StreamID{AggregateType: "Cut", Key: "c"}
	appendN(t, b, s, 3)
	if _, err := b.DB().Exec(`DELETE FROM es_events WHERE aggregate_type = 'Cut' AND sequence = 3`); err != nil {
		t.Fatal(err)
	}
	var yielded []backend.FeedCommit
	var err error
	for c, e := range b.ReadFeed(ctx, "") {
		if e != nil {
			err = e
			break
		}
		yielded = append(yielded, c)
	}
	var ce *backend.CorruptError
	if !errors.As(err, &ce) || ce.Stream != s {
		t.Fatalf("a commit missing its last event: the feed yields %v, want a *backend.CorruptError of %s", err, s)
	}
	if len(yielded) != 1 || yielded[0].Stream != good {
		t.Fatalf("before the damage the feed yielded %d commits, want the one of %s", len(yielded), good)
	}
}

func TestCorruptSnapshot(t *testing.T) {
	ctx := context.Background()
	b := open(t, filepath.Join(t.TempDir(), "snap.db"))
	st := sqlitestore.NewSnapshotStore(b)
	s := backend.StreamID{AggregateType: "S", Key: "s"}
	if err := st.Put(ctx, backend.Snapshot{Stream: s, Sequence: 4, Version: 1, State: []byte("{}"), Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DB().Exec(`UPDATE es_snapshots SET time = 'later'`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, s); !errors.Is(err, backend.ErrInvalidSnapshot) {
		t.Fatalf("got %v, want ErrInvalidSnapshot", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, s); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Get after the Backend's Close: got %v, want ErrClosed", err)
	}
	if err := st.Put(ctx, backend.Snapshot{Stream: s, Sequence: 5, Time: time.Now()}); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Put after the Backend's Close: got %v, want ErrClosed", err)
	}
}

// Timestamps are stored as fixed-width text, so that SQL sees times in
// order; the schema version is recorded.
func TestSchema(t *testing.T) {
	b := open(t, filepath.Join(t.TempDir(), "schema.db"))
	s := backend.StreamID{AggregateType: "T", Key: "t"}
	c := crashCommit(s, 0, 1, "t")
	c.Records[0].Timestamp = time.Date(987, 6, 5, 4, 3, 2, 1, time.FixedZone("X", 3600))
	if err := b.Append(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	var ts, mode string
	var version int
	if err := b.DB().QueryRow(`SELECT time FROM es_events`).Scan(&ts); err != nil {
		t.Fatal(err)
	}
	if ts != "0987-06-05T03:03:02.000000001Z" {
		t.Fatalf("stored time %q", ts)
	}
	if err := b.DB().QueryRow(`SELECT version FROM es_schema WHERE name = 'eventsourcing'`).Scan(&version); err != nil || version != sqlitestore.SchemaVersion {
		t.Fatalf("schema version %d, %v", version, err)
	}
	if err := b.DB().QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode %q, %v", mode, err)
	}
}

// Open takes a path, not a URI: characters that mean something in a URI
// are part of the file's name.
func TestOpenOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "we?ird #dir %20 ü&x=1")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events?.db")
	b := open(t, path)
	appendN(t, b, backend.StreamID{AggregateType: "P", Key: "p"}, 1)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at the path given: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(dir)); len(ents) != 1 {
		t.Fatalf("files outside the directory: %v", ents)
	}
	// A relative path is relative to the working directory.
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, filepath.Join(dir, "relative.db"))
	if err != nil {
		t.Fatal(err)
	}
	open(t, rel)
	if _, err := os.Stat(filepath.Join(dir, "relative.db")); err != nil {
		t.Fatal(err)
	}
}

// Two Backends on handles whose connections have no busy timeout, writing
// at once: SQLite answers "database is locked" to the one that finds the
// other's write in progress, and the Backend waits and tries again (up to
// WithBusyTimeout) instead of failing.
func TestTwoInstancesWithoutBusyTimeout(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nobusy.db")
	var backends []*sqlitestore.Backend
	for i := 0; i < 2; i++ {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		b, err := sqlitestore.NewBackend(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		backends = append(backends, b)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := backends[w%2]
			s := backend.StreamID{AggregateType: "NoBusy", Key: strconv.Itoa(w)}
			for i := int64(0); i < 20; i++ {
				if err := b.Append(ctx, crashCommit(s, i, 1, fmt.Sprintf("nb-%d-%d", w, i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append: %v", err)
	}
	for w := 0; w < 8; w++ {
		if n := countEvents(t, backends[1-w%2], backend.StreamID{AggregateType: "NoBusy", Key: strconv.Itoa(w)}); n != 20 {
			t.Fatalf("stream %d holds %d events, want 20", w, n)
		}
	}
}
