package integration_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/internal/testkit"
)

// hangSlack is how far past its deadline a command may return before the
// test calls it hung: generous, since the machine is shared.
const hangSlack = 10 * time.Second

// command is what happened to one command of a writer.
type command struct {
	batch    string
	size     int
	first    error // the first attempt's error
	repeats  int   // attempts after the first, with the same command ID
	ranAgain bool  // a repeat ran the handler (the earlier attempts were not stored)
	final    error // nil once an attempt succeeded
	slowest  time.Duration
}

// writer issues commands on a hot aggregate (or its own cold one) until stop
// closes. Each command carries its batch name as command ID; a command that
// fails other than by a conflict is repeated with the same ID, from a fresh
// instance (as a restarted process would), until it succeeds or giveUp
// closes.
func writer(store es.EventStore, key string, w int, stop, giveUp <-chan struct{}) []command {
	reg := probe.NewRegistry()
	var out []command
	for i := 0; ; i++ {
		select {
		case <-stop:
			return out
		default:
		}
		c := command{batch: fmt.Sprintf("%s-w%d-%d", key, w, i), size: 1 + i%3}
		for attempt := 0; ; attempt++ {
			p, err := probe.New(key, "", reg, store)
			if err != nil {
				panic(err)
			}
			p.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 20, MinDelay: time.Millisecond, MaxDelay: 50 * time.Millisecond})
			ctx, cancel := context.WithTimeout(es.WithCommandID(context.Background(), c.batch), commandTimeout)
			ran := false
			start := time.Now()
			err = p.Run(ctx, func(ctx context.Context) ([]es.Event, error) {
				ran = true
				return p.HandleAdd(ctx, probe.Add{Batch: c.batch, Size: c.size})
			})
			c.slowest = max(c.slowest, time.Since(start))
			cancel()
			if attempt == 0 {
				c.first = err
			} else {
				c.repeats++
				c.ranAgain = c.ranAgain || ran
			}
			c.final = err
			if err == nil || errors.Is(err, es.ErrConcurrency) {
				break
			}
			select {
			case <-giveUp:
			case <-time.After(50 * time.Millisecond): // don't spin while the server is down
				continue
			}
			break
		}
		out = append(out, c)
	}
}

// storedBatches returns how many events of each batch the streams hold,
// failing if a batch is split.
func storedBatches(t *testing.T, store es.EventStore, keys []string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, k := range keys {
		p, err := probe.New(k, "", probe.NewRegistry(), store)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = p.Refresh(ctx)
		cancel()
		if err != nil {
			t.Fatalf("after the restart, stream %s does not load: %v", k, err)
		}
		for _, id := range p.IDs {
			got[id[:strings.LastIndexByte(id, '-')]]++
		}
	}
	return got
}

// TestFaultServerKilled kills each database server while writers race on it,
// restarts it, lets the writers repeat what failed with the same command IDs,
// and reconciles: every acknowledged command is stored exactly once, nothing
// that conflicted is stored, no repeat applied twice, and a command found
// stored after its first attempt failed had been told ErrUnknownOutcome.
func TestFaultServerKilled(t *testing.T) {
	testkit.RequireFaults(t)
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			store := db.open(t)
			base := unique("fault")
			keys := []string{base + "-hot", base + "-cold1", base + "-cold2"}
			stop, giveUp := make(chan struct{}), make(chan struct{})
			var mu sync.Mutex
			var commands []command
			var wg sync.WaitGroup
			for w := 0; w < 9; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cs := writer(store, keys[max(0, w%4-1)], w, stop, giveUp)
					mu.Lock()
					commands = append(commands, cs...)
					mu.Unlock()
				}()
			}
			time.Sleep(1500 * time.Millisecond)
			db.server.Kill(t)
			// A command while the server is down must fail within its deadline.
			p, _ := probe.New(base+"-hot", "", probe.NewRegistry(), store)
			pctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			if err := p.Handle(pctx, probe.Add{Batch: "down", Size: 1}); err == nil {
				t.Errorf("a command succeeded while %s was down", db.server)
			}
			cancel()
			time.Sleep(time.Second)
			db.server.Restart(t)
			time.Sleep(3 * time.Second)
			close(stop)
			time.AfterFunc(2*commandTimeout, func() { close(giveUp) })
			wg.Wait()

			got := storedBatches(t, store, keys)
			var acked, conflicts, repeated, recognised, lost int
			for _, c := range commands {
				if c.slowest > commandTimeout+hangSlack {
					t.Errorf("command %s took %v, past its %v deadline", c.batch, c.slowest, commandTimeout)
				}
				n := got[c.batch]
				delete(got, c.batch)
				switch {
				case c.final == nil:
					acked++
					if n != c.size {
						t.Errorf("acknowledged command %s: %d of its %d events stored (after %d repeats)", c.batch, n, c.size, c.repeats)
					}
					if c.repeats > 0 {
						repeated++
						if !c.ranAgain {
							recognised++ // an earlier attempt was stored
							if !errors.Is(c.first, es.ErrUnknownOutcome) {
								t.Errorf("command %s was stored by an attempt that failed with %v, not ErrUnknownOutcome", c.batch, c.first)
							}
						}
					}
				case errors.Is(c.final, es.ErrConcurrency):
					conflicts++
					if n != 0 {
						t.Errorf("command %s failed with a conflict but %d events are stored", c.batch, n)
					}
				default:
					lost++ // gave up: may or may not be stored, but at most once
					if n != 0 && n != c.size {
						t.Errorf("command %s: %d of %d events stored", c.batch, n, c.size)
					}
				}
			}
			for batch, n := range got {
				if batch != "down" {
					t.Errorf("batch %s: %d events stored that no command accounts for", batch, n)
				}
			}
			if acked == 0 {
				t.Fatal("no command succeeded")
			}
			t.Logf("%d commands: %d acknowledged (%d after repeats with their command ID, %d of them found already stored), %d conflicts, %d given up",
				len(commands), acked, repeated, recognised, conflicts, lost)
		})
	}
}
