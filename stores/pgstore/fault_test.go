package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/internal/testkit"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	faultCommandTimeout = 5 * time.Second
	// faultHangSlack is how far past its deadline a command may return
	// before the test calls it hung: generous, since the machine is shared.
	faultHangSlack = 10 * time.Second
)

// faultOutcome is what one command returned.
type faultOutcome struct {
	key, batch string
	size       int
	commandID  string // "" if the command ran without one
	err        error
	firstErr   error // for a command repeated after the restart, the error of its first attempt
	elapsed    time.Duration
}

// TestFaultKillPostmaster kills the PostgreSQL postmaster (and its client
// backends) with SIGKILL while
// writers race on a hot aggregate and on aggregates of their own (half of
// the commands with a command ID), restarts it on the same data directory,
// and reconciles: every acknowledged command is stored once and whole,
// nothing that lost a conflict is stored, a failed command is stored only if
// it reported eventsourcing.ErrUnknownOutcome, every command repeated with
// its command ID after the restart is applied exactly once, and the feed
// yields every stored commit once, each stream in order.
//
// The sessions run with synchronous_commit=on: the test server runs with it
// off (for speed), under which PostgreSQL may, by design, lose the last
// acknowledged commits in a crash.
func TestFaultKillPostmaster(t *testing.T) {
	testkit.RequireFaults(t)
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(postgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 12
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // after newSchema's cleanup drops the schema
	schema := newSchema(t, pool)
	b, err := pgstore.NewBackend(ctx, pool, pgstore.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	store := es.NewStore(b)
	reg := probe.NewRegistry()
	key := fmt.Sprintf("fault-%d", time.Now().UnixNano())
	const writers = 9
	keyOf := func(w int) string {
		if w%3 == 2 {
			return fmt.Sprintf("%s-cold%d", key, w)
		}
		return key + "-hot"
	}
	handle := func(k, batch string, size int, commandID string, timeout time.Duration) faultOutcome {
		p, err := probe.New(k, "", reg, store)
		if err != nil {
			panic(err) // a fixture error, not a store error
		}
		p.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 20, MinDelay: time.Millisecond, MaxDelay: 50 * time.Millisecond})
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if commandID != "" {
			cctx = es.WithCommandID(cctx, commandID)
		}
		start := time.Now()
		err = p.Handle(cctx, probe.Add{Batch: batch, Size: size})
		return faultOutcome{key: k, batch: batch, size: size, commandID: commandID, err: err, elapsed: time.Since(start)}
	}

	stop := make(chan struct{})
	var mu sync.Mutex
	var outcomes []faultOutcome
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				batch := fmt.Sprintf("w%d-%d", w, i)
				id := ""
				if i%2 == 0 {
					id = key + "-" + batch
				}
				o := handle(keyOf(w), batch, 1+i%3, id, faultCommandTimeout)
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				if o.err != nil {
					time.Sleep(20 * time.Millisecond) // don't spin while the server is down
				}
			}
		}()
	}

	time.Sleep(1500 * time.Millisecond)
	// Killing the postmaster alone lets its backends finish the statements
	// they are running (each exits when it next waits for its client), so
	// the server's client backends are killed too, first and at a moment
	// when an append is running if one is seen within two seconds, as in a
	// crash of the machine: statements in flight die mid-way, some perhaps
	// after their commit record is written, and their clients never get an
	// answer.
	backends, appending := serverBackends(ctx, pool, 2*time.Second)
	for _, pid := range backends {
		_ = syscall.Kill(pid, syscall.SIGKILL) // gone already is fine
	}
	srv := testkit.Server("postgres")
	srv.Kill(t)
	t.Logf("killed the postmaster and %d client backends (an append running: %v)", len(backends), appending)
	// A command while the server is down fails, within its deadline.
	down := handle(key+"-hot", "probe", 1, key+"-probe", 500*time.Millisecond)
	if down.err == nil {
		t.Errorf("a command succeeded while PostgreSQL was down")
	}
	t.Logf("while down: %v", down.err)
	time.Sleep(time.Second)
	srv.Restart(t)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	outcomes = append(outcomes, down)

	// Repeat every failed command that had a command ID, as a caller that
	// got an error would: each must now succeed, and apply once.
	var repeated int
	for i, o := range outcomes {
		if o.err == nil || o.commandID == "" || errors.Is(o.err, es.ErrConcurrency) {
			continue
		}
		r := handle(o.key, o.batch+"-again", o.size, o.commandID, time.Minute)
		if r.err != nil {
			t.Fatalf("repeating command %s after the restart: %v", o.commandID, r.err)
		}
		outcomes[i].firstErr, outcomes[i].err, outcomes[i].batch = o.err, nil, o.batch+"|"+o.batch+"-again" // one of the two is stored
		repeated++
	}

	stored := map[string]int{} // batch -> events stored
	for _, k := range []string{key + "-hot", keyOf(2), keyOf(5), keyOf(8)} {
		p, err := probe.New(k, "", reg, store)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = p.Refresh(rctx)
		cancel()
		if err != nil {
			t.Fatalf("after the restart, stream %s does not load: %v", k, err)
		}
		for _, id := range p.IDs {
			stored[id[:strings.LastIndexByte(id, '-')]]++
		}
	}

	var acked, conflicts, unknown, unknownStored, unknownOutcome int
	kinds := map[string]int{}
	for _, o := range outcomes {
		if e := firstNonNil(o.firstErr, o.err); e != nil {
			kinds[digits.ReplaceAllString(strings.ReplaceAll(e.Error(), o.key, "KEY"), "N")]++
		}
		if errors.Is(o.err, es.ErrUnknownOutcome) || errors.Is(o.firstErr, es.ErrUnknownOutcome) {
			unknownOutcome++
		}
		if o.elapsed > faultCommandTimeout+faultHangSlack {
			t.Errorf("command %s took %v, past its %v deadline", o.batch, o.elapsed, faultCommandTimeout)
		}
		batches := strings.Split(o.batch, "|")
		n := 0
		for _, b := range batches {
			if stored[b] != 0 {
				n++
				if stored[b] != o.size {
					t.Errorf("batch %s stored %d of its %d events", b, stored[b], o.size)
				}
			}
		}
		switch {
		case o.err == nil && len(batches) == 2: // failed, then repeated with its command ID
			if n != 1 {
				t.Errorf("command %s, repeated after %s, is stored %d times, want once", o.commandID, batches[0], n)
			}
			if stored[batches[0]] != 0 {
				unknownStored++
				if !errors.Is(o.firstErr, es.ErrUnknownOutcome) {
					t.Errorf("batch %s is stored although its command failed with %v, which does not match ErrUnknownOutcome", batches[0], o.firstErr)
				}
			}
		case o.err == nil:
			acked++
			if n != 1 {
				t.Errorf("acknowledged batch %s is not stored", o.batch)
			}
		case errors.Is(o.err, es.ErrConcurrency):
			conflicts++
			if n != 0 {
				t.Errorf("batch %s lost a conflict but is stored", o.batch)
			}
		default:
			unknown++
			if n != 0 {
				unknownStored++
				if !errors.Is(o.err, es.ErrUnknownOutcome) {
					t.Errorf("batch %s is stored although its command failed with %v, which does not match ErrUnknownOutcome", o.batch, o.err)
				}
			}
		}
	}
	t.Logf("%d commands: %d acknowledged, %d conflicts, %d failed without a command ID, %d failed and repeated with their command ID; %d failed with ErrUnknownOutcome, %d failed commands were stored",
		len(outcomes), acked, conflicts, unknown, repeated, unknownOutcome, unknownStored)
	for k, n := range kinds {
		t.Logf("%4d x %s", n, k)
	}
	if acked == 0 || unknown+repeated == 0 {
		t.Errorf("the run did not exercise the fault: %d acknowledged, %d failed", acked, unknown+repeated)
	}

	// The feed holds every stored commit once, each stream in order.
	next := map[backend.StreamID]int64{}
	seen := map[string]bool{}
	events := 0
	for c, err := range b.ReadFeed(ctx, "") {
		if err != nil {
			t.Fatalf("ReadFeed after the restart: %v", err)
		}
		if seen[c.ID] {
			t.Fatalf("the feed yields commit %s twice", c.ID)
		}
		seen[c.ID] = true
		if c.Expected != next[c.Stream] {
			t.Fatalf("the feed yields a commit of %s after %d where %d was expected", c.Stream, c.Expected, next[c.Stream])
		}
		next[c.Stream] = c.Last()
		events += len(c.Records)
	}
	total := 0
	for _, n := range stored {
		total += n
	}
	if events != total {
		t.Fatalf("the feed yields %d events, the streams hold %d", events, total)
	}
}

var digits = regexp.MustCompile(`[0-9]+`)

func firstNonNil(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// serverBackends returns the PIDs of the server's client backends, polling
// for up to wait until one of them runs an append.
func serverBackends(ctx context.Context, pool *pgxpool.Pool, wait time.Duration) (pids []int, appending bool) {
	deadline := time.Now().Add(wait)
	for {
		pids, appending = pids[:0], false
		rows, err := pool.Query(ctx, `SELECT pid, state = 'active' AND query LIKE 'INSERT INTO %events%' FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`)
		if err != nil {
			return pids, false
		}
		for rows.Next() {
			var (
				pid    int
				active bool
			)
			if rows.Scan(&pid, &active) == nil {
				pids = append(pids, pid)
				appending = appending || active
			}
		}
		rows.Close()
		if appending || time.Now().After(deadline) {
			return pids, appending
		}
	}
}
