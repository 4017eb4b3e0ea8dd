package natsjs_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/middleware/publish/natsjs"
	"github.com/aggregatekit/eventsourcing/relay"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/storetest"
)

func TestEscapeToken(t *testing.T) {
	for in, want := range map[string]string{
		"Order":            "Order",
		"order-7_x":        "order-7_x",
		"order 7.1":        "order%207%2E1",
		"a*b>c%d~e":        "a%2Ab%3Ec%25d%7Ee",
		"Straße":           "Stra%C3%9Fe",
		"$JS":              "$JS",
		"tab\there\x7f":    "tab%09here%7F",
		"":                 "",
		"日本":               "%E6%97%A5%E6%9C%AC",
		"semi;colon:quote": "semi;colon:quote",
	} {
		got := natsjs.EscapeToken(in)
		if got != want {
			t.Errorf("EscapeToken(%q) = %q, want %q", in, got, want)
		}
		back, err := natsjs.UnescapeToken(got)
		if err != nil || back != in {
			t.Errorf("UnescapeToken(%q) = %q, %v; want %q", got, back, err, in)
		}
	}
	for _, bad := range []string{"%", "%4", "%zz", "a%G1", "a.b", "a b"} {
		if _, err := natsjs.UnescapeToken(bad); err == nil {
			t.Errorf("UnescapeToken(%q) accepted a malformed token", bad)
		}
	}
}

// fakeJS is a jetstream.JetStream for the tests that need no server: only
// Conn is called (and returns nil) before anything is published.
type fakeJS struct{ jetstream.JetStream }

func (fakeJS) Conn() *natsgo.Conn { return nil }

func TestNewAndSubjects(t *testing.T) {
	if _, err := natsjs.New(nil, "S"); !errors.Is(err, natsjs.ErrNilJetStream) {
		t.Errorf("New(nil): %v", err)
	}
	for _, bad := range []string{"", "a.b", "a b", "a*", "a>"} {
		if _, err := natsjs.New(fakeJS{}, bad); !errors.Is(err, natsjs.ErrInvalidStreamName) {
			t.Errorf("stream name %q: %v", bad, err)
		}
	}
	for _, bad := range []string{"", "a..b", "a.*", "a.>", "has space", ".a", "a.", strings.Repeat("x", 1500)} {
		if _, err := natsjs.New(fakeJS{}, "S", natsjs.WithSubjectPrefix(bad)); !errors.Is(err, natsjs.ErrInvalidSubject) {
			t.Errorf("prefix %q: %v", bad, err)
		}
	}
	p, err := natsjs.New(fakeJS{}, "S")
	if err != nil {
		t.Fatal(err)
	}
	s := backend.StreamID{AggregateType: "Order Line", Key: "k.1 >"}
	if got, want := p.Subject(s), "events.Order%20Line.k%2E1%20%3E"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	long := backend.StreamID{AggregateType: "T", Key: strings.Repeat("é", 500)}
	subj := p.Subject(long)
	tok := subj[strings.LastIndexByte(subj, '.')+1:]
	if len(tok) > 256 || !strings.Contains(tok, "~") || strings.Contains(tok[strings.IndexByte(tok, '~'):], "%") {
		t.Errorf("long key token %q (%d bytes)", tok, len(tok))
	}
	if other := p.Subject(backend.StreamID{AggregateType: "T", Key: strings.Repeat("é", 499) + "e"}); other == subj {
		t.Error("two long keys share a subject")
	}
	p, _ = natsjs.New(fakeJS{}, "S", natsjs.WithSubjectPrefix("acme.orders"))
	if got := p.Subject(s); got != "acme.orders.Order%20Line.k%2E1%20%3E" {
		t.Errorf("prefixed subject %q", got)
	}
	c := backend.Commit{Stream: s, Expected: 4, ID: "c-1", Records: make([]backend.Record, 2)}
	if id := p.MsgID(c); id != "c-1" {
		t.Errorf("MsgID %q", id)
	}
	c.ID = ""
	if id := p.MsgID(c); id != "acme.orders.Order%20Line.k%2E1%20%3E:5-6" {
		t.Errorf("MsgID of a commit without ID %q", id)
	}
	// Invalid commits are refused before anything is sent.
	bad := []backend.Commit{
		{Stream: backend.StreamID{AggregateType: "T"}, ID: "x", Records: []backend.Record{{Sequence: 1, EventType: "E"}}},
		{Stream: backend.StreamID{AggregateType: "T", Key: "k"}, ID: "x", Records: []backend.Record{{Stream: backend.StreamID{AggregateType: "T", Key: "k"}, Sequence: 2, EventType: "E", CommitID: "x"}}},
		{Stream: backend.StreamID{AggregateType: "T", Key: "j"}, ID: "x y", Records: []backend.Record{{Stream: backend.StreamID{AggregateType: "T", Key: "j"}, Sequence: 1, EventType: "E", CommitID: "x y"}}},
	}
	err = p.PublishCommits(ctx, bad)
	var rerr *relay.Error
	if !errors.As(err, &rerr) || len(rerr.Commits) != 3 || !errors.Is(err, publish.ErrNotPublished) ||
		!errors.Is(err, backend.ErrInvalidStream) || !errors.Is(err, backend.ErrInvalidAppend) || !errors.Is(err, backend.ErrInvalidCommitID) {
		t.Fatalf("invalid commits: %v", err)
	}
}

