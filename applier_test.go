package eventsourcing_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// Counted has a hand-written DecodeJSON, as json.Unmarshal decodes it.
type Counted struct{ N int }

func (c *Counted) DecodeJSON(data []byte) error { return json.Unmarshal(data, (*struct{ N int })(c)) }

// Tally implements JSONEventApplier by hand and counts what it applied.
type Tally struct {
	es.AggregateBase `json:"-"`
	Sum              int

	applied int  // events ApplyJSONEvent applied
	refuse  bool // ApplyJSONEvent reports false
}

func (t *Tally) ReplayCounted(e Counted) { t.Sum += e.N }

func (t *Tally) ApplyJSONEvent(typ reflect.Type, data []byte) (bool, error) {
	if t.refuse || typ != reflect.TypeFor[Counted]() {
		return false, nil
	}
	var e Counted
	if err := e.DecodeJSON(data); err != nil {
		return true, err
	}
	t.applied++
	t.ReplayCounted(e)
	return true, nil
}

// Doubled has DecodeJSON beside UnmarshalJSON, which JSONCodec honours:
// an aggregate replaying it must not load through ApplyJSONEvent.
type Doubled struct{ N int }

func (d *Doubled) DecodeJSON(data []byte) error { return errors.New("DecodeJSON must not be called") }
func (d *Doubled) UnmarshalJSON(data []byte) error {
	return json.Unmarshal(data, (*struct{ N int })(d))
}

// DoubleTally replays Doubled and implements JSONEventApplier.
type DoubleTally struct {
	es.AggregateBase `json:"-"`
	Sum              int
	applied          int
}

func (t *DoubleTally) ReplayDoubled(e Doubled) { t.Sum += e.N }
func (t *DoubleTally) ApplyJSONEvent(reflect.Type, []byte) (bool, error) {
	t.applied++
	return true, nil
}

// otherCodec is JSONCodec under another type, which JSONEventApplier is not
// for.
type otherCodec struct{ es.JSONCodec }

// bindTally returns a Tally for key over store, bound through a registry
// of Counted with codec (nil: JSONCodec).
func bindTally(t *testing.T, store es.EventStore, codec es.Codec, key string) *Tally {
	t.Helper()
	var opts []es.RegistryOption
	if codec != nil {
		opts = append(opts, es.WithCodec(codec))
	}
	reg := es.NewStandardEventRegistry("tally", opts...)
	if err := reg.RegisterEvent(Counted{}); err != nil {
		t.Fatal(err)
	}
	kind, err := es.NewKind[*Tally](reg, store)
	if err != nil {
		t.Fatal(err)
	}
	a := &Tally{}
	if err := kind.Bind(a, key); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestJSONEventApplier(t *testing.T) {
	ctx := context.Background()
	backend := memory.NewBackend()
	store := es.NewStore(backend)
	stream := es.StreamID{AggregateType: "Tally", Key: "k"}
	for i, data := range []string{`{"N":1}`, `{"N":2}`, `{"n":4}`} { // the last in another case: encoding/json matches it
		rawAppend(t, backend, stream, int64(i), "Counted", data)
	}
	load := func(t *testing.T, codec es.Codec, setup func(*Tally)) *Tally {
		t.Helper()
		a := bindTally(t, store, codec, "k")
		if setup != nil {
			setup(a)
		}
		if err := a.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if a.SequenceNumber() != 3 {
			t.Fatalf("sequence %d, want 3", a.SequenceNumber())
		}
		return a
	}
	t.Run("used", func(t *testing.T) {
		if a := load(t, nil, nil); a.applied != 3 || a.Sum != 7 {
			t.Fatalf("applied %d, sum %d; want 3 and 7", a.applied, a.Sum)
		}
	})
	t.Run("refused", func(t *testing.T) {
		if a := load(t, nil, func(a *Tally) { a.refuse = true }); a.applied != 0 || a.Sum != 7 {
			t.Fatalf("applied %d, sum %d; want 0 and 7", a.applied, a.Sum)
		}
	})
	t.Run("defined replay first", func(t *testing.T) {
		defined := 0
		a := load(t, nil, func(a *Tally) {
			err := a.DefineReplayMethod(Counted{}, func(e es.Event) { defined += e.(Counted).N })
			if err != nil {
				t.Fatal(err)
			}
		})
		if a.applied != 0 || a.Sum != 0 || defined != 7 {
			t.Fatalf("applied %d, sum %d, defined %d; want 0, 0 and 7", a.applied, a.Sum, defined)
		}
	})
	t.Run("other codec", func(t *testing.T) {
		if a := load(t, otherCodec{}, nil); a.applied != 0 || a.Sum != 7 {
			t.Fatalf("applied %d, sum %d; want 0 and 7", a.applied, a.Sum)
		}
	})
	t.Run("decode error", func(t *testing.T) {
		bad := es.StreamID{AggregateType: "Tally", Key: "bad"}
		rawAppend(t, backend, bad, 0, "Counted", `{"N":1}`)
		rawAppend(t, backend, bad, 1, "Counted", `{"N":"two"}`)
		var errs []string
		for _, codec := range []es.Codec{nil, otherCodec{}} {
			a := bindTally(t, store, codec, "bad")
			err := a.Refresh(ctx)
			var re *es.RecordError
			if !errors.Is(err, es.ErrCorruptStream) || !errors.As(err, &re) || re.Sequence != 2 || re.Type != "Counted" {
				t.Fatalf("got %v, want a *RecordError at sequence 2", err)
			}
			if a.SequenceNumber() != 1 || a.Sum != 1 {
				t.Fatalf("after the error: sequence %d, sum %d; want 1 and 1", a.SequenceNumber(), a.Sum)
			}
			errs = append(errs, err.Error())
		}
		if errs[0] != errs[1] {
			t.Fatalf("the applier's error %q differs from the codec's %q", errs[0], errs[1])
		}
	})
	t.Run("UnmarshalJSON beside DecodeJSON", func(t *testing.T) {
		reg := es.NewStandardEventRegistry("tally")
		if err := reg.RegisterEvent(Doubled{}); err != nil {
			t.Fatal(err)
		}
		s := es.StreamID{AggregateType: "DoubleTally", Key: "k"}
		rawAppend(t, backend, s, 0, "Doubled", `{"N":5}`)
		kind, err := es.NewKind[*DoubleTally](reg, store)
		if err != nil {
			t.Fatal(err)
		}
		a := &DoubleTally{}
		if err := kind.Bind(a, "k"); err != nil {
			t.Fatal(err)
		}
		if err := a.Refresh(ctx); err != nil || a.applied != 0 || a.Sum != 5 {
			t.Fatalf("%v: applied %d, sum %d; want 0 and 5", err, a.applied, a.Sum)
		}
	})
}
