package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
)

// StressConfig sizes RunStress. Zero fields take their defaults.
type StressConfig struct {
	HotWriters   int // goroutines racing on one aggregate (default 16)
	ColdWriters  int // goroutines with an aggregate each (default 8; negative: none)
	Commands     int // commands per goroutine (default 25)
	MaxBatchSize int // events per command, 1..MaxBatchSize (default 3)
}

// StressResult reports what a stress run did.
type StressResult struct {
	Commands     int64 // commands acknowledged
	Events       int64 // events acknowledged (and found stored)
	Conflicts    int64 // commands that gave up on ErrConcurrency
	Elapsed      time.Duration
	AttemptsUsed int64 // decide calls, counting retries
}

// RunStress races HotWriters goroutines on one aggregate and ColdWriters on
// an aggregate each, every goroutine issuing Commands multi-event commands
// through newStore's store, and then checks every stream: acknowledged events
// equal stored events, no duplicates, no gaps (Refresh verifies contiguity),
// and every commit's events stored together. Commands that fail are counted
// and reported; any failure other than an exhausted conflict fails the test.
func RunStress(t *testing.T, store es.EventStore, cfg StressConfig) StressResult {
	t.Helper()
	if cfg.HotWriters <= 0 {
		cfg.HotWriters = 16
	}
	if cfg.ColdWriters < 0 {
		cfg.ColdWriters = 0
	} else if cfg.ColdWriters == 0 {
		cfg.ColdWriters = 8
	}
	if cfg.Commands <= 0 {
		cfg.Commands = 25
	}
	if cfg.MaxBatchSize <= 0 {
		cfg.MaxBatchSize = 3
	}
	reg := probe.NewRegistry()
	ctx, cancel := context.WithTimeout(context.Background(), deadline(t)*9/10)
	defer cancel()
	base := uniqueKey(t)
	hot := base + "-hot"

	var res StressResult
	acked := map[string]*atomic.Int64{hot: {}}
	var wg sync.WaitGroup
	errs := make(chan error, (cfg.HotWriters+cfg.ColdWriters)*cfg.Commands)
	run := func(name, key string) {
		defer wg.Done()
		p, err := probe.New(key, "", reg, store)
		if err != nil {
			errs <- err
			return
		}
		p.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 100 * cfg.HotWriters, MinDelay: 50 * time.Microsecond, MaxDelay: 20 * time.Millisecond})
		for i := 0; i < cfg.Commands; i++ {
			size := 1 + i%cfg.MaxBatchSize
			err := p.Run(ctx, func(ctx context.Context) ([]es.Event, error) {
				atomic.AddInt64(&res.AttemptsUsed, 1)
				return p.HandleAdd(ctx, probe.Add{Batch: fmt.Sprintf("%s-%d", name, i), Size: size})
			})
			switch {
			case err == nil:
				acked[key].Add(int64(size))
				atomic.AddInt64(&res.Commands, 1)
			case errors.Is(err, es.ErrConcurrency):
				atomic.AddInt64(&res.Conflicts, 1)
			default:
				errs <- fmt.Errorf("%s command %d: %w", name, i, err)
			}
		}
	}
	cold := make([]string, cfg.ColdWriters)
	for w := range cold {
		cold[w] = fmt.Sprintf("%s-cold%d", base, w)
		acked[cold[w]] = &atomic.Int64{}
	}
	start := time.Now()
	for w := 0; w < cfg.HotWriters; w++ {
		wg.Add(1)
		go run(fmt.Sprintf("hot%d", w), hot)
	}
	for w, key := range cold {
		wg.Add(1)
		go run(fmt.Sprintf("cold%d", w), key)
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for key, n := range acked {
		p, err := probe.New(key, "", reg, store)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Refresh(context.Background()); err != nil {
			t.Fatalf("stream %s does not load: %v", key, err)
		}
		if p.Count != n.Load() {
			t.Errorf("stream %s: %d events stored, %d acknowledged", key, p.Count, n.Load())
		}
		checkBatches(t, key, p.IDs)
		res.Events += p.Count
	}
	t.Logf("stress: %d commands (%d events) acknowledged, %d gave up on conflicts, %d attempts, in %v",
		res.Commands, res.Events, res.Conflicts, res.AttemptsUsed, res.Elapsed.Round(time.Millisecond))
	return res
}

// checkBatches fails t if an ID repeats or a batch's events are not stored
// together and in order.
func checkBatches(t *testing.T, stream string, ids []string) {
	t.Helper()
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		if seen[id] {
			t.Fatalf("stream %s: event %s stored twice", stream, id)
		}
		seen[id] = true
		cut := strings.LastIndexByte(id, '-')
		idx, _ := strconv.Atoi(id[cut+1:])
		if idx == 0 {
			continue
		}
		if i == 0 || ids[i-1] != fmt.Sprintf("%s-%d", id[:cut], idx-1) {
			t.Fatalf("stream %s: batch split or reordered at %s", stream, id)
		}
	}
}
