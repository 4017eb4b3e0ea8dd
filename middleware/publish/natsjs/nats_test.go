package nats_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/testenv"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/middleware/publish/nats"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/storetest"
)

var ctx = context.Background()

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
		got := nats.EscapeToken(in)
		if got != want {
			t.Errorf("EscapeToken(%q) = %q, want %q", in, got, want)
		}
		back, err := nats.UnescapeToken(got)
		if err != nil || back != in {
			t.Errorf("UnescapeToken(%q) = %q, %v; want %q", got, back, err, in)
		}
	}
	for _, bad := range []string{"%", "%4", "%zz", "a%G1"} {
		if _, err := nats.UnescapeToken(bad); err == nil {
			t.Errorf("UnescapeToken(%q) accepted a malformed escape", bad)
		}
	}
}

// stubJS is a jetstream.Publisher that records what it is asked to publish
// and fails the messages whose sequence header is in fail.
type stubJS struct {
	jetstream.Publisher // unused methods panic
	mu                  sync.Mutex
	sent                []*natsgo.Msg
	fail                map[string]bool
}

var errStub = errors.New("stub: rejected")

func (s *stubJS) PublishMsg(_ context.Context, m *natsgo.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, m)
	if s.fail[m.Header.Get(nats.HeaderSequence)] {
		return nil, errStub
	}
	return &jetstream.PubAck{Stream: "S"}, nil
}

type future struct {
	ok  chan *jetstream.PubAck
	err chan error
	msg *natsgo.Msg
}

func (f future) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f future) Err() <-chan error            { return f.err }
func (f future) Msg() *natsgo.Msg             { return f.msg }

func (s *stubJS) PublishMsgAsync(m *natsgo.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f := future{ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1), msg: m}
	if ack, err := s.PublishMsg(ctx, m, opts...); err != nil {
		f.err <- err
	} else {
		f.ok <- ack
	}
	return f, nil
}

func messages(stream es.StreamID, from, n int64) []publish.Message {
	var msgs []publish.Message
	for seq := from; seq < from+n; seq++ {
		msgs = append(msgs, publish.Message{Record: es.Record{
			Stream: stream, Sequence: seq, EventType: "Added", Data: []byte(`{}`), Timestamp: time.Now().UTC(),
		}})
	}
	return msgs
}

func sequences(err error) []int64 {
	var perr *publish.Error
	if !errors.As(err, &perr) {
		return nil
	}
	var out []int64
	for _, m := range perr.Messages {
		out = append(out, m.Record.Sequence)
	}
	return out
}

func TestSubjects(t *testing.T) {
	stub := &stubJS{}
	p, err := nats.New(stub)
	if err != nil {
		t.Fatal(err)
	}
	rec := es.Record{Stream: es.StreamID{AggregateType: "Order Line", Key: "k.1 >"}}
	if got, want := p.Subject(rec), "events.Order%20Line.k%2E1%20%3E"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	long := es.StreamID{AggregateType: "T", Key: strings.Repeat("é", 500)}
	subj := p.Subject(es.Record{Stream: long})
	tok := subj[strings.LastIndexByte(subj, '.')+1:]
	if len(tok) > 256 || !strings.Contains(tok, "~") || strings.Contains(tok[strings.IndexByte(tok, '~'):], "%") {
		t.Errorf("long key token %q (%d bytes)", tok, len(tok))
	}
	other := p.Subject(es.Record{Stream: es.StreamID{AggregateType: "T", Key: strings.Repeat("é", 499) + "e"}})
	if other == subj {
		t.Error("two long keys share a subject")
	}
	// The prefix is validated.
	for _, bad := range []string{"", "a..b", "a.*", "a.>", "has space", ".a", "a."} {
		if _, err := nats.New(stub, nats.WithSubjectPrefix(bad)); !errors.Is(err, nats.ErrInvalidSubject) {
			t.Errorf("prefix %q: %v", bad, err)
		}
	}
	if _, err := nats.New(nil); !errors.Is(err, nats.ErrNilJetStream) {
		t.Errorf("New(nil): %v", err)
	}
	p, _ = nats.New(stub, nats.WithSubjectPrefix("acme.orders"))
	if got := p.Subject(rec); got != "acme.orders.Order%20Line.k%2E1%20%3E" {
		t.Errorf("prefixed subject %q", got)
	}
	if got := nats.MsgID(rec.Stream, 42); got != "Order%20Line.k%2E1%20%3E.42" {
		t.Errorf("MsgID %q", got)
	}
}

