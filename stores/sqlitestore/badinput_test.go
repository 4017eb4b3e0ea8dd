package sqlitestore_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/sqlitestore"
)

// describe names the first of the package's errors that err matches.
func describe(err error) string {
	if err == nil {
		return "ok"
	}
	for _, e := range []struct {
		name string
		err  error
	}{
		{"ErrCannotOpen", sqlitestore.ErrCannotOpen}, {"ErrReadOnly", sqlitestore.ErrReadOnly},
		{"ErrNotDatabase", sqlitestore.ErrNotDatabase}, {"ErrSchemaVersion", sqlitestore.ErrSchemaVersion},
		{"ErrLocked", sqlitestore.ErrLocked}, {"ErrFull", sqlitestore.ErrFull},
	} {
		if errors.Is(err, e.err) {
			return e.name + ": " + err.Error()
		}
	}
	return "unclassified: " + err.Error()
}

// seed opens path, appends a commit of n events to stream "Seed/s" and
// closes the Backend.
func seed(t *testing.T, path string, n int) backend.StreamID {
	t.Helper()
	b, err := sqlitestore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s := backend.StreamID{AggregateType: "Seed", Key: "s"}
	if err := b.Append(context.Background(), crashCommit(s, 0, n, "seed")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkSeed fails t unless path holds the n events seed wrote.
func checkSeed(t *testing.T, path string, n int) {
	t.Helper()
	b := open(t, path)
	got := 0
	for r, err := range b.Load(context.Background(), backend.StreamID{AggregateType: "Seed", Key: "s"}, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if r.CommitID != "seed" {
			t.Fatalf("event %d has commit ID %q", r.Sequence, r.CommitID)
		}
		got++
	}
	if got != n {
		t.Fatalf("the stream holds %d events, want %d", got, n)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNotADatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notes.txt")
	content := bytes.Repeat([]byte("these are my notes, not a database\n"), 300)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := sqlitestore.Open(context.Background(), path)
	if !errors.Is(err, sqlitestore.ErrNotDatabase) || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want ErrNotDatabase naming %s", err, path)
	}
	if !bytes.Equal(readFile(t, path), content) {
		t.Fatal("Open changed the file")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("Open left files beside it: %v", ents)
	}
}

func TestNewerSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "future.db")
	seed(t, path, 3)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE es_schema SET version = ? WHERE name = 'eventsourcing'`, sqlitestore.SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, path)
	_, err = sqlitestore.Open(context.Background(), path)
	if !errors.Is(err, sqlitestore.ErrSchemaVersion) || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("got %v, want ErrSchemaVersion naming version 2", err)
	}
	if !bytes.Equal(readFile(t, path), before) {
		t.Fatal("Open changed a database it refused")
	}
	// And the same through NewBackend on a handle the caller owns.
	own, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if _, err := sqlitestore.NewBackend(context.Background(), own); !errors.Is(err, sqlitestore.ErrSchemaVersion) {
		t.Fatalf("NewBackend: got %v, want ErrSchemaVersion", err)
	}
	// Back at the version this package writes, nothing was lost.
	if _, err := own.Exec(`UPDATE es_schema SET version = ? WHERE name = 'eventsourcing'`, sqlitestore.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	checkSeed(t, path, 3)
}

// A directory the process may not write to: Open cannot create a database
// there, and cannot open an existing one either (write-ahead logging needs
// files beside it). Root ignores permissions, so as root the check runs in
// a child process as the user nobody.
func TestReadOnlyDirectory(t *testing.T) {
	base, err := os.MkdirTemp("", "sqlitestore-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(base, 0o755); _ = os.RemoveAll(base) })
	existing := filepath.Join(base, "existing.db")
	seed(t, existing, 2)
	if err := os.Chmod(existing, 0o644); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, existing)

	openAs := func(path string) string {
		if os.Geteuid() != 0 {
			_, err := sqlitestore.Open(context.Background(), path, sqlitestore.WithBusyTimeout(100*time.Millisecond))
			return describe(err)
		}
		// The test binary, where the user nobody can run it.
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(base, "test.bin")
		if _, err := os.Stat(bin); err != nil {
			copyFile(t, exe, bin)
		}
		cmd := child(t, "open", path)
		cmd.Path, cmd.Args[0] = bin, bin
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child as nobody: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.Chmod(base, 0o555); err != nil {
		t.Fatal(err)
	}
	if got := openAs(filepath.Join(base, "new.db")); !strings.HasPrefix(got, "ErrCannotOpen: ") || !strings.Contains(got, "new.db") {
		t.Fatalf("a new database in a read-only directory: %s", got)
	}
	got := openAs(existing)
	if !strings.HasPrefix(got, "ErrCannotOpen: ") && !strings.HasPrefix(got, "ErrReadOnly: ") {
		t.Fatalf("an existing database in a read-only directory: %s", got)
	}
	t.Logf("new database: %s", openAs(filepath.Join(base, "new.db")))
	t.Logf("existing database: %s", got)
	if _, err := os.Stat(filepath.Join(base, "new.db")); !os.IsNotExist(err) {
		t.Fatalf("a file was created: %v", err)
	}
	if !bytes.Equal(readFile(t, existing), before) {
		t.Fatal("the existing database changed")
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	checkSeed(t, existing, 2)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "events.db")
	if _, err := sqlitestore.Open(context.Background(), path); !errors.Is(err, sqlitestore.ErrCannotOpen) {
		t.Fatalf("got %v, want ErrCannotOpen", err)
	}
}

// lockBy starts a process that locks path (see childLock) and returns a
// function that releases the lock and waits for the process to end.
func lockBy(t *testing.T, role, path string) (release func()) {
	t.Helper()
	cmd := child(t, role, path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("the locking process: %v", err)
		}
	}
	t.Cleanup(release)
	line := make([]byte, 7)
	if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "locked\n" {
		t.Fatalf("the locking process said %q, %v", line, err)
	}
	return release
}

// Another process holds the write lock for a long time: appends, of a
// Backend opened before and of one opened meanwhile (opening a database
// whose tables exist needs no write), wait for the busy timeout and fail
// with ErrLocked, storing nothing, while reads go on; once the lock is
// gone, appends work and nothing was lost.
func TestWriteLockedByAnotherProcess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "locked.db")
	s := seed(t, path, 2)
	before := open(t, path, sqlitestore.WithBusyTimeout(200*time.Millisecond))
	release := lockBy(t, "lock-write", path)

	during := open(t, path, sqlitestore.WithBusyTimeout(200*time.Millisecond))
	for _, b := range []*sqlitestore.Backend{before, during} {
		err := b.Append(ctx, crashCommit(s, 2, 1, "while-locked"))
		if !errors.Is(err, sqlitestore.ErrLocked) || errors.Is(err, backend.ErrUnknownOutcome) || !strings.Contains(err.Error(), s.String()) {
			t.Fatalf("Append to a locked file: got %v, want ErrLocked naming the stream", err)
		}
		t.Log(err)
	}
	// A context that ends first ends the wait.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := before.Append(cctx, crashCommit(s, 2, 1, "while-locked-2")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append with a short deadline: got %v, want context.DeadlineExceeded", err)
	}
	// Readers run beside the other process's writer.
	if n := countEvents(t, before, s); n != 2 {
		t.Fatalf("while locked, the stream loads %d events, want 2", n)
	}

	release()
	if err := before.Append(ctx, crashCommit(s, 2, 1, "after-lock")); err != nil {
		t.Fatalf("Append once the lock is gone: %v", err)
	}
	for r, err := range before.Load(ctx, s, 0) {
		if err == nil && (r.CommitID == "while-locked" || r.CommitID == "while-locked-2") {
			t.Fatalf("a refused append stored event %d", r.Sequence)
		}
	}
	if n := countEvents(t, before, s); n != 3 {
		t.Fatalf("the stream holds %d events, want 3", n)
	}
}

// Another process holds the file with an exclusive lock: nothing can read
// or write it, and Open fails with ErrLocked after the busy timeout,
// changing nothing.
func TestExclusivelyLockedByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exclusive.db")
	seed(t, path, 2)
	release := lockBy(t, "lock-exclusive", path)
	_, err := sqlitestore.Open(context.Background(), path, sqlitestore.WithBusyTimeout(200*time.Millisecond))
	if !errors.Is(err, sqlitestore.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of an exclusively locked file: got %v, want ErrLocked naming the file", err)
	}
	t.Log(err)
	release()
	checkSeed(t, path, 2)
}

func countEvents(t *testing.T, b backend.Backend, s backend.StreamID) int {
	t.Helper()
	n := 0
	for _, err := range b.Load(context.Background(), s, 0) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// A full disk, simulated with SQLite's limit on the database's pages
// (PRAGMA max_page_count, set on every connection of a handle the test
// owns): a commit that does not fit fails with ErrFull and stores nothing,
// smaller ones still fit, and the data is intact.
func TestDiskFull(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "full.db")
	s := seed(t, path, 3)
	var pages int
	probe, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	_ = probe.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=max_page_count("+strconv.Itoa(pages+3)+")")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b, err := sqlitestore.NewBackend(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	big := crashCommit(s, 3, 5, "too-big")
	for i := range big.Records {
		big.Records[i].Data = bytes.Repeat([]byte{'z'}, 8000)
	}
	err = b.Append(ctx, big)
	if !errors.Is(err, sqlitestore.ErrFull) || errors.Is(err, backend.ErrUnknownOutcome) || !strings.Contains(err.Error(), s.String()) {
		t.Fatalf("a commit larger than the space left: got %v, want ErrFull naming the stream", err)
	}
	if err := b.Append(ctx, crashCommit(s, 3, 1, "small")); err != nil {
		t.Fatalf("a small commit after a full one: %v", err)
	}
	n := 0
	for r, err := range b.Load(ctx, s, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if r.CommitID == "too-big" {
			t.Fatal("the refused commit stored an event")
		}
		n++
	}
	if n != 4 {
		t.Fatalf("the stream holds %d events, want 4", n)
	}
	var result string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&result); err != nil || result != "ok" {
		t.Fatalf("integrity_check: %q, %v", result, err)
	}
}

func TestCommitTooLarge(t *testing.T) {
	ctx := context.Background()
	b := open(t, filepath.Join(t.TempDir(), "large.db"), sqlitestore.WithMaxCommitSize(4000))
	s := backend.StreamID{AggregateType: "Large", Key: "l"}
	c := crashCommit(s, 0, 5, "large") // 5 events of about 800 bytes, plus the columns
	err := b.Append(ctx, c)
	var tl *backend.CommitTooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, backend.ErrCommitTooLarge) || tl.Limit != 4000 || tl.Events != 5 || tl.Size <= 4000 {
		t.Fatalf("got %v, want a *backend.CommitTooLargeError over 4000 bytes", err)
	}
	for _, err := range b.Load(ctx, s, 0) {
		t.Fatalf("the refused commit stored something (%v)", err)
	}
	if err := b.Append(ctx, crashCommit(s, 0, 3, "fits")); err != nil {
		t.Fatalf("a commit under the limit: %v", err)
	}
}

func TestNewBackendRefusesOpenOptions(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "own.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, o := range []sqlitestore.Option{sqlitestore.WithSynchronous(sqlitestore.SynchronousNormal), sqlitestore.WithMaxConns(2)} {
		if _, err := sqlitestore.NewBackend(context.Background(), db, o); err == nil {
			t.Fatal("NewBackend accepted an option it cannot apply")
		}
	}
	b, err := sqlitestore.NewBackend(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		t.Fatalf("Close closed a *sql.DB the caller owns: %v", err)
	}
}

// Write-ahead logging is required: an in-memory database is refused.
func TestInMemoryRefused(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := sqlitestore.NewBackend(context.Background(), db); err == nil || !strings.Contains(err.Error(), "write-ahead logging") {
		t.Fatalf("got %v, want an error about write-ahead logging", err)
	}
}

// A caller's context ends the wait for a connection too: with a pool of
// one connection held elsewhere, Append returns the context's error and
// stores nothing.
func TestAppendWaitsForConnectionWithContext(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pool.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	b, err := sqlitestore.NewBackend(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	held, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := backend.StreamID{AggregateType: "Pool", Key: "p"}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := b.Append(cctx, crashCommit(s, 0, 1, "waits")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, b, s); n != 0 {
		t.Fatalf("the stream holds %d events", n)
	}
	if err := b.Append(ctx, crashCommit(s, 0, 1, "later")); err != nil {
		t.Fatal(err)
	}
}