// commit makes a commit of the events of kinds, for round trips.
func sampleCommit(stream backend.StreamID, expected int64, id string) backend.Commit {
	kinds, _ := json.Marshal(probe.KindsRecorded{Kinds: probe.SampleKinds()})
	ts := []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600)),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Unix(0, 0),
	}
	c := backend.Commit{Stream: stream, Expected: expected, ID: id}
	data := [][]byte{kinds, {}, {0, 0xff, '\n', '"'}, []byte(`{"ok":true}`)}
	types := []string{"KindsRecorded", "Größe", "Binary", "Added"}
	for i := range 4 {
		c.Records = append(c.Records, backend.Record{Stream: stream, Sequence: expected + 1 + int64(i), EventType: types[i],
			Data: data[i], Timestamp: ts[i], CommitID: id,
			Metadata: backend.Metadata{"correlation_id": "corr-ü", "spaced": " a b ", "empty": ""}})
	}
	c.Records[3].Metadata = nil
	return c
}

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	js := connect(t)
	st, root := newStream(t, js, time.Minute)
	p := publisher(t, js, st, root)
	stream := backend.StreamID{AggregateType: "Order Line", Key: "k.1 >*~%日本"}
	cs := []backend.Commit{sampleCommit(stream, 0, es.NewCommitID()), sampleCommit(stream, 4, "command-7!")}
	legacy := sampleCommit(stream, 8, "")
	for i := range legacy.Records {
		legacy.Records[i].CommitID = ""
	}
	cs = append(cs, legacy)
	if err := p.PublishCommits(ctx, cs); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, st, root, cs)
	// The raw message: subject, message ID and headers.
	m, err := st.GetLastMsgForSubject(ctx, p.Subject(stream))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		jetstream.MsgIDHeader:      p.Subject(stream) + ":9-12",
		natsjs.HeaderEnvelope:      "1",
		natsjs.HeaderAggregateType: "Order%20Line",
		natsjs.HeaderKey:           "k%2E1%20%3E%2A%7E%25%E6%97%A5%E6%9C%AC",
		natsjs.HeaderFirstSequence: "9",
		natsjs.HeaderLastSequence:  "12",
		natsjs.HeaderCommitID:      "",
		natsjs.HeaderEventTypes:    "KindsRecorded Gr%C3%B6%C3%9Fe Binary Added",
	}
	for k, v := range want {
		if g := m.Header.Get(k); g != v {
			t.Errorf("header %s = %q, want %q", k, g, v)
		}
	}
	if m.Subject != root+".Order%20Line.k%2E1%20%3E%2A%7E%25%E6%97%A5%E6%9C%AC" {
		t.Errorf("subject %q", m.Subject)
	}
	var env map[string]any
	if err := json.Unmarshal(m.Data, &env); err != nil || env["v"] != 1.0 || env["key"] != stream.Key {
		t.Errorf("payload %s: %v", m.Data, err)
	}
}