func TestInvalidSubjectStopsTheCall(t *testing.T) {
	for _, seq := range []bool{false, true} {
		stub := &stubJS{}
		opts := []nats.Option{nats.WithSubject(func(r es.Record) string {
			if r.Sequence == 3 {
				return "bad.*.subject"
			}
			return "ok." + strconv.FormatInt(r.Sequence, 10)
		})}
		if seq {
			opts = append(opts, nats.WithSequential())
		}
		p, err := nats.New(stub, opts...)
		if err != nil {
			t.Fatal(err)
		}
		err = p.Publish(ctx, messages(es.StreamID{AggregateType: "T", Key: "k"}, 1, 5))
		if !errors.Is(err, nats.ErrInvalidSubject) || !errors.Is(err, publish.ErrNotPublished) || !slices.Equal(sequences(err), []int64{3, 4, 5}) {
			t.Fatalf("sequential=%v: got %v (sequences %v)", seq, err, sequences(err))
		}
		if len(stub.sent) != 2 {
			t.Fatalf("sequential=%v: sent %d messages, want the 2 before the bad one", seq, len(stub.sent))
		}
	}
}

func TestFailuresAreReportedPerMode(t *testing.T) {
	stream := es.StreamID{AggregateType: "T", Key: "k"}
	// Pipelined: everything is sent; exactly the failed ones are reported.
	stub := &stubJS{fail: map[string]bool{"2": true, "4": true}}
	p, _ := nats.New(stub)
	err := p.Publish(ctx, messages(stream, 1, 5))
	if !errors.Is(err, errStub) || !slices.Equal(sequences(err), []int64{2, 4}) || len(stub.sent) != 5 {
		t.Fatalf("pipelined: %v, sequences %v, sent %d", err, sequences(err), len(stub.sent))
	}
	// Sequential: stops at the first failure.
	stub = &stubJS{fail: map[string]bool{"2": true, "4": true}}
	p, _ = nats.New(stub, nats.WithSequential())
	err = p.Publish(ctx, messages(stream, 1, 5))
	if !errors.Is(err, errStub) || !slices.Equal(sequences(err), []int64{2, 3, 4, 5}) || len(stub.sent) != 2 {
		t.Fatalf("sequential: %v, sequences %v, sent %d", err, sequences(err), len(stub.sent))
	}
	// An invalid record is refused, not sent.
	msgs := messages(stream, 1, 2)
	msgs[1].Record.Stream.Key = ""
	stub = &stubJS{}
	p, _ = nats.New(stub)
	if err := p.Publish(ctx, msgs); !errors.Is(err, es.ErrInvalidStream) || len(stub.sent) != 1 {
		t.Fatalf("invalid stream: %v, sent %d", err, len(stub.sent))
	}
}

// server connects to the test server and returns a JetStream context.
func server(t testing.TB) jetstream.JetStream {
	t.Helper()
	url := testenv.Get(t, testenv.NATSURL)
	nc, err := natsgo.Connect(url)
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

// uniqueStream creates a JetStream stream with a unique name capturing a
// unique subject prefix, deleted when t ends.
func uniqueStream(t testing.TB, js jetstream.JetStream) (jetstream.Stream, string) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	name := "ES_" + id
	prefix := "test." + id + ".events"
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{prefix + ".>"},
		Duplicates: 10 * time.Minute,
		Storage:    jetstream.MemoryStorage,
	})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	return s, prefix
}

// consume reads n messages through a new durable consumer.
func consume(t testing.TB, s jetstream.Stream, n int) []jetstream.Msg {
	t.Helper()
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "reader", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for len(out) < n {
		batch, err := c.FetchNoWait(n - len(out))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
			got++
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		if got == 0 {
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Fatalf("consumed %d messages, want %d (the stream holds %d)", len(out), n, info.State.Msgs)
		}
	}
	return out
}

