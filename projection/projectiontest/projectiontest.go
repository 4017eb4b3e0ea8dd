// Package projectiontest is the proof harness of the read side: it kills
// and restarts a projection runner at random points while writers commit
// to an event store, then checks that the read model equals the fold of
// every stored event, with nothing applied twice and nothing skipped. The
// tests of each Source and Store (memory feed, SQL feeds, JetStream) run
// it; a third-party Source can too.
package projectiontest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/projection"
)

// Model is a read model under test: it applies the Added events of the
// internal probe aggregate and can tell what it applied.
type Model interface {
	// Open returns a new projection over the model, as a restarted
	// process would make it. (A method named Projection... would be taken
	// for a malformed Project method.)
	Open(reg es.EventRegistry) (*projection.Projection, error)
	// Applied returns, for each stream, the IDs of the Added events
	// applied, in the order applied, repeats included.
	Applied(ctx context.Context) (map[es.StreamID][]string, error)
}

// KillConfig configures RunKillRestart. Store, Source and Progress are
// required.
type KillConfig struct {
	Store    es.EventStore     // where the writers commit
	Source   projection.Source // where the runner reads what they commit
	Progress projection.Store  // the runner's progress; it must outlive each runner
	Model    Model             // the read model (default: an in-memory one)
	Options  []projection.RunnerOption
	Writers  int           // concurrent writers (default 16)
	Commands int           // commands per writer (default 30)
	Kills    int           // runners killed before the last one (default 12)
	Settle   time.Duration // how long the last runner may take to see every commit (default 30 s)
}

// KillResult reports a run.
type KillResult struct {
	Events   int // events stored (and applied)
	Commands int // commands acknowledged
	Kills    int // runners killed, in Apply or between units of work
	InApply  int // of which inside Apply, after some events of a unit of work were applied
}

