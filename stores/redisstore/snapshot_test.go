package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/backend/backendtest"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/internal/testkit"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/stores/redisstore"
	"github.com/aggregatekit/eventsourcing/storetest"
	goredis "github.com/redis/go-redis/v9"
)

var ctx = context.Background()

// client returns a client of the test server, closed when t ends.
func client(t *testing.T) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: testkit.Get(t, testkit.RedisAddr)})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newStore returns a store on c with a key prefix of its own, whose keys are
// deleted when t ends.
func newStore(t *testing.T, c *goredis.Client, opts ...redisstore.Option) *redisstore.SnapshotStore {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	prefix := "estest:" + hex.EncodeToString(b[:]) + ":"
	s, err := redisstore.NewSnapshotStore(c, append([]redisstore.Option{redisstore.WithKeyPrefix(prefix)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx := context.WithoutCancel(ctx)
		iter := c.Scan(cctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(cctx) {
			c.Del(cctx, iter.Val())
		}
	})
	return s
}

var stream = es.StreamID{AggregateType: "Probe", Key: "k"}

func snap(seq int64, state string) es.Snapshot {
	return es.Snapshot{Stream: stream, Sequence: seq, Version: 1, State: []byte(state), Time: time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)}
}

func TestConformance(t *testing.T) {
	c := client(t)
	backendtest.RunSnapshotStore(t, func(t *testing.T) backend.SnapshotStore { return newStore(t, c) })
}

func TestNewSnapshotStore(t *testing.T) {
	if _, err := redisstore.NewSnapshotStore(nil); !errors.Is(err, redisstore.ErrInvalidConfig) {
		t.Fatalf("nil client: %v", err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"}) // never contacted
	defer c.Close()
	if _, err := redisstore.NewSnapshotStore(c, redisstore.WithTTL(-time.Second)); !errors.Is(err, redisstore.ErrInvalidConfig) {
		t.Fatalf("negative TTL: %v", err)
	}
	s, err := redisstore.NewSnapshotStore(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Key(es.StreamID{AggregateType: "Order", Key: "a/b:c"}); got != "eventsourcing:snapshot:Order/a/b:c" {
		t.Fatalf("default key %q", got)
	}
	s, _ = redisstore.NewSnapshotStore(c, redisstore.WithKeyPrefix("app1:"))
	if got := s.Key(stream); got != "app1:Probe/k" {
		t.Fatalf("prefixed key %q", got)
	}
}

// Sequences are compared exactly, also where doubles cannot tell them apart.
func TestSequencesBeyondDoublePrecision(t *testing.T) {
	s := newStore(t, client(t))
	steps := []struct {
		put, want int64
	}{
		{1<<53 + 1, 1<<53 + 1},
		{1 << 53, 1<<53 + 1}, // equal to 2^53+1 as a double: must still lose
		{1<<53 + 2, 1<<53 + 2},
		{1<<53 + 1, 1<<53 + 2},
		{999_999_999, 1<<53 + 2}, // shorter
		{123456789012345678, 123456789012345678},
		{123456789012345677, 123456789012345678}, // differs in the last chunk
		{123456788012345679, 123456789012345678}, // differs in the first chunk
		{math.MaxInt64 - 1, math.MaxInt64 - 1},
		{math.MaxInt64, math.MaxInt64},
		{math.MaxInt64 - 1, math.MaxInt64},
		{1, math.MaxInt64},
	}
	for i, step := range steps {
		if err := s.Put(ctx, snap(step.put, fmt.Sprint(step.put))); err != nil {
			t.Fatalf("step %d: Put(%d): %v", i, step.put, err)
		}
		got, err := s.Get(ctx, stream)
		if err != nil {
			t.Fatalf("step %d: Get: %v", i, err)
		}
		if got.Sequence != step.want || string(got.State) != fmt.Sprint(step.want) {
			t.Fatalf("step %d: after Put(%d) holds %d (%q), want %d", i, step.put, got.Sequence, got.State, step.want)
		}
	}
}

// Random sequences of every magnitude, checked against a model.
func TestSequenceOrderingModel(t *testing.T) {
	s := newStore(t, client(t))
	rng := mrand.New(mrand.NewPCG(1, 2))
	var held int64 = -1
	for i := 0; i < 300; i++ {
		var seq int64
		switch rng.IntN(4) {
		case 0: // near the current one
			seq = max(1, held+rng.Int64N(5)-2)
		case 1: // any magnitude
			seq = 1 + rng.Int64N(math.MaxInt64>>rng.IntN(63))
		case 2: // around 10^k boundaries, where lengths change
			p := int64(1)
			for range rng.IntN(19) {
				p *= 10
			}
			seq = max(1, p+rng.Int64N(3)-1)
		default: // around 2^53
			seq = 1<<53 + rng.Int64N(5) - 2
		}
		if err := s.Put(ctx, snap(seq, "")); err != nil {
			t.Fatal(err)
		}
		held = max(held, seq)
		got, err := s.Get(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		if got.Sequence != held {
			t.Fatalf("put %d: holds %d, want %d", seq, got.Sequence, held)
		}
	}
}

func TestRoundTripFields(t *testing.T) {
	s := newStore(t, client(t))
	for _, want := range []es.Snapshot{
		{Stream: stream, Sequence: 1, Version: -3, State: nil, Time: time.Time{}},
		{Stream: stream, Sequence: 2, Version: math.MaxInt32, State: []byte{0, 0xff, '\r', '\n', 0}, Time: time.Date(1999, 12, 31, 23, 59, 59, 1, time.FixedZone("x", 3600))},
	} {
		if err := s.Put(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		if got.Stream != want.Stream || got.Sequence != want.Sequence || got.Version != want.Version ||
			string(got.State) != string(want.State) || !got.Time.Equal(want.Time) || got.Time.Location() != time.UTC {
			t.Fatalf("round trip: got %+v, want %+v", got, want)
		}
	}
}

func TestCorruptValues(t *testing.T) {
	c := client(t)
	s := newStore(t, c)
	key := s.Key(stream)
	good := map[string]any{"seq": "5", "ver": "1", "time": "2026-01-02T03:04:05.000000006Z", "state": "{}"}
	cases := map[string]func() error{
		"string": func() error { return c.Set(ctx, key, "not a snapshot", 0).Err() },
		"list":   func() error { return c.RPush(ctx, key, "a", "b").Err() },
		"missing state": func() error {
			return c.HSet(ctx, key, "seq", "5", "ver", "1", "time", good["time"]).Err()
		},
	}
	for field, bad := range map[string][]string{
		"seq":  {"abc", "-5", "+5", "05", "", "1.5", "99999999999999999999", "5 "},
		"ver":  {"one", "", "1e3", "--1"},
		"time": {"yesterday", "", "2026-13-01T00:00:00Z"},
	} {
		for _, v := range bad {
			cases[fmt.Sprintf("%s=%q", field, v)] = func() error {
				fields := map[string]any{}
				for k, x := range good {
					fields[k] = x
				}
				fields[field] = v
				return c.HSet(ctx, key, fields).Err()
			}
		}
	}
	for name, write := range cases {
		// A hash with a well-formed seq and ver keeps its place in the order
		// even if its (non-empty) time is damaged.
		ordered := strings.HasPrefix(name, "time=") && name != `time=""`
		t.Run(name, func(t *testing.T) {
			if err := c.Del(ctx, key).Err(); err != nil {
				t.Fatal(err)
			}
			if err := write(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, stream); !errors.Is(err, es.ErrInvalidSnapshot) {
				t.Fatalf("Get: %v, want ErrInvalidSnapshot", err)
			}
			// Any snapshot replaces a damaged value, even an old one.
			if err := s.Put(ctx, snap(1, "fixed")); err != nil {
				t.Fatalf("Put over a damaged value: %v", err)
			}
			got, err := s.Get(ctx, stream)
			if ordered {
				if !errors.Is(err, es.ErrInvalidSnapshot) {
					t.Fatalf("older Put replaced a snapshot at 5: %+v, %v", got, err)
				}
				if err := s.Put(ctx, snap(5, "fixed")); err != nil {
					t.Fatal(err)
				}
				got, err = s.Get(ctx, stream)
				if err != nil || got.Sequence != 5 || string(got.State) != "fixed" {
					t.Fatalf("after Put at 5: %+v, %v", got, err)
				}
				return
			}
			if err != nil || got.Sequence != 1 || string(got.State) != "fixed" {
				t.Fatalf("after Put: %+v, %v", got, err)
			}
		})
	}
	// The control: the well-formed hash written by hand reads back.
	if err := c.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, key, good).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, stream)
	if err != nil || got.Sequence != 5 || got.Time.Nanosecond() != 6 {
		t.Fatalf("hand-written snapshot: %+v, %v", got, err)
	}
}

func TestPutRejects(t *testing.T) {
	s := newStore(t, client(t))
	for _, seq := range []int64{-1, 0} {
		if err := s.Put(ctx, snap(seq, "x")); !errors.Is(err, es.ErrInvalidSnapshot) {
			t.Fatalf("sequence %d: %v", seq, err)
		}
	}
	bad := snap(1, "x")
	bad.Stream.AggregateType = "a/b"
	if err := s.Put(ctx, bad); !errors.Is(err, es.ErrInvalidStream) {
		t.Fatalf("invalid stream: %v", err)
	}
	if _, err := s.Get(ctx, bad.Stream); !errors.Is(err, es.ErrInvalidStream) {
		t.Fatalf("Get of an invalid stream: %v", err)
	}
	if err := s.Delete(ctx, bad.Stream); !errors.Is(err, es.ErrInvalidStream) {
		t.Fatalf("Delete of an invalid stream: %v", err)
	}
	bad = snap(1, "x")
	bad.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.Put(ctx, bad); !errors.Is(err, es.ErrInvalidSnapshot) {
		t.Fatalf("unencodable time: %v", err)
	}
}

func TestTTL(t *testing.T) {
	c := client(t)
	s := newStore(t, c, redisstore.WithTTL(time.Minute))
	if err := s.Put(ctx, snap(1, "x")); err != nil {
		t.Fatal(err)
	}
	ttl, err := c.PTTL(ctx, s.Key(stream)).Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("PTTL %v, %v; want (0, 1m]", ttl, err)
	}
	// A store without TTL writing the same key makes it persistent.
	plain, err := redisstore.NewSnapshotStore(c, redisstore.WithKeyPrefix(strings.TrimSuffix(s.Key(stream), stream.String())))
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Put(ctx, snap(2, "y")); err != nil {
		t.Fatal(err)
	}
	if ttl, err := c.PTTL(ctx, s.Key(stream)).Result(); err != nil || ttl != -1 {
		t.Fatalf("PTTL %v, %v; want none (-1)", ttl, err)
	}
	// A snapshot that is not written (older) leaves the TTL alone.
	short := newStore(t, c, redisstore.WithTTL(time.Millisecond))
	if err := short.Put(ctx, snap(3, "z")); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := short.Get(ctx, stream); errors.Is(err, es.ErrSnapshotNotFound) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestContextAndServerErrors(t *testing.T) {
	s := newStore(t, client(t))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Get(cctx, stream); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context: %v", err)
	}
	if err := s.Put(cctx, snap(1, "x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v", err)
	}
	// A closed client: errors, no panic.
	c := goredis.NewClient(&goredis.Options{Addr: testkit.Get(t, testkit.RedisAddr)})
	closed, _ := redisstore.NewSnapshotStore(c)
	_ = c.Close()
	if _, err := closed.Get(ctx, stream); err == nil || errors.Is(err, es.ErrSnapshotNotFound) {
		t.Fatalf("Get on a closed client: %v", err)
	}
	if err := closed.Put(ctx, snap(1, "x")); err == nil {
		t.Fatal("Put on a closed client succeeded")
	}
	if err := closed.Delete(ctx, stream); err == nil {
		t.Fatal("Delete on a closed client succeeded")
	}
}

// The script is loaded by EVAL when the server does not know it.
func TestScriptFlushed(t *testing.T) {
	c := client(t)
	s := newStore(t, c)
	if err := s.Put(ctx, snap(1, "a")); err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, snap(2, "b")); err != nil {
		t.Fatalf("Put after SCRIPT FLUSH: %v", err)
	}
	if got, err := s.Get(ctx, stream); err != nil || got.Sequence != 2 {
		t.Fatalf("%+v %v", got, err)
	}
}

// reports collects what the snapshot middleware reports.
type reports struct {
	mu   sync.Mutex
	errs []error
}

func (r *reports) handle(_ context.Context, err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *reports) take() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.errs
	r.errs = nil
	return out
}

// The snapshot middleware over the memory event store, with snapshots in
// Redis.
func TestMiddlewareStack(t *testing.T) {
	c := client(t)
	t.Run("Conformance", func(t *testing.T) {
		storetest.RunEventStore(t, func(t *testing.T) es.EventStore {
			mw, err := snapshot.New(newStore(t, c), snapshot.EveryN(3))
			if err != nil {
				t.Fatal(err)
			}
			return es.Wrap(es.NewStore(memory.NewBackend()), mw)
		})
	})

	t.Run("RestoreAndCorruption", func(t *testing.T) {
		snaps := newStore(t, c)
		rep := &reports{}
		mw, err := snapshot.New(snaps, snapshot.EveryN(2), snapshot.WithErrorHandler(rep.handle))
		if err != nil {
			t.Fatal(err)
		}
		store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
		defer store.Close()
		reg := probe.NewRegistry()
		w, _ := probe.New("r", "", reg, store)
		want := probe.SampleKinds()
		if err := w.Handle(ctx, probe.RecordKinds{Kinds: want}); err != nil {
			t.Fatal(err)
		}
		if err := w.Handle(ctx, probe.Add{Batch: "a", Size: 2}); err != nil { // 1 -> 3: snapshot
			t.Fatal(err)
		}
		snap, err := snaps.Get(ctx, w.StreamID())
		if err != nil || snap.Sequence != 3 {
			t.Fatalf("snapshot %d, %v", snap.Sequence, err)
		}
		check := func(t *testing.T) {
			t.Helper()
			p, _ := probe.New("r", "", reg, store)
			if err := p.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if p.Kinds == nil || p.Count != 3 || p.SequenceNumber() != 3 || strings.Join(p.IDs, ",") != "a-0,a-1" {
				t.Fatalf("state: %d events at %d, ids %v, kinds %v", p.Count, p.SequenceNumber(), p.IDs, p.Kinds != nil)
			}
			probe.CheckKinds(t, *p.Kinds, want)
		}
		check(t) // from the snapshot
		if errs := rep.take(); len(errs) != 0 {
			t.Fatalf("reported %v", errs)
		}
		// Damage the snapshot by hand: the load replays in full, reports.
		if err := c.Set(ctx, snaps.Key(w.StreamID()), "garbage", 0).Err(); err != nil {
			t.Fatal(err)
		}
		check(t)
		errs := rep.take()
		var e *snapshot.Error
		if len(errs) != 1 || !errors.As(errs[0], &e) || e.Op != snapshot.OpGet || !errors.Is(e, es.ErrInvalidSnapshot) {
			t.Fatalf("reported %v, want one get failure matching ErrInvalidSnapshot", errs)
		}
		// State bytes that do not decode.
		if err := c.Del(ctx, snaps.Key(w.StreamID())).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.HSet(ctx, snaps.Key(w.StreamID()), "state", `{"Count":"x"}`).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.HSet(ctx, snaps.Key(w.StreamID()), "seq", "3", "ver", "0", "time", "2026-01-01T00:00:00Z").Err(); err != nil {
			t.Fatal(err)
		}
		check(t)
		if errs := rep.take(); len(errs) != 1 || !errors.As(errs[0], &e) || e.Op != snapshot.OpRestore {
			t.Fatalf("reported %v, want one restore failure", errs)
		}
		// States that decode cleanly but are not the middleware's output for
		// this stream and sequence: restored, they would load the stream as
		// the wrong state, and the next snapshot would make it permanent.
		for _, state := range []string{"null", "{}", `{"Count":0}`, `{"Count":3,"IDs":["a-0","a-1"]}`} {
			if err := c.HSet(ctx, snaps.Key(w.StreamID()), "state", state, "seq", "3", "ver", "0").Err(); err != nil {
				t.Fatal(err)
			}
			check(t)
			if errs := rep.take(); len(errs) != 1 || !errors.As(errs[0], &e) || e.Op != snapshot.OpRestore || !errors.Is(e, es.ErrInvalidSnapshot) {
				t.Fatalf("state %s: reported %v, want one restore failure matching ErrInvalidSnapshot", state, errs)
			}
		}
	})
}