func TestDecodeRefusesMalformed(t *testing.T) {
	t.Parallel()
	js := connect(t)
	st, root := newStream(t, js, time.Minute)
	p := publisher(t, js, st, root)
	c := sampleCommit(backend.StreamID{AggregateType: "T", Key: "k"}, 2, "id-1")
	if err := p.PublishCommits(ctx, []backend.Commit{c}); err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, p.Subject(c.Stream))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := natsjs.DecodeCommit(m.Header, m.Data); err != nil {
		t.Fatalf("a valid message: %v", err)
	}
	header := func(k, v string) func(natsgo.Header, []byte) (natsgo.Header, []byte) {
		return func(h natsgo.Header, d []byte) (natsgo.Header, []byte) {
			if v == "" {
				h.Del(k)
			} else {
				h.Set(k, v)
			}
			return h, d
		}
	}
	payload := func(old, new string) func(natsgo.Header, []byte) (natsgo.Header, []byte) {
		return func(h natsgo.Header, d []byte) (natsgo.Header, []byte) {
			s := string(d)
			if !strings.Contains(s, old) {
				t.Fatalf("payload %s lacks %q", s, old)
			}
			return h, []byte(strings.Replace(s, old, new, 1))
		}
	}
	for name, mutate := range map[string]func(natsgo.Header, []byte) (natsgo.Header, []byte){
		"no envelope header": header(natsjs.HeaderEnvelope, ""),
		"envelope version 2": header(natsjs.HeaderEnvelope, "2"),
		"payload version":    payload(`"v":1`, `"v":2`),
		"not JSON":           func(h natsgo.Header, _ []byte) (natsgo.Header, []byte) { return h, []byte("{") },
		"empty payload":      func(h natsgo.Header, _ []byte) (natsgo.Header, []byte) { return h, nil },
		"no events": func(h natsgo.Header, _ []byte) (natsgo.Header, []byte) {
			return h, []byte(`{"v":1,"aggregate_type":"T","key":"k","events":[]}`)
		},
		"gap":                 payload(`"sequence":4`, `"sequence":5`),
		"sequence zero":       payload(`"sequence":3`, `"sequence":0`),
		"bad event type":      payload(`"type":"Binary"`, `"type":"Bi nary"`),
		"bad data":            payload(`"data":"`, `"data":"!`),
		"bad time":            payload(`"time":"`, `"time":"x`),
		"empty key":           payload(`"key":"k"`, `"key":""`),
		"bad commit ID":       payload(`"commit_id":"id-1"`, `"commit_id":"id 1"`),
		"empty metadata key":  payload(`"spaced"`, `""`),
		"type header":         header(natsjs.HeaderAggregateType, "U"),
		"key header":          header(natsjs.HeaderKey, "j"),
		"first header":        header(natsjs.HeaderFirstSequence, "4"),
		"last header":         header(natsjs.HeaderLastSequence, "7"),
		"commit ID header":    header(natsjs.HeaderCommitID, "id-2"),
		"message ID":          header(jetstream.MsgIDHeader, "id-2"),
		"event types header":  header(natsjs.HeaderEventTypes, "A B C D"),
		"fewer types":         header(natsjs.HeaderEventTypes, "KindsRecorded"),
		"types header absent": header(natsjs.HeaderEventTypes, ""),
	} {
		h := natsgo.Header{}
		for k, v := range m.Header {
			h[k] = append([]string(nil), v...)
		}
		h, d := mutate(h, append([]byte(nil), m.Data...))
		if _, err := natsjs.DecodeCommit(h, d); !errors.Is(err, natsjs.ErrMalformed) {
			t.Errorf("%s: DecodeCommit returned %v, want ErrMalformed", name, err)
		}
	}
}

