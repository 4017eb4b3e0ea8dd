package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tailResult is what a tailing reader saw.
type tailResult struct {
	seen   map[string]int // commit ID -> times seen
	passes int
	err    error
}

// naiveTail tails the events table the common way, by its identity column
// alone ("position > last ORDER BY position"), until stop is closed, then
// makes one more pass. It never goes back: a row whose transaction commits
// after a row with a higher position was read is skipped for ever.
func naiveTail(pool *pgxpool.Pool, schema string, stop <-chan struct{}) tailResult {
	res := tailResult{seen: map[string]int{}}
	q := `SELECT position, commit_id FROM ` + pgx.Identifier{schema, "events"}.Sanitize() + ` WHERE position > $1 ORDER BY position`
	var last int64
	for {
		finished := false
		select {
		case <-stop:
			finished = true
		default:
		}
		rows, err := pool.Query(context.Background(), q, last)
		if err != nil {
			res.err = err
			return res
		}
		for rows.Next() {
			var (
				pos int64
				id  string
			)
			if err := rows.Scan(&pos, &id); err != nil {
				res.err = err
				rows.Close()
				return res
			}
			last = pos
			res.seen[id] = 1 // a commit's rows become visible together
		}
		rows.Close()
		if res.err = rows.Err(); res.err != nil {
			return res
		}
		res.passes++
		if finished {
			return res
		}
		time.Sleep(time.Millisecond) // a poll interval
	}
}

