package eventsourcing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// Version 2 of a deposit: in cents, with a currency. Version 1 was stored
// as "Credited" {"Amount": whole units}; before that the event was named
// "MoneyIn".
type Credited struct {
	Cents    int64
	Currency string
}

// Wallet applies Credited.
type Wallet struct {
	es.AggregateBase `json:"-"`
	Cents            int64
	Currencies       []string
}

type Credit struct{ Cents int64 }

func (w *Wallet) HandleCredit(c Credit) ([]es.Event, error) {
	return []es.Event{Credited{Cents: c.Cents, Currency: "EUR"}}, nil
}

func (w *Wallet) ReplayCredited(e Credited) {
	w.Cents += e.Cents
	w.Currencies = append(w.Currencies, e.Currency)
}

func newWallet(key string, registry es.EventRegistry, store es.EventStore) (*Wallet, error) {
	w := &Wallet{}
	w.Initialize(key, registry, store, func() any { return w })
	return w, w.AutomaticWireup(w)
}

// unitsToCents is the v1 -> v2 step of Credited.
var unitsToCents = es.UpcastJSON(func(f map[string]json.RawMessage) error {
	var units int64
	if err := json.Unmarshal(f["Amount"], &units); err != nil {
		return fmt.Errorf("field Amount: %w", err)
	}
	delete(f, "Amount")
	f["Cents"] = json.RawMessage(strconv.FormatInt(units*100, 10))
	f["Currency"] = json.RawMessage(`"EUR"`)
	return nil
})