// The after-commit path: the publish middleware publishes one message per
// commit; publishing again stores nothing, even after the duplicate window.
func TestAfterCommitPublish(t *testing.T) {
	t.Parallel()
	js := connect(t)
	st, root := newStream(t, js, 100*time.Millisecond) // the smallest window: de-duplication must not need it
	p := publisher(t, js, st, root)
	var mu sync.Mutex
	var published []publish.Message
	var failures []*publish.Error
	mw, err := publish.New(publish.PublisherFunc(func(ctx context.Context, msgs []publish.Message) error {
		mu.Lock()
		published = append(published, msgs...)
		mu.Unlock()
		return p.Publish(ctx, msgs)
	}), publish.WithErrorHandler(func(_ context.Context, err *publish.Error) {
		mu.Lock()
		failures = append(failures, err)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	b := memory.NewBackend()
	store := es.Wrap(es.NewStore(b), mw)
	mctx := es.WithCorrelationID(ctx, "corr-ü")
	for i := 0; i < 3; i++ {
		for _, k := range []string{"order 1.a*", "Straße>"} {
			pr, err := probe.New(k, "Order", probe.NewRegistry(), store)
			if err != nil {
				t.Fatal(err)
			}
			if err := pr.Handle(mctx, probe.Add{Batch: k, Size: i + 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(failures) > 0 {
		t.Fatalf("publication failed: %v", failures)
	}
	checkExactlyOnce(t, st, root, stored(t, b))
	if s := p.Stats(); s.Published != 6 || s.Reads != 2 || s.AlreadyHeld != 0 {
		t.Fatalf("stats %+v: want 6 published and one read per subject", s)
	}
	time.Sleep(300 * time.Millisecond) // past the duplicate window
	if err := p.Publish(ctx, published); err != nil {
		t.Fatalf("republish: %v", err)
	}
	fresh := publisher(t, js, st, root) // another process, with nothing cached
	if err := fresh.Publish(ctx, published); err != nil {
		t.Fatalf("republish from another publisher: %v", err)
	}
	if s := fresh.Stats(); s.AlreadyHeld != 6 || s.Published != 0 {
		t.Fatalf("fresh publisher stats %+v", s)
	}
	checkExactlyOnce(t, st, root, stored(t, b))
}

// The after-commit path never publishes a commit whose predecessor is not
// in JetStream (it would leave a gap a relay could never fill in order): it
// reports ErrGap, and the relay publishes both, in order.
func TestAfterCommitLeavesGapsToTheRelay(t *testing.T) {
	t.Parallel()
	js := connect(t)
	st, root := newStream(t, js, time.Minute)
	p := publisher(t, js, st, root)
	var mu sync.Mutex
	var failures []error
	drop := true
	mw, _ := publish.New(publish.PublisherFunc(func(ctx context.Context, msgs []publish.Message) error {
		mu.Lock()
		d := drop
		drop = false
		mu.Unlock()
		if d { // the first commit's publication is lost (the process died, the network failed)
			return errors.New("lost")
		}
		return p.Publish(ctx, msgs)
	}), publish.WithErrorHandler(func(_ context.Context, err *publish.Error) {
		mu.Lock()
		failures = append(failures, err)
		mu.Unlock()
	}))
	b := memory.NewBackend()
	store := es.Wrap(es.NewStore(b), mw)
	pr, _ := probe.New("k", "", probe.NewRegistry(), store)
	for i := 0; i < 3; i++ {
		if err := pr.Handle(ctx, probe.Add{Batch: "b", Size: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if len(failures) != 3 || !errors.Is(failures[1], natsjs.ErrGap) || !errors.Is(failures[2], natsjs.ErrGap) {
		t.Fatalf("failures %v: want the lost one, then ErrGap twice", failures)
	}
	if got := held(t, st, root); len(got) != 0 {
		t.Fatalf("JetStream holds %d commits, want none: the later ones wait for the first", len(got))
	}
	r, err := relay.New(relay.FromFeed(b, b, "nats"), p, fast...)
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)
	waitFor(t, "the relay", 20*time.Second, func() bool { return source{backend: b}.drained("nats") })
	checkExactlyOnce(t, st, root, stored(t, b))

	// With AllowGaps (no relay), the after-commit path publishes anyway.
	st2, root2 := newStream(t, js, time.Minute)
	loose := publisher(t, js, st2, root2, natsjs.AllowGaps())
	c := stored(t, b)
	if err := loose.Publish(ctx, messagesOf(c[1:])); err != nil {
		t.Fatal(err)
	}
	if got := held(t, st2, root2); len(got) != 2 || got[0].First() != 3 {
		t.Fatalf("AllowGaps: JetStream holds %d commits, want the 2 after the lost one", len(got))
	}
}

func messagesOf(cs []backend.Commit) []publish.Message {
	var out []publish.Message
	for _, c := range cs {
		for _, r := range c.Records {
			out = append(out, publish.Message{Record: r})
		}
	}
	return out
}

// A commit larger than the server's max_payload is refused before sending.
func TestTooLarge(t *testing.T) {
	t.Parallel()
	js := connect(t)
	st, root := newStream(t, js, time.Minute)
	p := publisher(t, js, st, root)
	stream := backend.StreamID{AggregateType: "T", Key: "big"}
	c := backend.Commit{Stream: stream, ID: "big-1", Records: []backend.Record{{Stream: stream, Sequence: 1, EventType: "Big",
		Data: make([]byte, js.Conn().MaxPayload()), Timestamp: time.Now(), CommitID: "big-1"}}}
	if err := p.PublishCommits(ctx, []backend.Commit{c}); !errors.Is(err, natsjs.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if got := held(t, st, root); len(got) != 0 {
		t.Fatal("something was stored")
	}
}

// Two stores misconfigured to share subjects: what the Publisher can see of
// it is reported.
func TestSharedSubjectsAreReported(t *testing.T) {
	t.Parallel()
	js := connect(t)
	st, root := newStream(t, js, time.Minute)
	p := publisher(t, js, st, root)
	stream := backend.StreamID{AggregateType: "T", Key: "k"}
	mk := func(expected int64, n int, id string) backend.Commit {
		c := backend.Commit{Stream: stream, Expected: expected, ID: id}
		for i := range n {
			c.Records = append(c.Records, backend.Record{Stream: stream, Sequence: expected + 1 + int64(i), EventType: "E", Data: []byte("{}"), Timestamp: time.Now(), CommitID: id})
		}
		return c
	}
	if err := p.PublishCommits(ctx, []backend.Commit{mk(0, 2, "a-1")}); err != nil {
		t.Fatal(err)
	}
	other := publisher(t, js, st, root)
	if err := other.PublishCommits(ctx, []backend.Commit{mk(0, 2, "b-1")}); !errors.Is(err, natsjs.ErrSubjectConflict) {
		t.Errorf("same sequences, other commit: %v", err)
	}
	if err := other.PublishCommits(ctx, []backend.Commit{mk(1, 2, "b-2")}); !errors.Is(err, natsjs.ErrSubjectConflict) {
		t.Errorf("overlapping sequences: %v", err)
	}
	// A message this package did not publish.
	if _, err := js.Publish(ctx, p.Subject(backend.StreamID{AggregateType: "T", Key: "x"}), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	x := mk(0, 1, "x-1")
	x.Stream.Key = "x"
	x.Records[0].Stream = x.Stream
	if err := other.PublishCommits(ctx, []backend.Commit{x}); !errors.Is(err, natsjs.ErrSubjectConflict) {
		t.Errorf("foreign message: %v", err)
	}
}

// The publish middleware with this Publisher passes the conformance suite
// (racing writers included), publishing every commit.
func TestConformance(t *testing.T) {
	js := connect(t)
	st, root := newStream(t, js, time.Minute)
	p := publisher(t, js, st, root)
	var failed sync.Map
	mw, err := publish.New(p, publish.WithErrorHandler(func(_ context.Context, err *publish.Error) { failed.Store(err, true) }))
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunEventStore(t, func(t *testing.T) es.EventStore { return es.Wrap(es.NewStore(memory.NewBackend()), mw) })
	failed.Range(func(k, _ any) bool {
		t.Errorf("publication failed: %v", k)
		return true
	})
}

// A publisher whose view of a subject is stale (another process appended
// since, and the duplicate window has passed) is stopped by the server's
// expected-sequence check, looks again and finds its commit there.
func TestStaleViewIsRefusedByTheServer(t *testing.T) {
	t.Parallel()
	js := connect(t)
	st, root := newStream(t, js, 100*time.Millisecond)
	b := memory.NewBackend()
	writers(t, es.NewStore(b), []string{"k"}, 1, 2, nil)
	cs := stored(t, b)
	p1, p2 := publisher(t, js, st, root), publisher(t, connect(t), st, root)
	if err := p1.PublishCommits(ctx, cs[:1]); err != nil {
		t.Fatal(err)
	}
	if err := p2.PublishCommits(ctx, cs); err != nil { // the other process publishes the second commit
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // past the duplicate window
	if err := p1.PublishCommits(ctx, cs[1:]); err != nil {
		t.Fatal(err)
	}
	if s := p1.Stats(); s.Retries != 1 || s.AlreadyHeld != 1 || s.Published != 1 {
		t.Fatalf("stats %+v: want one refused publication, then the commit found held", s)
	}
	checkExactlyOnce(t, st, root, cs)
}

// A subject the named JetStream stream does not capture, or a stream name
// that is not the one capturing the subject, is reported, and nothing is
// stored.
func TestUncapturedSubjectIsReported(t *testing.T) {
	t.Parallel()
	js := connect(t, natsgo.Timeout(2*time.Second))
	st, root := newStream(t, js, time.Minute)
	other, _ := newStream(t, js, time.Minute)
	c := sampleCommit(backend.StreamID{AggregateType: "T", Key: "k"}, 0, "u-1")
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := publisher(t, js, st, root+"x").PublishCommits(short, []backend.Commit{c}); err == nil {
		t.Fatal("publishing to a subject no stream captures succeeded")
	}
	wrong, err := natsjs.New(js, streamName(other), natsjs.WithSubjectPrefix(root))
	if err != nil {
		t.Fatal(err)
	}
	if err := wrong.PublishCommits(ctx, []backend.Commit{c}); err == nil {
		t.Fatal("publishing with the wrong stream name succeeded")
	}
	for _, s := range []jetstream.Stream{st, other} {
		if info, err := s.Info(ctx); err != nil || info.State.Msgs != 0 {
			t.Fatalf("stream holds %v messages (%v)", info.State.Msgs, err)
		}
	}
}
