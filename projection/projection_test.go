package projection_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/projection"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// shapes has one method of each accepted shape.
type shapes struct {
	added []probe.Added
	kinds []string
	ctxOK bool
	env   projection.Event
}

func (m *shapes) ProjectAdded(ctx context.Context, ev projection.Event, e *probe.Added) error {
	m.ctxOK = ctx != nil
	m.env = ev
	m.added = append(m.added, *e)
	return nil
}

func (m *shapes) ProjectKinds(e probe.KindsRecorded) { m.kinds = append(m.kinds, e.Kinds.Text) }

func TestProjectMethodsReceiveDecodedEventsWithEnvelope(t *testing.T) {
	ctx := context.Background()
	b := memory.NewBackend()
	reg := probe.NewRegistry()
	store := es.NewStore(b)
	p, err := probe.New("k1", "", reg, store)
	if err != nil {
		t.Fatal(err)
	}
	cctx := es.WithCorrelationID(es.WithCommandID(ctx, "cmd-1"), "corr-9")
	if err := p.Handle(cctx, probe.Add{Batch: "b", Size: 2}); err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(ctx, probe.RecordKinds{Kinds: probe.SampleKinds()}); err != nil {
		t.Fatal(err)
	}
	m := &shapes{}
	proj, err := projection.New("shapes", reg, m)
	if err != nil {
		t.Fatal(err)
	}
	src, err := projection.FromStore(store)
	if err != nil {
		t.Fatal(err)
	}
	r, err := projection.NewRunner(proj, src, projection.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if len(m.added) != 2 || m.added[1].ID != "b-1" || len(m.kinds) != 1 || m.kinds[0] != probe.SampleKinds().Text || !m.ctxOK {
		t.Fatalf("applied %+v and %q", m.added, m.kinds)
	}
	ev := m.env
	want := es.StreamID{AggregateType: "Probe", Key: "k1"}
	if ev.Stream != want || ev.Sequence != 2 || ev.Type != "Added" || ev.CommitID != "cmd-1" ||
		ev.Metadata[es.MetadataCorrelationID] != "corr-9" || ev.Position == "" || time.Since(ev.Time) > time.Hour {
		t.Fatalf("envelope %+v", ev)
	}
	if got, ok := ev.Data.(probe.Added); !ok || got.ID != "b-1" {
		t.Fatalf("Data is %T %v, want the decoded probe.Added value", ev.Data, ev.Data)
	}
	if st := r.Status(); st.Applied != 3 || st.Commits != 2 || !st.CaughtUp || st.Position <= ev.Position || st.Lag != 0 {
		t.Fatalf("status %+v", st)
	}
}

// broken has every kind of malformed Project method.
type broken struct{}

func (*broken) ProjectTwoResults(e probe.Added) (int, error) { return 0, nil }
func (*broken) ProjectNoEvent()                              {}
func (*broken) ProjectInterface(e any)                       {}
func (*broken) ProjectWrongOrder(ev projection.Event, ctx context.Context, e probe.Added) error {
	return nil
}
func (*broken) ProjectUnregistered(e time.Duration) {}
func (*broken) ProjectAdded(e probe.Added)          {}
func (*broken) ProjectAddedAgain(e *probe.Added)    {}
func (broken) ProjectValue(e probe.KindsRecorded)   {}
func (*broken) Unrelated(x, y int) int              { return x + y }

func TestNewNamesEveryMalformedMethod(t *testing.T) {
	_, err := projection.New("broken", probe.NewRegistry(), &broken{})
	var we *es.WireupError
	if !errors.As(err, &we) || !errors.Is(err, es.ErrInvalidWireup) {
		t.Fatalf("got %v, want an *eventsourcing.WireupError", err)
	}
	msg := err.Error()
	for _, name := range []string{"ProjectTwoResults", "ProjectNoEvent", "ProjectInterface", "ProjectWrongOrder",
		"ProjectUnregistered", "ProjectAddedAgain", "ProjectValue"} {
		if !strings.Contains(msg, name) {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
	if strings.Contains(msg, "Unrelated") {
		t.Errorf("the error names a method that is not a Project method: %v", err)
	}
	if len(we.Problems) != 7 {
		t.Errorf("%d problems, want 7: %q", len(we.Problems), we.Problems)
	}
}

func TestNewRefusesBadArguments(t *testing.T) {
	reg := probe.NewRegistry()
	for name, f := range map[string]func() error{
		"nil model":   func() error { _, err := projection.New("x", reg, nil); return err },
		"non-pointer": func() error { _, err := projection.New("x", reg, tally{}); return err },
		"nil pointer": func() error { _, err := projection.New("x", reg, (*tally)(nil)); return err },
		"empty name":  func() error { _, err := projection.New("", reg, newTally()); return err },
		"bad name":    func() error { _, err := projection.New("a.b", reg, newTally()); return err },
		"bad version": func() error {
			_, err := projection.New("a", reg, newTally(), projection.WithVersion("v 2"))
			return err
		},
		"nil registry":  func() error { _, err := projection.New("a", nil, newTally()); return err },
		"typed nil reg": func() error { _, err := projection.New("a", (*es.StandardEventRegistry)(nil), newTally()); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// sqlModel takes an *sql.Tx, which a MemoryStore cannot give.
type sqlModel struct{}

func (*sqlModel) ProjectAdded(ctx context.Context, tx *sql.Tx, e probe.Added) error { return nil }

func TestNewRunnerChecksTheTransactionType(t *testing.T) {
	reg := probe.NewRegistry()
	p, err := projection.New("sqlmodel", reg, &sqlModel{})
	if err != nil {
		t.Fatal(err)
	}
	if err := projection.OnTx(p, func(ctx context.Context, tx *sql.Tx, ev projection.Event, e probe.KindsRecorded) error { return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = projection.NewRunner(p, projection.FromFeed(memory.NewBackend()), projection.NewMemoryStore())
	if !errors.Is(err, projection.ErrInvalidHandle) || !errors.Is(err, es.ErrInvalidWireup) ||
		!strings.Contains(err.Error(), "ProjectAdded") || !strings.Contains(err.Error(), "On(probe.KindsRecorded)") {
		t.Fatalf("got %v, want ErrInvalidHandle naming the method and the function", err)
	}
}

func TestOnFunctions(t *testing.T) {
	ctx := context.Background()
	b := memory.NewBackend()
	s := es.StreamID{AggregateType: "Probe", Key: "k"}
	if err := b.Append(ctx, addCommit(t, s, 0, 3, "x")); err != nil {
		t.Fatal(err)
	}
	reg := probe.NewRegistry()
	m := newTally() // its ProjectAdded is overridden by On
	p, err := projection.New("on", reg, m)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := projection.On(p, func(ctx context.Context, ev projection.Event, e *probe.Added) error {
		got = append(got, e.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := projection.On(p, func(ctx context.Context, ev projection.Event, e probe.Added) error { return nil }); !errors.Is(err, es.ErrInvalidWireup) {
		t.Fatalf("a second function for one type: %v", err)
	}
	if err := projection.On(p, func(ctx context.Context, ev projection.Event, e time.Duration) error { return nil }); !errors.Is(err, es.ErrUnregisteredEvent) {
		t.Fatalf("an unregistered type: %v", err)
	}
	if err := projection.On[probe.Added](p, nil); !errors.Is(err, es.ErrInvalidWireup) {
		t.Fatalf("a nil function: %v", err)
	}
	r, err := projection.NewRunner(p, projection.FromFeed(b), projection.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "x-0,x-1,x-2" || m.count() != 0 {
		t.Fatalf("On got %v; the method got %d", got, m.count())
	}
}

func TestAggregateTypeFilter(t *testing.T) {
	ctx := context.Background()
	b := memory.NewBackend()
	heads := map[es.StreamID]int64{}
	appendAdds(t, b, []es.StreamID{{AggregateType: "Probe", Key: "a"}, {AggregateType: "Other", Key: "a"}}, 4, 2, heads, "f")
	m := newTally()
	p, err := projection.New("filter", probe.NewRegistry(), m, projection.WithAggregateTypes("Probe"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := projection.NewRunner(p, projection.FromFeed(b), projection.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	got := m.snapshot()
	if len(got) != 1 || len(got[es.StreamID{AggregateType: "Probe", Key: "a"}]) != 4 {
		t.Fatalf("got %v", got)
	}
}

func TestFromStoreWithoutFeed(t *testing.T) {
	_, err := projection.FromStore(es.NewStore(noFeed{}))
	if !errors.Is(err, projection.ErrNoFeed) {
		t.Fatalf("got %v, want ErrNoFeed", err)
	}
}

type noFeed struct{ backend.Backend }