func TestPublishToJetStream(t *testing.T) {
	for _, mode := range []string{"pipelined", "sequential"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			js := server(t)
			st, prefix := uniqueStream(t, js)
			opts := []nats.Option{nats.WithSubjectPrefix(prefix), nats.WithStream(st.CachedInfo().Config.Name)}
			if mode == "sequential" {
				opts = append(opts, nats.WithSequential())
			}
			np, err := nats.New(js, opts...)
			if err != nil {
				t.Fatal(err)
			}
			// Record what the middleware hands the publisher, to republish it.
			var mu sync.Mutex
			var published []publish.Message
			var failures []*publish.Error
			mw, err := publish.New(publish.PublisherFunc(func(ctx context.Context, msgs []publish.Message) error {
				mu.Lock()
				published = append(published, msgs...)
				mu.Unlock()
				return np.Publish(ctx, msgs)
			}), publish.WithErrorHandler(func(_ context.Context, err *publish.Error) {
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
			}))
			if err != nil {
				t.Fatal(err)
			}
			store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
			defer store.Close()

			// Two aggregates; keys that need escaping.
			keys := []string{"order 1.a*", "Straße>"}
			mctx := es.WithCorrelationID(ctx, "corr-ü")
			mctx = es.WithMetadata(mctx, "user", " spaced ")
			var want []string // event IDs in publication order
			for i := 0; i < 3; i++ {
				for _, k := range keys {
					p, err := storetest.NewProbe(k, "Order", storetest.NewRegistry(), store)
					if err != nil {
						t.Fatal(err)
					}
					batch := fmt.Sprintf("%s#%d", k, i)
					if err := p.Handle(mctx, storetest.Add{Batch: batch, Size: i + 1}); err != nil {
						t.Fatal(err)
					}
					for j := 0; j <= i; j++ {
						want = append(want, fmt.Sprintf("%s-%d", batch, j))
					}
				}
			}
			if len(failures) > 0 {
				t.Fatalf("publication failed: %v", failures)
			}
			got := consume(t, st, len(want))
			seqs := map[string]int64{}
			for i, m := range got {
				var ev storetest.Added
				if err := json.Unmarshal(m.Data(), &ev); err != nil {
					t.Fatalf("payload %q: %v", m.Data(), err)
				}
				if ev.ID != want[i] {
					t.Fatalf("message %d is %s, want %s", i, ev.ID, want[i])
				}
				h := m.Headers()
				key, err := nats.UnescapeToken(h.Get(nats.HeaderKey))
				if err != nil {
					t.Fatal(err)
				}
				seqs[key]++
				rec := published[i].Record
				wantHeaders := map[string]string{
					jetstream.MsgIDHeader:    nats.MsgID(rec.Stream, rec.Sequence),
					nats.HeaderEventType:     "Added",
					nats.HeaderAggregateType: "Order",
					nats.HeaderKey:           nats.EscapeToken(rec.Stream.Key),
					nats.HeaderSequence:      strconv.FormatInt(seqs[key], 10),
					nats.HeaderTimestamp:     rec.Timestamp.Format(time.RFC3339Nano),
					nats.HeaderMetadata:      `{"correlation_id":"corr-\u00fc","user":" spaced "}`,
				}
				for k, v := range wantHeaders {
					if g := h.Get(k); g != v {
						t.Errorf("message %d: header %s = %q, want %q", i, k, g, v)
					}
				}
				if !strings.HasPrefix(ev.ID, key+"#") || rec.Sequence != seqs[key] {
					t.Fatalf("message %d (%s) has key %q and sequence %d", i, ev.ID, key, seqs[key])
				}
				if subj := m.Subject(); subj != prefix+".Order."+nats.EscapeToken(key) {
					t.Errorf("subject %q", subj)
				}
				var md map[string]string
				if err := json.Unmarshal([]byte(h.Get(nats.HeaderMetadata)), &md); err != nil || md[es.MetadataCorrelationID] != "corr-ü" {
					t.Errorf("metadata %v, %v", md, err)
				}
			}

			// Publishing the same events again stores nothing: the server
			// de-duplicates on the message ID.
			if err := np.Publish(ctx, published); err != nil {
				t.Fatalf("republish: %v", err)
			}
			for _, m := range published[:1] {
				ack, err := js.PublishMsg(ctx, &natsgo.Msg{Subject: np.Subject(m.Record), Data: m.Record.Data},
					jetstream.WithMsgID(nats.MsgID(m.Record.Stream, m.Record.Sequence)))
				if err != nil || !ack.Duplicate {
					t.Fatalf("the server did not see a duplicate: %+v, %v", ack, err)
				}
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Msgs != uint64(len(want)) {
				t.Fatalf("the stream holds %d messages after republishing, want %d", info.State.Msgs, len(want))
			}
		})
	}
}