// RunKillRestart starts cfg.Writers writers, each committing cfg.Commands
// commands of 1 to 3 events through probe aggregates (half of them on a
// stream all writers share, so they conflict), and meanwhile runs the
// projection, killing its runner cfg.Kills times: by cancelling its
// context at a random moment, or from inside Apply after a random number of
// events of a unit of work (so that a transaction is cut in the middle).
// Each restart makes a new projection and runner from cfg.Model,
// cfg.Source and cfg.Progress. When the writers are done, a last runner
// catches up; then the read model must equal the fold of every stored
// event, stream by stream, with no event applied twice.
func RunKillRestart(t *testing.T, cfg KillConfig) KillResult {
	t.Helper()
	if cfg.Model == nil {
		cfg.Model = NewMemoryModel()
	}
	if cfg.Writers <= 0 {
		cfg.Writers = 16
	}
	if cfg.Commands <= 0 {
		cfg.Commands = 30
	}
	if cfg.Kills <= 0 {
		cfg.Kills = 12
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 30 * time.Second
	}
	ctx := context.Background()
	reg := probe.NewRegistry()
	base := fmt.Sprintf("kr%x", rand.Uint32())

	// The writers.
	var wg sync.WaitGroup
	var commands atomic.Int64
	keys := map[string]bool{base + "-hot": true}
	var keysMu sync.Mutex
	for w := 0; w < cfg.Writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := fmt.Sprintf("%s-w%d", base, w)
			keysMu.Lock()
			keys[own] = true
			keysMu.Unlock()
			for i := 0; i < cfg.Commands; i++ {
				key := own
				if i%2 == 0 {
					key = base + "-hot"
				}
				p, err := probe.New(key, "", reg, cfg.Store)
				if err != nil {
					t.Error(err)
					return
				}
				err = p.Handle(ctx, probe.Add{Batch: fmt.Sprintf("w%d-%d", w, i), Size: 1 + rand.IntN(3)})
				switch {
				case err == nil:
					commands.Add(1)
				case errors.Is(err, es.ErrConcurrency): // gave up after its retries: stored nothing
				default:
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()

	// The runners, killed one after the other.
	res := KillResult{}
	newRunner := func(k *killer) *projection.Runner {
		p, err := cfg.Model.Open(reg)
		if err != nil {
			t.Fatal(err)
		}
		var h projection.Handler = p
		if k != nil {
			h = &killHandler{Projection: p, k: k}
		}
		r, err := projection.NewRunner(h, cfg.Source, cfg.Progress, cfg.Options...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for res.Kills < cfg.Kills {
		rctx, cancel := context.WithCancel(ctx)
		k := &killer{cancel: cancel}
		life := time.Duration(2+rand.IntN(25)) * time.Millisecond
		if res.Kills%2 == 0 {
			k.after.Store(int64(1 + rand.IntN(20))) // die inside Apply, after this many events
			life = 2 * time.Second                  // or later, if no events come
		}
		done := make(chan error, 1)
		r := newRunner(k)
		go func() { done <- r.Run(rctx) }()
		select {
		case <-time.After(life):
			cancel()
		case <-rctx.Done():
		}
		err := <-done
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("runner %d: %v", res.Kills, err)
		}
		res.Kills++
		if k.fired.Load() {
			res.InApply++
		}
		select {
		case <-writing:
			if res.Kills >= cfg.Kills/2 {
				res.Kills = cfg.Kills // the writers are done: enough
			}
		default:
		}
	}
	<-writing
	if t.Failed() {
		t.FailNow()
	}
	res.Commands = int(commands.Load())

	// The fold of what is stored.
	want := map[es.StreamID][]string{}
	for key := range keys {
		p, err := probe.New(key, "", reg, cfg.Store)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if len(p.IDs) > 0 {
			want[p.StreamID()] = p.IDs
			res.Events += len(p.IDs)
		}
	}

	// The last runner catches up, until the source has delivered it all.
	last := newRunner(nil)
	deadline := time.Now().Add(cfg.Settle)
	var got map[es.StreamID][]string
	for {
		cctx, cancel := context.WithDeadline(ctx, deadline)
		err := last.CatchUp(cctx)
		cancel()
		if err != nil {
			t.Fatalf("the last runner: %v", err)
		}
		if got, err = cfg.Model.Applied(ctx); err != nil {
			t.Fatal(err)
		}
		if count(got, want) >= res.Events || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	Compare(t, got, want)
	t.Logf("%d events of %d commands by %d writers; %d runners killed (%d inside Apply)", res.Events, res.Commands, cfg.Writers, res.Kills, res.InApply)
	return res
}

// count returns how many events of the streams in want got holds.
func count(got, want map[es.StreamID][]string) int {
	n := 0
	for s := range want {
		n += len(got[s])
	}
	return n
}

// Compare fails t unless got holds, for every stream of want, exactly
// want's IDs in want's order (so nothing twice, nothing missing).
func Compare(t testing.TB, got, want map[es.StreamID][]string) {
	t.Helper()
	seen := map[string]int{}
	for s := range want {
		for _, id := range got[s] {
			seen[s.String()+"/"+id]++
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("event %s applied %d times", id, n)
		}
	}
	for s, ids := range want {
		if !slices.Equal(got[s], ids) {
			g := got[s]
			i := 0
			for i < len(g) && i < len(ids) && g[i] == ids[i] {
				i++
			}
			t.Errorf("stream %s: the read model has %d events, the store %d; they differ from index %d (%v vs %v)",
				s, len(g), len(ids), i, g[i:min(len(g), i+3)], ids[i:min(len(ids), i+3)])
		}
	}
}

// killer cancels a runner's context from inside Apply.
type killer struct {
	cancel context.CancelFunc
	after  atomic.Int64 // events to let through first; 0: never
	fired  atomic.Bool
}

// killHandler is a Projection that dies in the middle of a unit of work.
type killHandler struct {
	*projection.Projection
	k *killer
}

func (h *killHandler) Apply(ctx context.Context, tx any, ev projection.Event) error {
	if h.k.after.Load() > 0 && h.k.after.Add(-1) == 0 {
		h.k.fired.Store(true)
		h.k.cancel()
		return ctx.Err()
	}
	return h.Projection.Apply(ctx, tx, ev)
}

// MemoryModel is an in-memory read model for RunKillRestart.
type MemoryModel struct {
	mu  sync.Mutex
	ids map[es.StreamID][]string
}

// NewMemoryModel returns an empty MemoryModel.
func NewMemoryModel() *MemoryModel { return &MemoryModel{ids: map[es.StreamID][]string{}} }

// Open returns a projection named "killrestart" over m.
func (m *MemoryModel) Open(reg es.EventRegistry) (*projection.Projection, error) {
	return projection.New("killrestart", reg, m)
}

// ProjectAdded applies an Added event.
func (m *MemoryModel) ProjectAdded(ev projection.Event, e probe.Added) {
	m.mu.Lock()
	m.ids[ev.Stream] = append(m.ids[ev.Stream], e.ID)
	m.mu.Unlock()
}

// Applied returns a copy of what was applied.
func (m *MemoryModel) Applied(context.Context) (map[es.StreamID][]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[es.StreamID][]string, len(m.ids))
	for s, ids := range m.ids {
		out[s] = slices.Clone(ids)
	}
	return out, nil
}