func walletRegistry(t testing.TB) *es.StandardEventRegistry {
	t.Helper()
	reg := es.NewStandardEventRegistry("wallet")
	if err := reg.RegisterEventAs(es.VersionedName("Credited", 2), Credited{}); err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterUpcasters(
		es.Upcaster{From: "MoneyIn", To: "Credited"}, // a rename: same data
		es.Upcaster{From: "Credited", To: es.VersionedName("Credited", 2), Func: unitsToCents},
	); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestVersionedName(t *testing.T) {
	for v, want := range map[int]string{-1: "E", 0: "E", 1: "E", 2: "E@v2", 10: "E@v10"} {
		if got := es.VersionedName("E", v); got != want {
			t.Errorf("VersionedName(E, %d) = %q, want %q", v, got, want)
		}
	}
}

func TestUpcastOnLoad(t *testing.T) {
	ctx := context.Background()
	back := memory.NewBackend()
	stream := es.StreamID{AggregateType: "Wallet", Key: "w"}
	rawAppend(t, back, stream, 0, "MoneyIn", `{"Amount":1}`)                          // old name, version 1
	rawAppend(t, back, stream, 1, "Credited", `{"Amount":92233720368547}`)            // version 1, beyond float64 precision once in cents
	rawAppend(t, back, stream, 2, "Credited@v2", `{"Cents":5,"Currency":"USD"}`)      // current
	rawAppend(t, back, stream, 3, "MoneyIn", `{"Amount":2,"Note":"kept as written"}`) // unknown fields survive the step, ignored by the type
	reg := walletRegistry(t)
	w, err := newWallet("w", reg, es.NewStore(back))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Refresh(ctx); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if want := int64(100 + 9223372036854700 + 5 + 200); w.Cents != want || w.SequenceNumber() != 4 {
		t.Fatalf("loaded %d cents at %d, want %d at 4", w.Cents, w.SequenceNumber(), want)
	}
	if got := strings.Join(w.Currencies, ","); got != "EUR,EUR,USD,EUR" {
		t.Fatalf("currencies %s", got)
	}
	// New events are stored in the current version.
	if err := w.Handle(ctx, Credit{Cents: 7}); err != nil {
		t.Fatal(err)
	}
	for rec, err := range back.Load(ctx, stream, 4) {
		if err != nil || rec.EventType != "Credited@v2" {
			t.Fatalf("new event stored as %q (%v), want Credited@v2", rec.EventType, err)
		}
	}
	// The same records through DecodeEvent, as a projection reads them.
	var got []string
	for rec, err := range back.Load(ctx, stream, 0) {
		if err != nil {
			t.Fatal(err)
		}
		e, err := es.DecodeEvent(reg, rec)
		if err != nil {
			t.Fatalf("DecodeEvent(%s): %v", rec.EventType, err)
		}
		got = append(got, fmt.Sprintf("%+v", e))
	}
	want := "{Cents:100 Currency:EUR} {Cents:9223372036854700 Currency:EUR} {Cents:5 Currency:USD} {Cents:200 Currency:EUR} {Cents:7 Currency:EUR}"
	if strings.Join(got, " ") != want {
		t.Fatalf("DecodeEvent:\n got  %s\n want %s", strings.Join(got, " "), want)
	}
}

func TestUpcastFailures(t *testing.T) {
	ctx := context.Background()
	stream := es.StreamID{AggregateType: "Wallet", Key: "w"}
	for name, tc := range map[string]struct {
		typ, data string
		want      error
	}{
		"step fails":             {"Credited", `{"Amount":"one"}`, es.ErrCorruptStream},
		"not an object":          {"MoneyIn", `[1]`, es.ErrCorruptStream},
		"null":                   {"Credited", `null`, es.ErrCorruptStream},
		"upcast does not decode": {"MoneyIn", `{"Amount":1e400}`, es.ErrCorruptStream},
		"unknown":                {"Debited", `{}`, es.ErrUnknownEventType},
	} {
		t.Run(name, func(t *testing.T) {
			back := memory.NewBackend()
			rawAppend(t, back, stream, 0, "Credited@v2", `{"Cents":1}`)
			rawAppend(t, back, stream, 1, tc.typ, tc.data)
			w, _ := newWallet("w", walletRegistry(t), es.NewStore(back))
			err := w.Refresh(ctx)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var re *es.RecordError
			if errors.As(err, &re) && re.Sequence != 2 {
				t.Fatalf("error names sequence %d: %v", re.Sequence, err)
			}
			if w.SequenceNumber() != 1 || w.Cents != 1 {
				t.Fatalf("after the failed load: %d cents at %d, want 1 at 1", w.Cents, w.SequenceNumber())
			}
			rec := es.Record{Stream: stream, Sequence: 2, EventType: tc.typ, Data: []byte(tc.data)}
			if _, err := es.DecodeEvent(walletRegistry(t), rec); !errors.Is(err, tc.want) {
				t.Fatalf("DecodeEvent: got %v, want %v", err, tc.want)
			}
		})
	}
}

// A chain that ends at a name no type has is an unknown event type, which
// a reader may skip.
func TestUpcastToUnknownName(t *testing.T) {
	ctx := context.Background()
	back := memory.NewBackend()
	stream := es.StreamID{AggregateType: "Wallet", Key: "w"}
	rawAppend(t, back, stream, 0, "Old", `{}`)
	rawAppend(t, back, stream, 1, "Credited@v2", `{"Cents":3}`)
	reg := walletRegistry(t)
	if err := reg.RegisterUpcasters(es.Upcaster{From: "Old", To: "Newer"}); err != nil {
		t.Fatal(err)
	}
	w, _ := newWallet("w", reg, es.NewStore(back))
	var ue *es.UnknownEventTypeError
	if err := w.Refresh(ctx); !errors.As(err, &ue) || ue.Type != "Newer" || ue.Sequence != 1 {
		t.Fatalf("got %v, want an unknown event type Newer at 1", err)
	}
	w, _ = newWallet("w", reg, es.NewStore(back))
	w.SetSkipUnknownEvents(true)
	if err := w.Refresh(ctx); err != nil || w.Cents != 3 || w.SequenceNumber() != 2 {
		t.Fatalf("skipping: %v, %d cents at %d", err, w.Cents, w.SequenceNumber())
	}
}

func TestRegisterUpcastersRefuses(t *testing.T) {
	step := func(from, to string) es.Upcaster { return es.Upcaster{From: from, To: to} }
	for name, tc := range map[string]struct {
		before, ups []es.Upcaster
		want        error
	}{
		"empty from":         {nil, []es.Upcaster{step("", "X")}, es.ErrInvalidEventName},
		"space in to":        {nil, []es.Upcaster{step("A", "X Y")}, es.ErrInvalidEventName},
		"to itself":          {nil, []es.Upcaster{step("A", "A")}, es.ErrInvalidUpcaster},
		"from a current":     {nil, []es.Upcaster{step("Credited@v2", "Z")}, es.ErrInvalidUpcaster},
		"two from one name":  {nil, []es.Upcaster{step("A", "B"), step("A", "C")}, es.ErrInvalidUpcaster},
		"again from MoneyIn": {nil, []es.Upcaster{step("MoneyIn", "Credited@v2")}, es.ErrInvalidUpcaster},
		"loop":               {nil, []es.Upcaster{step("A", "B"), step("B", "A")}, es.ErrInvalidUpcaster},
		"loop through old":   {[]es.Upcaster{step("X", "Y")}, []es.Upcaster{step("Y", "X")}, es.ErrInvalidUpcaster},
		"long loop":          {nil, []es.Upcaster{step("A", "B"), step("B", "C"), step("C", "D"), step("D", "B")}, es.ErrInvalidUpcaster},
	} {
		reg := walletRegistry(t)
		if err := reg.RegisterUpcasters(tc.before...); err != nil {
			t.Fatal(err)
		}
		err := reg.RegisterUpcasters(tc.ups...)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
		// All or nothing: none of the refused steps is in use.
		if got, _, _ := reg.Upcast("A", nil); got != "A" {
			t.Errorf("%s: a refused registration left a step from A to %s", name, got)
		}
		if got, _, _ := reg.Upcast("Y", nil); got != "Y" {
			t.Errorf("%s: a refused registration left a step from Y to %s", name, got)
		}
	}
	// A name that starts a chain cannot also name a type, and vice versa.
	reg := walletRegistry(t)
	type Legacy struct{ X int }
	if err := reg.RegisterEventAs("MoneyIn", Legacy{}); !errors.Is(err, es.ErrDuplicateEventName) {
		t.Fatalf("registering a type under an upcast name: got %v", err)
	}
	if _, ok := reg.Type("MoneyIn"); ok {
		t.Fatal("the refused type is registered")
	}
}

func TestUpcastChainOrder(t *testing.T) {
	reg := es.NewStandardEventRegistry("chain")
	appendStep := func(s string) es.UpcastFunc {
		return func(b []byte) ([]byte, error) { return append(append([]byte{}, b...), s...), nil }
	}
	// Registered newest first, in two calls: the order of registration
	// does not matter, the names do.
	if err := reg.RegisterUpcasters(es.Upcaster{From: "E@v2", To: "E@v3", Func: appendStep("3")}); err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterUpcasters(es.Upcaster{From: "E", To: "E@v2", Func: appendStep("2")}, es.Upcaster{From: "OldE", To: "E"}); err != nil {
		t.Fatal(err)
	}
	data := []byte("1")
	name, out, err := reg.Upcast("OldE", data)
	if err != nil || name != "E@v3" || string(out) != "123" || string(data) != "1" {
		t.Fatalf("Upcast(OldE) = %q %q %v (input now %q)", name, out, err, data)
	}
	if name, out, _ := reg.Upcast("E@v3", data); name != "E@v3" || string(out) != "1" {
		t.Fatalf("a current name was changed to %q %q", name, out)
	}
}

func TestUpcastJSON(t *testing.T) {
	rename := es.UpcastJSON(func(f map[string]json.RawMessage) error {
		f["B"] = f["A"]
		delete(f, "A")
		return nil
	})
	out, err := rename([]byte(`{"A":12345678901234567890,"C":[1,{"x":null}]}`))
	if err != nil || string(out) != `{"B":12345678901234567890,"C":[1,{"x":null}]}` {
		t.Fatalf("got %s, %v", out, err)
	}
	failing := es.UpcastJSON(func(map[string]json.RawMessage) error { return errors.New("no") })
	if _, err := failing([]byte(`{}`)); err == nil || err.Error() != "no" {
		t.Fatalf("the function's error: got %v", err)
	}
	for _, bad := range []string{``, `null`, `1`, `"s"`, `{`} {
		if _, err := rename([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	reg := walletRegistry(t)
	e, err := es.DecodeEvent(reg, es.Record{EventType: "Credited@v2", Data: []byte(`{"Cents":4,"Currency":"CHF"}`)})
	if err != nil || e != (Credited{Cents: 4, Currency: "CHF"}) {
		t.Fatalf("got %#v, %v", e, err)
	}
	if _, err := es.DecodeEvent(nil, es.Record{}); !errors.Is(err, es.ErrNotInitialized) {
		t.Fatalf("nil registry: %v", err)
	}
	// A registry without upcasting (not an EventUpcaster) still decodes.
	plain := plainRegistry{bankRegistry(t)}
	if e, err := es.DecodeEvent(plain, es.Record{EventType: "Deposited", Data: []byte(`{"Amount":3}`)}); err != nil || e != (Deposited{Amount: 3}) {
		t.Fatalf("plain registry: %#v, %v", e, err)
	}
	if _, err := es.DecodeEvent(plain, es.Record{EventType: "MoneyIn"}); !errors.Is(err, es.ErrUnknownEventType) {
		t.Fatalf("plain registry, unknown type: %v", err)
	}
}

// plainRegistry hides the StandardEventRegistry's Upcast method.
type plainRegistry struct{ es.EventRegistry }

// FuzzUpcastOnLoad loads arbitrary data stored under the old names: it
// either applies or fails with ErrCorruptStream, and never panics.
func FuzzUpcastOnLoad(f *testing.F) {
	f.Add("Credited", []byte(`{"Amount":5}`))
	f.Add("MoneyIn", []byte(`{"Amount":1e400}`))
	f.Add("Credited", []byte(`{"Amount":9223372036854775807}`))
	f.Add("MoneyIn", []byte(`{"Amount":"x"}`))
	f.Add("Credited", []byte(`[]`))
	f.Add("Credited", []byte{0xff})
	reg := walletRegistry(f)
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		stream := es.StreamID{AggregateType: "Wallet", Key: "k"}
		rec := es.Record{Stream: stream, Sequence: 1, EventType: typ, Data: data}
		w, err := newWallet("k", reg, es.NewStore(gappy{memory.NewBackend(), []es.Record{rec}}))
		if err != nil {
			t.Fatal(err)
		}
		switch err := w.Refresh(context.Background()); {
		case err == nil:
		case errors.Is(err, es.ErrCorruptStream), errors.Is(err, es.ErrUnknownEventType):
			if w.SequenceNumber() != 0 || w.Cents != 0 {
				t.Fatalf("a failed record changed the state: %d cents at %d", w.Cents, w.SequenceNumber())
			}
		default:
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}
