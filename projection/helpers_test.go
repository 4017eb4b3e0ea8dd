package projection_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/projection"
)

// tally is the read model of the tests: for each stream, the IDs of the
// Added events in the order applied, and how often each ID was applied.
type tally struct {
	mu    sync.Mutex
	ids   map[es.StreamID][]string
	times map[string]int
	envs  []projection.Event
	keep  bool // record every envelope in envs
	fail  func(ev projection.Event, e probe.Added) error
}

func newTally() *tally {
	return &tally{ids: map[es.StreamID][]string{}, times: map[string]int{}}
}

func (m *tally) ProjectAdded(ev projection.Event, e probe.Added) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		if err := m.fail(ev, e); err != nil {
			return err
		}
	}
	m.ids[ev.Stream] = append(m.ids[ev.Stream], e.ID)
	m.times[e.ID]++
	if m.keep {
		m.envs = append(m.envs, ev)
	}
	return nil
}

// snapshot returns a copy of the per-stream IDs.
func (m *tally) snapshot() map[es.StreamID][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[es.StreamID][]string, len(m.ids))
	for k, v := range m.ids {
		out[k] = slices.Clone(v)
	}
	return out
}

func (m *tally) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, v := range m.ids {
		n += len(v)
	}
	return n
}

// fold reads every stored stream of the feed and returns the IDs of its
// Added events, in stream order: what the read model must equal.
func fold(t testing.TB, b backend.Backend) map[es.StreamID][]string {
	t.Helper()
	ctx := context.Background()
	streams := map[es.StreamID]bool{}
	for c, err := range b.(backend.Feed).ReadFeed(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		streams[c.Stream] = true
	}
	out := map[es.StreamID][]string{}
	for s := range streams {
		var want int64 = 1
		for rec, err := range b.Load(ctx, s, 0) {
			if err != nil {
				t.Fatal(err)
			}
			if rec.Sequence != want {
				t.Fatalf("%s: stored sequence %d, want %d", s, rec.Sequence, want)
			}
			want++
			if rec.EventType != "Added" {
				continue
			}
			var e probe.Added
			if err := json.Unmarshal(rec.Data, &e); err != nil {
				t.Fatal(err)
			}
			out[s] = append(out[s], e.ID)
		}
	}
	return out
}

// checkModel fails t unless the tally equals the fold and applied nothing
// twice.
func checkModel(t testing.TB, m *tally, want map[es.StreamID][]string) {
	t.Helper()
	got := m.snapshot()
	m.mu.Lock()
	for id, n := range m.times {
		if n != 1 {
			t.Errorf("event %s applied %d times", id, n)
		}
	}
	m.mu.Unlock()
	if len(got) != len(want) {
		t.Errorf("read model has %d streams, the store %d", len(got), len(want))
	}
	for s, ids := range want {
		if !slices.Equal(got[s], ids) {
			t.Errorf("stream %s: read model has %d events %v..., the store %d %v...", s, len(got[s]), head(got[s]), len(ids), head(ids))
		}
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }

// addCommit returns a commit of n Added events to stream after head.
func addCommit(t testing.TB, stream es.StreamID, after int64, n int, batch string) backend.Commit {
	t.Helper()
	c := backend.Commit{Stream: stream, Expected: after, ID: es.NewCommitID()}
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		data, err := json.Marshal(probe.Added{ID: fmt.Sprintf("%s-%d", batch, i), Batch: batch, Index: i, Size: n})
		if err != nil {
			t.Fatal(err)
		}
		c.Records = append(c.Records, backend.Record{Stream: stream, Sequence: after + int64(i) + 1, EventType: "Added",
			Data: data, Timestamp: now, CommitID: c.ID, Metadata: backend.Metadata{"batch": batch}})
	}
	return c
}

// appendAdds appends commits of Added events to the streams in turn.
func appendAdds(t testing.TB, b backend.Backend, streams []es.StreamID, commits, perCommit int, heads map[es.StreamID]int64, tag string) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < commits; i++ {
		s := streams[i%len(streams)]
		c := addCommit(t, s, heads[s], perCommit, fmt.Sprintf("%s-%s-%d", tag, s.Key, heads[s]))
		if err := b.Append(ctx, c); err != nil {
			t.Fatal(err)
		}
		heads[s] += int64(perCommit)
	}
}

func streamsOf(n int) []es.StreamID {
	out := make([]es.StreamID, n)
	for i := range out {
		out[i] = es.StreamID{AggregateType: "Probe", Key: fmt.Sprintf("s%03d", i)}
	}
	return out
}

// waitFor polls cond until it holds, failing after a generous while.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 3000; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// listSource is a Source over a fixed list of commits, for tests that
// need a misbehaving source (repeats, gaps).
type listSource struct{ commits []backend.FeedCommit }

func (s listSource) Open(_ context.Context, _ projection.ID, after projection.Position) (projection.Subscription, error) {
	i := 0
	for i < len(s.commits) && after != "" && s.commits[i].Position <= after {
		i++
	}
	return &listSub{commits: s.commits[i:]}, nil
}

type listSub struct {
	commits []backend.FeedCommit
	acked   []projection.Position
}

func (s *listSub) Read(_ context.Context, max int) ([]backend.FeedCommit, error) {
	n := min(max, len(s.commits))
	out := s.commits[:n]
	s.commits = s.commits[n:]
	return out, nil
}
func (s *listSub) Wait(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
func (s *listSub) Ack(_ context.Context, p projection.Position) error {
	s.acked = append(s.acked, p)
	return nil
}
func (s *listSub) Close() error { return nil }

func pos(n int) projection.Position { return projection.Position(fmt.Sprintf("%020d", n)) }