// feedTail tails the store's feed with ReadFeed and WaitFeed until stop is
// closed, then makes one more pass.
func feedTail(f backend.Feed, stop <-chan struct{}) tailResult {
	res := tailResult{seen: map[string]int{}}
	ctx := context.Background()
	var pos backend.Position
	for {
		finished := false
		select {
		case <-stop:
			finished = true
		default:
		}
		for c, err := range f.ReadFeed(ctx, pos) {
			if err != nil {
				res.err = err
				return res
			}
			if c.Position <= pos {
				res.err = fmt.Errorf("position %q after %q", c.Position, pos)
				return res
			}
			pos = c.Position
			res.seen[c.ID]++
		}
		res.passes++
		if finished {
			return res
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		_ = f.WaitFeed(wctx, pos)
		cancel()
	}
}

// TestTailingReaders reproduces the classic skip: 16 writers commit to
// their own streams and race on a shared one while two readers tail the
// same table, one by the identity column alone, one through the store's
// feed. Transactions take positions when they insert but become visible
// when they commit, not always in that order, so the naive reader, having
// read a higher position, never comes back for a lower one that commits
// late. The store's feed orders by transaction ID and reads only below the
// oldest running transaction, so it must see every acknowledged commit
// exactly once.
//
// Half of the commits go through Backend.Append (one statement, a short
// window between taking a position and committing); the other half are the
// same inserts in explicit transactions that spend up to 2ms between the
// insert and COMMIT, as an application holding a transaction a little
// longer (or a slow commit) does: the feed must not depend on every writer
// being quick.
func TestTailingReaders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 40)
	schema := newSchema(t, pool)
	b := newBackend(t, pool, schema)
	const writers, commits = 16, 20

	stop := make(chan struct{})
	naiveDone, feedDone := make(chan tailResult, 1), make(chan tailResult, 1)
	go func() { naiveDone <- naiveTail(pool, schema, stop) }()
	go func() { feedDone <- feedTail(b, stop) }()

	insert := `INSERT INTO ` + pgx.Identifier{schema, "events"}.Sanitize() + ` (aggregate, key, seq, commit_id, event_type, data, time)
SELECT 'Tail', $1, $2 + n, $3, 'Added', '{}', now() FROM generate_series(1, $4) n`
	var acked sync.Map // commit ID -> true
	var ackedN atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := backend.StreamID{AggregateType: "Tail", Key: fmt.Sprintf("own-%d", w)}
			slow := fmt.Sprintf("slow-%d", w)
			var ownHead, slowHead int64
			for i := 0; i < commits; i++ {
				size := 1 + i%3
				id := fmt.Sprintf("w%d-%d", w, i)
				if i%2 == 0 {
					if err := b.Append(ctx, testCommit(own, ownHead, size, id)); err != nil {
						errs <- err
						return
					}
					ownHead += int64(size)
				} else {
					err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						if _, err := tx.Exec(ctx, insert, slow, slowHead, id, size); err != nil {
							return err
						}
						time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
						return nil
					})
					if err != nil {
						errs <- err
						return
					}
					slowHead += int64(size)
				}
				acked.Store(id, true)
				ackedN.Add(1)
				// And one commit on the shared stream, retried on conflict.
				hot := backend.StreamID{AggregateType: "Tail", Key: "hot"}
				for attempt := 0; ; attempt++ {
					hid := fmt.Sprintf("hot-w%d-%d-%d", w, i, attempt)
					err := b.Append(ctx, testCommit(hot, headOf(t, b, hot), 1, hid))
					if err == nil {
						acked.Store(hid, true)
						ackedN.Add(1)
						break
					}
					if !errors.Is(err, backend.ErrConcurrency) || attempt > 1000 {
						errs <- err
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
	close(stop)
	naive, ours := <-naiveDone, <-feedDone
	if naive.err != nil || ours.err != nil {
		t.Fatalf("readers failed: naive %v, feed %v", naive.err, ours.err)
	}
	missed := func(r tailResult) (n int) {
		acked.Range(func(k, _ any) bool {
			if r.seen[k.(string)] == 0 {
				n++
			}
			return true
		})
		return n
	}
	naiveMissed, oursMissed := missed(naive), missed(ours)
	total := ackedN.Load()
	t.Logf("%d commits acknowledged; the naive reader (%d passes) missed %d (%.1f%%), the feed (%d passes) missed %d",
		total, naive.passes, naiveMissed, 100*float64(naiveMissed)/float64(total), ours.passes, oursMissed)
	if oursMissed != 0 {
		t.Errorf("the feed missed %d of %d acknowledged commits", oursMissed, total)
	}
	for id, n := range ours.seen {
		if n != 1 {
			t.Errorf("the feed yielded commit %s %d times", id, n)
		}
	}
	if len(ours.seen) != int(total) {
		t.Errorf("the feed yielded %d commits, %d were acknowledged", len(ours.seen), total)
	}
	if naiveMissed == 0 {
		t.Errorf("the naive reader missed nothing: the load did not reproduce the skip, so this test proves nothing about the feed")
	}
}

// testCommit returns a commit of n small records of stream after expected.
func testCommit(stream backend.StreamID, expected int64, n int, id string) backend.Commit {
	c := backend.Commit{Stream: stream, Expected: expected, ID: id, Records: make([]backend.Record, n)}
	for i := range c.Records {
		c.Records[i] = backend.Record{Stream: stream, Sequence: expected + int64(i) + 1, EventType: "Added",
			Data: []byte(fmt.Sprintf(`{"i":%d}`, i)), Timestamp: time.Now(), CommitID: id,
			Metadata: backend.Metadata{"commit": id}}
	}
	return c
}

// headOf returns the stream's last sequence.
func headOf(tb testing.TB, b backend.Backend, s backend.StreamID) int64 {
	var h int64
	for r, err := range b.Load(context.Background(), s, 0) {
		if err != nil {
			tb.Errorf("load %s: %v", s, err)
			return -1
		}
		h = r.Sequence
	}
	return h
}

// A reader in one process is woken by an append in another through
// LISTEN/NOTIFY, long before its poll interval; without notifications it
// waits for the poll interval.
func TestWaitFeedWokenAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 4)
	schema := newSchema(t, pool)
	writer := newBackend(t, newPool(t, 4), schema)
	quiet := newBackend(t, newPool(t, 4), schema, pgstore.WithoutNotify())
	reader := newBackend(t, newPool(t, 4), schema, pgstore.WithPollInterval(time.Hour))
	end := func() backend.Position {
		var p backend.Position
		for c, err := range reader.ReadFeed(ctx, "") {
			if err != nil {
				t.Fatal(err)
			}
			p = c.Position
		}
		return p
	}
	wait := func(append func(i int) error) error {
		pos := end()
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- reader.WaitFeed(wctx, pos) }()
		time.Sleep(200 * time.Millisecond) // let it reach its wait
		if err := append(0); err != nil {
			t.Fatal(err)
		}
		return <-done
	}
	s := backend.StreamID{AggregateType: "Probe", Key: "wake"}
	start := time.Now()
	if err := wait(func(int) error { return writer.Append(ctx, testCommit(s, 0, 1, "wake-1")) }); err != nil {
		t.Fatalf("WaitFeed was not woken by another process's append: %v", err)
	}
	t.Logf("woken after %v", time.Since(start).Round(time.Millisecond))
	if err := wait(func(int) error { return quiet.Append(ctx, testCommit(s, 1, 1, "quiet-2")) }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFeed after an append WithoutNotify: got %v, want it to sleep until its context ends", err)
	}
}
