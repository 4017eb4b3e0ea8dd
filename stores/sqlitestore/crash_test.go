package sqlitestore_test

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
)

type ack struct {
	key         string
	first, last int64
	id          string
}

// A writer process is killed with SIGKILL in the middle of a run of
// commits (four goroutines appending at once), five times over on the
// same file. After each kill the database is reopened: every commit the
// writer acknowledged is stored whole, no commit is stored in part, the
// feed yields every stored commit whole and in stream order, SQLite finds
// the file intact, and the store takes new commits.
func TestCrashKilledWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	var acked []ack
	for round := 0; round < 5; round++ {
		acked = append(acked, runAndKill(t, path, 60)...)
		checkAfterCrash(t, path, acked)
	}
}

// runAndKill starts a writer on path, kills it with SIGKILL once it has
// acknowledged n commits, and returns every commit it acknowledged
// (including those printed after the n-th, before it died).
func runAndKill(t *testing.T, path string, n int) []ack {
	t.Helper()
	cmd := child(t, "writer", path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acks []ack
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 5 || f[0] != "ack" {
			t.Fatalf("writer printed %q", sc.Text())
		}
		first, _ := strconv.ParseInt(f[2], 10, 64)
		last, _ := strconv.ParseInt(f[3], 10, 64)
		acks = append(acks, ack{key: f[1], first: first, last: last, id: f[4]})
		if len(acks) == n && !killed {
			// Kill at a random moment of the run, not right after an
			// acknowledgement (while the writer prints).
			go func() {
				time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
				_ = cmd.Process.Signal(syscall.SIGKILL)
			}()
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("the writer stopped after %d commits: %v", len(acks), err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the writer ended with %v, not SIGKILL", err)
	}
	t.Logf("writer killed after %d acknowledged commits", len(acks))
	return acks
}

func checkAfterCrash(t *testing.T, path string, acked []ack) {
	t.Helper()
	ctx := context.Background()
	b := open(t, path)
	defer b.Close()

	var result string
	if err := b.DB().QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&result); err != nil || result != "ok" {
		t.Fatalf("integrity_check: %q, %v", result, err)
	}

	// Every stream: commits whole, in order, each event naming its commit.
	stored := map[string]ack{} // commit ID -> where it is
	heads := map[string]int64{}
	for w := 0; w < 4; w++ {
		s := backend.StreamID{AggregateType: "Crash", Key: "w" + strconv.Itoa(w)}
		var cur ack
		left := 0
		for r, err := range b.Load(ctx, s, 0) {
			if err != nil {
				t.Fatalf("load %s: %v", s, err)
			}
			var ev struct {
				Commit string
				I, N   int
			}
			if err := json.Unmarshal(r.Data, &ev); err != nil {
				t.Fatalf("%s event %d: %v", s, r.Sequence, err)
			}
			if ev.Commit != r.CommitID {
				t.Fatalf("%s event %d names commit %s but is stored with ID %s", s, r.Sequence, ev.Commit, r.CommitID)
			}
			if left == 0 { // the start of a commit
				if ev.I != 0 {
					t.Fatalf("%s event %d is event %d of commit %s: its first events are missing", s, r.Sequence, ev.I, ev.Commit)
				}
				cur, left = ack{key: s.Key, first: r.Sequence, last: r.Sequence + int64(ev.N) - 1, id: r.CommitID}, ev.N
			} else if r.CommitID != cur.id || int64(ev.I) != r.Sequence-cur.first {
				t.Fatalf("%s event %d: commit %s was cut short (%d of its events missing)", s, r.Sequence, cur.id, left)
			}
			if left--; left == 0 {
				stored[cur.id] = cur
			}
			heads[s.Key] = r.Sequence
		}
		if left != 0 {
			t.Fatalf("%s: the last commit %s lacks %d events", s, cur.id, left)
		}
	}
	for _, a := range acked {
		if got, ok := stored[a.id]; !ok || got != a {
			t.Fatalf("acknowledged commit %+v is not stored whole (found %+v)", a, got)
		}
	}

	// The feed yields each stored commit once, whole, in each stream's order.
	next := map[backend.StreamID]int64{}
	seen := 0
	var last backend.Position
	for c, err := range b.ReadFeed(ctx, "") {
		if err != nil {
			t.Fatalf("read feed: %v", err)
		}
		if c.Position <= last {
			t.Fatalf("feed position %q after %q", c.Position, last)
		}
		last = c.Position
		if c.Expected != next[c.Stream] {
			t.Fatalf("feed: commit %s of %s follows %d, want %d", c.ID, c.Stream, c.Expected, next[c.Stream])
		}
		next[c.Stream] = c.Last()
		if want, ok := stored[c.ID]; !ok || want.first != c.First() || want.last != c.Last() {
			t.Fatalf("feed commit %s (%d..%d) is not a whole stored commit", c.ID, c.First(), c.Last())
		}
		seen++
	}
	if seen != len(stored) {
		t.Fatalf("the feed yields %d commits, the streams hold %d", seen, len(stored))
	}
	t.Logf("%d commits stored, %d acknowledged before the kills", len(stored), len(acked))

	// The store takes new commits after the crash.
	s := backend.StreamID{AggregateType: "Crash", Key: "w0"}
	if err := b.Append(ctx, crashCommit(s, heads["w0"], 2, "after-crash-"+strconv.Itoa(len(acked)))); err != nil {
		t.Fatalf("append after the crash: %v", err)
	}
}