func TestUncapturedSubjectIsReported(t *testing.T) {
	t.Parallel()
	js := server(t)
	st, prefix := uniqueStream(t, js)
	// WithStream names a stream that does not capture the subjects.
	np, err := nats.New(js, nats.WithSubjectPrefix(prefix+"x"), nats.WithStream(st.CachedInfo().Config.Name))
	if err != nil {
		t.Fatal(err)
	}
	err = np.Publish(ctx, messages(es.StreamID{AggregateType: "T", Key: "k"}, 1, 3))
	if !errors.Is(err, publish.ErrNotPublished) || !slices.Equal(sequences(err), []int64{1, 2, 3}) {
		t.Fatalf("got %v (sequences %v)", err, sequences(err))
	}
	// With the right subjects but the wrong expected stream, the server refuses.
	np, _ = nats.New(js, nats.WithSubjectPrefix(prefix), nats.WithStream("NOT_"+st.CachedInfo().Config.Name), nats.WithSequential())
	err = np.Publish(ctx, messages(es.StreamID{AggregateType: "T", Key: "k"}, 1, 2))
	if !slices.Equal(sequences(err), []int64{1, 2}) {
		t.Fatalf("got %v (sequences %v)", err, sequences(err))
	}
	if info, _ := st.Info(ctx); info.State.Msgs != 0 {
		t.Fatalf("stored %d messages", info.State.Msgs)
	}
}

// The publish middleware with the NATS publisher passes the conformance
// suite (racing writers included).
func TestConformance(t *testing.T) {
	js := server(t)
	_, prefix := uniqueStream(t, js)
	np, err := nats.New(js, nats.WithSubjectPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	var failed sync.Map
	mw, err := publish.New(np, publish.WithErrorHandler(func(_ context.Context, err *publish.Error) { failed.Store(err, true) }))
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunEventStore(t, func(t *testing.T) es.EventStore { return es.Wrap(es.NewStore(memory.NewBackend()), mw) })
	failed.Range(func(k, _ any) bool {
		t.Errorf("publication failed: %v", k)
		return true
	})
}

func TestMsgIDPrefixSeparatesStores(t *testing.T) {
	t.Parallel()
	js := server(t)
	st, prefix := uniqueStream(t, js)
	msgs := messages(es.StreamID{AggregateType: "T", Key: "k"}, 1, 2)
	for _, idPrefix := range []string{"a:", "b:", "a:"} {
		np, err := nats.New(js, nats.WithSubjectPrefix(prefix), nats.WithMsgIDPrefix(idPrefix))
		if err != nil {
			t.Fatal(err)
		}
		if err := np.Publish(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 4 { // a: and b: once each; a: again is a duplicate
		t.Fatalf("the stream holds %d messages, want 4", info.State.Msgs)
	}
	got := consume(t, st, 4)
	for i, want := range []string{"a:T.k.1", "a:T.k.2", "b:T.k.1", "b:T.k.2"} {
		if id := got[i].Headers().Get(jetstream.MsgIDHeader); id != want {
			t.Errorf("message %d: id %q, want %q", i, id, want)
		}
	}
}
