package natsjs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
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
)

var ctx = context.Background()

// connect connects to the test server and returns a JetStream context.
func connect(t testing.TB, opts ...natsgo.Option) jetstream.JetStream {
	t.Helper()
	url := testkit.Get(t, testkit.NATSURL)
	nc, err := natsgo.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// newStream creates a JetStream stream with a unique name capturing a
// unique subject root "test.<id>.>", kept on file (so that it survives a
// server restart) and with the given duplicate window, deleted when t
// ends. It returns the stream and the subject root (without ".>").
func newStream(t testing.TB, js jetstream.JetStream, window time.Duration) (jetstream.Stream, string) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	name := "ES_" + id
	root := "test." + id
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{root + ".>"},
		Duplicates: window,
		Storage:    jetstream.FileStorage,
	})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(dctx, name)
	})
	return s, root
}

func streamName(s jetstream.Stream) string { return s.CachedInfo().Config.Name }

// publisher returns a Publisher to s under subject prefix prefix.
func publisher(t testing.TB, js jetstream.JetStream, s jetstream.Stream, prefix string, opts ...natsjs.Option) *natsjs.Publisher {
	t.Helper()
	p, err := natsjs.New(js, streamName(s), append([]natsjs.Option{natsjs.WithSubjectPrefix(prefix)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// held returns every message of s, in JetStream order, decoded, grouped by
// subject prefix (the messages whose subject starts with prefix+".").
func held(t testing.TB, s jetstream.Stream, prefix string) []backend.Commit {
	t.Helper()
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
			t.Fatalf("get message %d: %v", seq, err)
		}
		if len(m.Subject) <= len(prefix) || m.Subject[:len(prefix)+1] != prefix+"." {
			continue
		}
		c, err := natsjs.DecodeCommit(m.Header, m.Data)
		if err != nil {
			t.Fatalf("message %d on %s: %v", seq, m.Subject, err)
		}
		out = append(out, c)
	}
	return out
}

// stored returns every commit of the memory backend's feed.
func stored(t testing.TB, f backend.Feed) []backend.Commit {
	t.Helper()
	var out []backend.Commit
	for fc, err := range f.ReadFeed(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fc.Commit)
	}
	return out
}

// checkExactlyOnce fails unless the JetStream stream holds, under prefix,
// each of the commits in want exactly once, each stream's commits in
// stream order, byte for byte, and nothing else.
func checkExactlyOnce(t testing.TB, s jetstream.Stream, prefix string, want []backend.Commit) {
	t.Helper()
	got := held(t, s, prefix)
	perStream := func(cs []backend.Commit) map[backend.StreamID][]backend.Commit {
		m := map[backend.StreamID][]backend.Commit{}
		for _, c := range cs {
			m[c.Stream] = append(m[c.Stream], c)
		}
		return m
	}
	g, w := perStream(got), perStream(want)
	if len(got) != len(want) {
		t.Errorf("JetStream holds %d commits under %s, the store %d", len(got), prefix, len(want))
	}
	for stream := range w {
		gs, ws := g[stream], w[stream]
		for i := range min(len(gs), len(ws)) {
			if gs[i].ID != ws[i].ID {
				t.Fatalf("%s: JetStream's commit %d is %d-%d (%s), the store's %d-%d (%s); JetStream holds %d, the store %d",
					stream.String(), i, gs[i].First(), gs[i].Last(), gs[i].ID, ws[i].First(), ws[i].Last(), ws[i].ID, len(gs), len(ws))
			}
		}
		if len(gs) != len(ws) {
			t.Fatalf("%s: JetStream holds %d commits, the store %d", stream.String(), len(gs), len(ws))
		}
		for i := range ws {
			sameCommit(t, gs[i], ws[i])
		}
	}
	for stream := range g {
		if _, ok := w[stream]; !ok {
			t.Fatalf("JetStream holds commits of %s, which the store does not", stream.String())
		}
	}
}

func sameCommit(t testing.TB, got, want backend.Commit) {
	t.Helper()
	if got.Stream != want.Stream || got.Expected != want.Expected || got.ID != want.ID || len(got.Records) != len(want.Records) {
		t.Fatalf("JetStream holds commit %s %d-%d %q, want %s %d-%d %q", got.Stream.String(), got.First(), got.Last(), got.ID,
			want.Stream.String(), want.First(), want.Last(), want.ID)
	}
	for i, r := range want.Records {
		g := got.Records[i]
		if g.Stream != r.Stream || g.Sequence != r.Sequence || g.EventType != r.EventType || !bytes.Equal(g.Data, r.Data) ||
			!g.Timestamp.Equal(r.Timestamp) || g.CommitID != r.CommitID || !maps.Equal(g.Metadata, r.Metadata) {
			t.Fatalf("%s sequence %d: JetStream holds %+v, the store %+v", r.Stream.String(), r.Sequence, g, r)
		}
	}
}

// writers commits from goroutines racing on a few streams until stop is
// closed or each made n commits, and returns how many commands succeeded.
func writers(t testing.TB, store es.EventStore, keys []string, goroutines, n int, stop <-chan struct{}) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for g := 0; g < goroutines; g++ {
		wg.Go(func() {
			for i := 0; i < n; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := keys[(g+i)%len(keys)]
				p, err := probe.New(key, "", probe.NewRegistry(), store)
				if err != nil {
					t.Error(err)
					return
				}
				if err := p.Handle(ctx, probe.Add{Batch: fmt.Sprintf("g%d-%d", g, i), Size: 1 + i%3}); err != nil {
					t.Errorf("Handle: %v", err)
					return
				}
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return ok
}

func waitFor(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// run starts r and returns a function that stops it and returns Run's
// result; the test's end stops it too.
func run(t testing.TB, r *relay.Relay) func() error {
	t.Helper()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// fast are relay options for tests: quick polls and back-off.
var fast = []relay.Option{relay.WithPollInterval(5 * time.Millisecond), relay.WithBackoff(5*time.Millisecond, 100*time.Millisecond)}
