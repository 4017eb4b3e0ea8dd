package integration_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/internal/testkit"
	"github.com/aggregatekit/eventsourcing/middleware/publish/natsjs"
	"github.com/aggregatekit/eventsourcing/relay"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
	"github.com/aggregatekit/eventsourcing/stores/sqlitestore"
)

// pgStore returns an event store in a schema of its own of the test
// server's database, dropped when t ends.
func pgStore(t testing.TB) es.EventStore {
	t.Helper()
	schema := unique("it")
	b, err := pgstore.Open(context.Background(), testkit.Get(t, testkit.PostgresURL), pgstore.WithSchema(schema))
	if err != nil {
		t.Fatalf("pgstore: %v", err)
	}
	t.Cleanup(func() {
		_, _ = b.Pool().Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		_ = b.Close()
	})
	return es.NewStore(b)
}

// sqliteStore returns an event store in a file of the test's own.
func sqliteStore(t testing.TB) es.EventStore {
	t.Helper()
	b, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatalf("sqlitestore: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return es.NewStore(b)
}

// relayed are the stores a relay reads: through an outbox (MongoDB,
// DynamoDB) or a feed with a checkpoint (PostgreSQL, SQLite).
var relayed = []struct {
	name string
	open func(testing.TB) es.EventStore
}{
	{"MongoDB", mongoStore},
	{"DynamoDB", dynamoStore},
	{"PostgreSQL", pgStore},
	{"SQLite", sqliteStore},
}

// jetStream connects to the test server and creates a stream of its own,
// capturing "<root>.>", deleted when tb ends.
func jetStream(tb testing.TB) (jetstream.JetStream, jetstream.Stream, string) {
	tb.Helper()
	nc, err := natsgo.Connect(testkit.Get(tb, testkit.NATSURL))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	root := "it" + hex.EncodeToString(b[:])
	s, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "IT_" + root, Subjects: []string{root + ".>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Second,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = js.DeleteStream(context.Background(), "IT_"+root) })
	return js, s, root
}

// heldCommits returns every commit s holds, in its order.
func heldCommits(t testing.TB, s jetstream.Stream) []backend.Commit {
	t.Helper()
	ctx := context.Background()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []backend.Commit
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		c, err := natsjs.DecodeCommit(m.Header, m.Data)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		out = append(out, c)
	}
	return out
}

// TestRelayIntoJetStream runs two relays from each real store into one
// JetStream stream while writers race, and checks that JetStream then holds
// every stored commit exactly once, each stream's in order, and that the
// store has nothing left to publish.
func TestRelayIntoJetStream(t *testing.T) {
	for _, db := range relayed {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			store := db.open(t)
			js, s, root := jetStream(t)
			pub, err := natsjs.New(js, "IT_"+root, natsjs.WithSubjectPrefix(root))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var relays []*relay.Relay
			var wg sync.WaitGroup
			for range 2 { // two application instances
				src, err := relay.FromBackend(es.BackendOf(store), "jetstream")
				if err != nil {
					t.Fatal(err)
				}
				r, err := relay.New(src, pub, relay.WithPollInterval(20*time.Millisecond), relay.WithBatchSize(16))
				if err != nil {
					t.Fatal(err)
				}
				relays = append(relays, r)
				wg.Add(1)
				go func() { defer wg.Done(); _ = r.Run(ctx) }()
			}
			base := unique("r")
			res := stressKeys(t, store, base, 6, 8)
			want := storedCommits(t, store, res)
			// Wait until JetStream holds every stored commit.
			var held []backend.Commit
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				held = heldCommits(t, s)
				if len(held) >= len(want) || time.Now().After(deadline) {
					break
				}
			}
			cancel()
			wg.Wait()
			seen := map[string]int{}
			next := map[es.StreamID]int64{}
			for _, c := range held {
				seen[c.ID]++
				if c.Expected != next[c.Stream] {
					t.Fatalf("stream %s: JetStream holds the commit after %d where %d was next", c.Stream, c.Expected, next[c.Stream])
				}
				next[c.Stream] = c.Last()
			}
			for _, c := range want {
				if seen[c.ID] != 1 {
					t.Errorf("stored commit %s of %s after %d is held %d times in JetStream", c.ID, c.Stream, c.Expected, seen[c.ID])
				}
			}
			if len(held) != len(want) {
				t.Fatalf("JetStream holds %d commits, the store %d", len(held), len(want))
			}
			if o, ok := es.BackendOf(store).(backend.Outbox); ok {
				for c, err := range o.Pending(context.Background(), 0) {
					if err != nil {
						t.Fatal(err)
					}
					t.Fatalf("commit %s of %s is still pending", c.ID, c.Stream)
				}
			}
			var total int64
			for _, r := range relays {
				total += r.Stats().Commits
			}
			t.Logf("%d commits relayed once into JetStream by 2 relays (%d confirmations between them)", len(want), total)
		})
	}
}

// stressKeys has writers commit on a hot stream and a stream each, and
// returns the keys written.
func stressKeys(t *testing.T, store es.EventStore, base string, writers, commands int) []string {
	t.Helper()
	reg := probe.NewRegistry()
	keys := []string{base + "-hot"}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		keys = append(keys, fmt.Sprintf("%s-%d", base, w))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range commands {
				for _, k := range []string{base + "-hot", fmt.Sprintf("%s-%d", base, w)} {
					p, err := probe.New(k, "", reg, store)
					if err == nil {
						p.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 200, MinDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond})
						err = p.Handle(context.Background(), probe.Add{Batch: fmt.Sprintf("w%d-%d", w, i), Size: 1 + i%2})
					}
					if err != nil {
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
	return keys
}

// storedCommits returns the commits of the streams of keys, as stored.
func storedCommits(t *testing.T, store es.EventStore, keys []string) []backend.Commit {
	t.Helper()
	var out []backend.Commit
	for _, k := range keys {
		stream := es.StreamID{AggregateType: "Probe", Key: k}
		var cur *backend.Commit
		for r, err := range es.BackendOf(store).Load(context.Background(), stream, 0) {
			if err != nil {
				t.Fatal(err)
			}
			if cur == nil || cur.ID != r.CommitID {
				out = append(out, backend.Commit{Stream: stream, Expected: r.Sequence - 1, ID: r.CommitID})
				cur = &out[len(out)-1]
			}
			cur.Records = append(cur.Records, r)
		}
	}
	slices.SortFunc(out, func(a, b backend.Commit) int { return int(a.Expected - b.Expected) })
	return out
}
