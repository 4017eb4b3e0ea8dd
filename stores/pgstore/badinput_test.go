package pgstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
	"github.com/jackc/pgx/v5"
)

// closedPortURL returns a PostgreSQL URL of a loopback port nothing listens
// on.
func closedPortURL(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "postgres://postgres@" + addr + "/postgres?sslmode=disable&connect_timeout=5"
}

func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := closedPortURL(t)
	start := time.Now()
	b, err := pgstore.Open(ctx, url)
	if err == nil {
		_ = b.Close()
		t.Fatal("Open of an unreachable server succeeded")
	}
	if !strings.Contains(err.Error(), "pgstore") {
		t.Errorf("the error does not say where it comes from: %v", err)
	}
	t.Logf("Open: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
	for _, bad := range []string{"postgres://[::1", "not a url at all = = ="} {
		if _, err := pgstore.Open(ctx, bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	if _, err := pgstore.NewBackend(ctx, nil); err == nil {
		t.Error("NewBackend(nil pool) succeeded")
	}
	if _, err := pgstore.NewSnapshotStore(ctx, nil); err == nil {
		t.Error("NewSnapshotStore(nil pool) succeeded")
	}
}

// A Backend whose server becomes unreachable (a proxy in between is cut):
// every operation fails with an error naming the stream, never a conflict,
// and nothing is stored.
func TestServerUnreachableAfterStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 4)
	schema := newSchema(t, pool)
	p := startProxy(t, postgresURL(t))
	b, err := pgstore.Open(ctx, p.url+"&connect_timeout=2", pgstore.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := backend.StreamID{AggregateType: "Probe", Key: "cut"}
	if err := b.Append(ctx, testCommit(s, 0, 1, "cut-1")); err != nil {
		t.Fatal(err)
	}
	p.cut()
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = b.Append(octx, testCommit(s, 1, 1, "cut-2"))
	if err == nil || errors.Is(err, backend.ErrConcurrency) || !strings.Contains(err.Error(), s.String()) {
		t.Fatalf("Append through a cut connection: got %v, want an error naming %s that is not a conflict", err, s)
	}
	t.Logf("Append: %v (unknown outcome: %v)", err, errors.Is(err, backend.ErrUnknownOutcome))
	var loadErr error
	for _, e := range b.Load(octx, s, 0) {
		loadErr = e
	}
	if loadErr == nil || !strings.Contains(loadErr.Error(), s.String()) {
		t.Fatalf("Load through a cut connection: got %v, want an error naming %s", loadErr, s)
	}
	var feedErr error
	for _, e := range b.ReadFeed(octx, "") {
		feedErr = e
	}
	if feedErr == nil {
		t.Fatal("ReadFeed through a cut connection succeeded")
	}
	if err := b.WaitFeed(octx, ""); err == nil {
		t.Log("WaitFeed through a cut connection returned nil (allowed: an early return)")
	}
	direct := newBackend(t, pool, schema)
	if got := loadAll(t, direct, s); len(got) != 1 {
		t.Fatalf("the stream holds %d events, want the 1 acknowledged", len(got))
	}
}

func TestAppendLostReplyIsUnknownOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := newPool(t, 2)
	schema := newSchema(t, admin)
	pool := newPool(t, 1) // one connection, so the warm-up prepares the statement on it
	b := newBackend(t, pool, schema)
	// The same form of statement (3 events, a new stream) as below, so that
	// the append below is executed rather than only prepared.
	if err := b.Append(ctx, testCommit(backend.StreamID{AggregateType: "Probe", Key: "warm-up"}, 0, 3, "warm-1")); err != nil {
		t.Fatal(err)
	}
	s := backend.StreamID{AggregateType: "Probe", Key: "blocked"}
	// Hold a lock that makes the append wait inside the server, then give
	// up on the answer: the statement was sent, so the outcome is unknown.
	locker, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := locker.Exec(ctx, `LOCK TABLE `+pgx.Identifier{schema, "events"}.Sanitize()+` IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = b.Append(actx, testCommit(s, 0, 3, "blocked-1"))
	cancel()
	if !errors.Is(err, backend.ErrUnknownOutcome) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), s.String()) {
		t.Fatalf("an append whose answer never came: got %v, want ErrUnknownOutcome and context.DeadlineExceeded, naming the stream", err)
	}
	if errors.Is(err, backend.ErrConcurrency) {
		t.Fatalf("a lost answer reported as a conflict: %v", err)
	}
	if err := locker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The server still runs the statement once the lock is released (pgx's
	// default reaction to a done context is to close the connection, not
	// to cancel the statement), and commits it unless it notices the closed
	// connection first: the commit may be stored, whole, although its
	// caller got an error. That is what ErrUnknownOutcome warns of.
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := len(loadAll(t, b, s))
		if n == 3 {
			break
		}
		if n != 0 {
			t.Fatalf("the stream holds %d events of a 3-event commit", n)
		}
		if time.Now().After(deadline) {
			t.Logf("the abandoned commit was not stored")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCommitTooLarge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 4)
	schema := newSchema(t, pool)
	b := newBackend(t, pool, schema, pgstore.WithMaxCommitSize(4096))
	s := backend.StreamID{AggregateType: "Probe", Key: "large"}
	for name, c := range map[string]backend.Commit{
		"one big event": func() backend.Commit {
			c := testCommit(s, 0, 1, "big-1")
			c.Records[0].Data = bytes.Repeat([]byte("x"), 5000)
			return c
		}(),
		"many events": testCommit(s, 0, 200, "many-1"),
		"big metadata": func() backend.Commit {
			c := testCommit(s, 0, 2, "md-1")
			for i := range c.Records {
				c.Records[i].Metadata = backend.Metadata{"big": strings.Repeat("m", 3000)}
			}
			return c
		}(),
	} {
		err := b.Append(ctx, c)
		var tl *backend.CommitTooLargeError
		if !errors.As(err, &tl) || !errors.Is(err, backend.ErrCommitTooLarge) || tl.Stream != s || tl.Limit != 4096 || tl.Size <= 4096 {
			t.Fatalf("%s: got %v, want a *CommitTooLargeError for %s over 4096 bytes", name, err, s)
		}
	}
	if n := len(loadAll(t, b, s)); n != 0 {
		t.Fatalf("refused commits stored %d events", n)
	}
	// Just under the limit is stored.
	c := testCommit(s, 0, 1, "fits-1")
	c.Records[0].Data = bytes.Repeat([]byte("y"), 3000)
	if err := b.Append(ctx, c); err != nil {
		t.Fatalf("a commit under the limit: %v", err)
	}

	// The default limit refuses a 17 MiB commit before sending anything.
	def := newBackend(t, pool, schema)
	huge := testCommit(s, 1, 1, "huge-1")
	huge.Records[0].Data = make([]byte, 17<<20)
	if err := def.Append(ctx, huge); !errors.Is(err, backend.ErrCommitTooLarge) {
		t.Fatalf("a 17 MiB commit: got %v, want ErrCommitTooLarge", err)
	}
	if n := len(loadAll(t, b, s)); n != 1 {
		t.Fatalf("the stream holds %d events, want 1", n)
	}
}

// Rows written by hand that the store cannot read as its own: each is
// reported as a *backend.CorruptError naming the stream and sequence, by
// Load and by ReadFeed, and the rows stay as they are; other streams load
// as before.
func TestMalformedRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 4)
	schema := newSchema(t, pool)
	b := newBackend(t, pool, schema)
	events := pgx.Identifier{schema, "events"}.Sanitize()
	good := backend.StreamID{AggregateType: "Probe", Key: "good"}
	if err := b.Append(ctx, testCommit(good, 0, 2, "good-1")); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, set string }{
		{"nanoseconds out of range", "time_ns = 5000"},
		{"negative nanoseconds", "time_ns = -1"},
		{"metadata not JSON", `metadata = '\x6e6f74206a736f6e'`},
		{"metadata JSON null", `metadata = convert_to('null', 'UTF8')`},
		{"metadata not strings", `metadata = convert_to('{"a":1}', 'UTF8')`},
		{"metadata not UTF-8", `metadata = '\xff'`},
		{"empty event type", "event_type = ''"},
		{"event type with a space", "event_type = 'has space'"},
		{"commit ID with a space", "commit_id = 'has space'"},
		{"time after year 9999", "time = '10000-01-01 00:00:00+00'"},
	}
	for i, c := range cases {
		s := backend.StreamID{AggregateType: "Probe", Key: fmt.Sprintf("bad-%d", i)}
		if err := b.Append(ctx, testCommit(s, 0, 3, fmt.Sprintf("bad-%d", i))); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `UPDATE `+events+` SET `+c.set+` WHERE aggregate = $1 AND key = $2 AND seq = 2`, s.AggregateType, s.Key); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var before []byte
		if err := pool.QueryRow(ctx, `SELECT row_to_json(e)::text::bytea FROM `+events+` e WHERE key = $1 AND seq = 2`, s.Key).Scan(&before); err != nil {
			t.Fatal(err)
		}
		var got []backend.Record
		var loadErr error
		for r, err := range b.Load(ctx, s, 0) {
			if err != nil {
				loadErr = err
				break
			}
			got = append(got, r)
		}
		var ce *backend.CorruptError
		if !errors.As(loadErr, &ce) || ce.Stream != s || ce.Sequence != 2 || !errors.Is(loadErr, backend.ErrCorruptStream) {
			t.Errorf("%s: Load ended with %v, want a *CorruptError for %s at sequence 2", c.name, loadErr, s)
		}
		if len(got) != 1 {
			t.Errorf("%s: Load yielded %d records before the damaged one, want 1", c.name, len(got))
		}
		var after []byte
		if err := pool.QueryRow(ctx, `SELECT row_to_json(e)::text::bytea FROM `+events+` e WHERE key = $1 AND seq = 2`, s.Key).Scan(&after); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("%s: reading changed the row", c.name)
		}
		if n := len(loadAll(t, b, good)); n != 2 {
			t.Errorf("%s: the good stream loads %d events", c.name, n)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	// The feed yields the good commit, then stops at the first damaged one.
	var commits []backend.FeedCommit
	var feedErr error
	for c, err := range b.ReadFeed(ctx, "") {
		if err != nil {
			feedErr = err
			break
		}
		commits = append(commits, c)
	}
	var ce *backend.CorruptError
	if !errors.As(feedErr, &ce) || ce.Stream.Key != "bad-0" {
		t.Fatalf("ReadFeed ended with %v, want a *CorruptError for stream bad-0", feedErr)
	}
	if len(commits) != 1 || commits[0].ID != "good-1" {
		t.Fatalf("ReadFeed yielded %d commits before the damaged one, want good-1", len(commits))
	}

	// A snapshot row damaged by hand.
	snaps, err := pgstore.NewSnapshotStore(ctx, pool, pgstore.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	if err := snaps.Put(ctx, backend.Snapshot{Stream: good, Sequence: 2, Version: 1, State: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	for _, set := range []string{"time_ns = 1000", "seq = 0"} {
		if _, err := pool.Exec(ctx, `UPDATE `+pgx.Identifier{schema, "snapshots"}.Sanitize()+` SET `+set); err != nil {
			t.Fatal(err)
		}
		if _, err := snaps.Get(ctx, good); !errors.Is(err, backend.ErrInvalidSnapshot) || !strings.Contains(err.Error(), good.String()) {
			t.Fatalf("a snapshot with %s: got %v, want ErrInvalidSnapshot naming the stream", set, err)
		}
	}
}

// A commit written by hand whose rows skip a sequence is reported by the
// feed as damaged (Load leaves contiguity to its caller, which reports a
// *backend.SequenceError).
func TestMalformedCommitInFeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 4)
	schema := newSchema(t, pool)
	b := newBackend(t, pool, schema)
	if _, err := pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, "events"}.Sanitize()+` (aggregate, key, seq, commit_id, event_type, data, time)
VALUES ('Probe', 'gap', 1, 'gap-1', 'Added', '{}', now()), ('Probe', 'gap', 3, 'gap-1', 'Added', '{}', now())`); err != nil {
		t.Fatal(err)
	}
	var feedErr error
	for _, err := range b.ReadFeed(ctx, "") {
		feedErr = err
	}
	var ce *backend.CorruptError
	if !errors.As(feedErr, &ce) || ce.Stream.Key != "gap" || ce.Sequence != 3 {
		t.Fatalf("ReadFeed: got %v, want a *CorruptError for Probe/gap at sequence 3", feedErr)
	}
}

func TestInvalidCheckpointNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 2)
	b := newBackend(t, pool, newSchema(t, pool))
	for _, name := range []string{"nul\x00", "bad\xff"} {
		if err := b.SaveCheckpoint(ctx, name, "x"); err == nil {
			t.Errorf("SaveCheckpoint(%q) succeeded", name)
		}
		if _, err := b.LoadCheckpoint(ctx, name); err == nil {
			t.Errorf("LoadCheckpoint(%q) succeeded", name)
		}
	}
	if err := b.SaveCheckpoint(ctx, "ok", "pos\x00"); err == nil {
		t.Error("a position with a NUL byte was saved")
	}
	for _, p := range []backend.Position{"x", "00000000000000000001/0000000000000000000x", "-0000000000000000001/00000000000000000001"} {
		var err error
		for _, e := range b.ReadFeed(ctx, p) {
			err = e
		}
		if !errors.Is(err, backend.ErrInvalidPosition) {
			t.Errorf("ReadFeed(%q): got %v, want ErrInvalidPosition", p, err)
		}
		if err := b.WaitFeed(ctx, p); !errors.Is(err, backend.ErrInvalidPosition) {
			t.Errorf("WaitFeed(%q): got %v, want ErrInvalidPosition", p, err)
		}
	}
}

// proxy forwards TCP connections to a PostgreSQL server until cut.
type proxy struct {
	url    string // the server's URL with the proxy's address
	l      net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func startProxy(tb testing.TB, serverURL string) *proxy {
	tb.Helper()
	u, err := neturl.Parse(serverURL)
	if err != nil {
		tb.Fatal(err)
	}
	target := u.Host
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	u.Host = l.Addr().String()
	p := &proxy{url: u.String(), l: l}
	if !strings.Contains(p.url, "?") {
		p.url += "?sslmode=disable"
	}
	tb.Cleanup(p.cut)
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
			if p.closed {
				p.mu.Unlock()
				_ = c.Close()
				_ = s.Close()
				return
			}
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
			go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
		}
	}()
	return p
}

// cut closes the listener and every connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	_ = p.l.Close()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
