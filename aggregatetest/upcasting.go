package aggregatetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

// RunUpcasting checks, on the event stores newStore returns (a store made
// by eventsourcing.NewStore, or a middleware stack over one), that events
// written by version 1 of an aggregate load into version 2 through the
// registry's upcasters: a field renamed and rescaled (a new schema version
// of the event), and an event type renamed and then versioned (a chain of
// two steps). Version 1 writes through the store, then version 2 loads,
// writes and reloads, with command IDs recognised across the versions.
// Both versions report a snapshot schema version (SnapshotVersion 1 and
// 2), so over the snapshot middleware the snapshots version 1 took must be
// ignored and the stream replayed with upcasting; a snapshot decoded into
// the other version's state would show as a wrong balance.
//
// newStore is called once per subtest and each store is closed at its
// end; the subtests use stream keys of their own, so the stores may share
// one database. Run it under -race, next to storetest.RunEventStore.
func RunUpcasting(t *testing.T, newStore func(t *testing.T) es.EventStore) {
	t.Helper()
	ctx := context.Background()
	open := func(t *testing.T) es.EventStore {
		s := newStore(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	v1, v2 := newV1Registry(), newV2Registry()
	mustV1 := func(t *testing.T, key string, store es.EventStore) *walletV1 {
		t.Helper()
		return newWalletV1(t, v1, key, store)
	}
	mustV2 := func(t *testing.T, key string, store es.EventStore) *walletV2 {
		t.Helper()
		return newWalletV2(t, v2, key, store)
	}

	t.Run("OldEventsLoadAsNew", func(t *testing.T) {
		s, k := open(t), upcastKey(t)
		old := mustV1(t, k, s)
		for _, c := range []any{v1Deposit{Amount: 5}, v1Charge{Amount: 1}, v1Deposit{Amount: 7}} {
			if err := old.Handle(ctx, c); err != nil {
				t.Fatalf("version 1 %T: %v", c, err)
			}
		}
		w := mustV2(t, k, s)
		if err := w.Refresh(ctx); err != nil {
			t.Fatalf("version 2 loading version 1 events: %v", err)
		}
		if w.Cents != 1100 || w.SequenceNumber() != 3 || w.Charges != 1 {
			t.Fatalf("version 2 loaded %d cents, %d charges at %d; want 1100, 1 at 3", w.Cents, w.Charges, w.SequenceNumber())
		}
		if err := w.Handle(ctx, v2Deposit{Cents: 250}); err != nil {
			t.Fatalf("version 2 command: %v", err)
		}
		fresh := mustV2(t, k, s)
		if err := fresh.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if fresh.Cents != 1350 || fresh.SequenceNumber() != 4 || strings.Join(fresh.Currencies, ",") != "EUR,EUR,USD" {
			t.Fatalf("a fresh version 2 loaded %d cents at %d in %v; want 1350 at 4 in EUR,EUR,USD", fresh.Cents, fresh.SequenceNumber(), fresh.Currencies)
		}
		// The store kept every event as written: old names and versions stay.
		rec := &typeRecorder{stream: fresh.StreamID()}
		if err := s.Refresh(ctx, rec); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if got := strings.Join(rec.types, ","); got != "Deposited,Fee,Deposited,Deposited@v2" {
			t.Fatalf("stored event types %s", got)
		}
	})

	t.Run("LongHistoryAcrossSnapshots", func(t *testing.T) {
		s, k := open(t), upcastKey(t)
		old := mustV1(t, k, s)
		var units int64
		for i := 1; i <= 120; i++ {
			var c any = v1Deposit{Amount: int64(i)}
			units += int64(i)
			if i%10 == 0 {
				c, units = v1Charge{Amount: 3}, units-int64(i)-3
			}
			if err := old.Handle(ctx, c); err != nil {
				t.Fatalf("version 1 command %d: %v", i, err)
			}
		}
		if old.Balance != units {
			t.Fatalf("version 1 balance %d, want %d", old.Balance, units)
		}
		for round := 0; round < 3; round++ { // loads, then loads again after version 2 commits (and snapshots)
			w := mustV2(t, k, s)
			if err := w.Refresh(ctx); err != nil {
				t.Fatalf("round %d: version 2 loading: %v", round, err)
			}
			want := units*100 + int64(round)*99
			if w.Cents != want || w.SequenceNumber() != int64(120+round) {
				t.Fatalf("round %d: version 2 holds %d cents at %d; want %d at %d (a snapshot of version 1 restored into version 2?)",
					round, w.Cents, w.SequenceNumber(), want, 120+round)
			}
			if err := w.Handle(ctx, v2Deposit{Cents: 99}); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	})

	t.Run("CommandIDsAcrossVersions", func(t *testing.T) {
		s, k := open(t), upcastKey(t)
		id := es.WithCommandID(ctx, "upcast-"+k)
		if err := mustV1(t, k, s).Handle(id, v1Deposit{Amount: 2}); err != nil {
			t.Fatal(err)
		}
		w := mustV2(t, k, s)
		if err := w.Handle(id, v2Deposit{Cents: 200}); err != nil {
			t.Fatalf("repeat on version 2: %v", err)
		}
		if w.Cents != 200 || w.SequenceNumber() != 1 {
			t.Fatalf("a command repeated on version 2 applied again: %d cents at %d", w.Cents, w.SequenceNumber())
		}
	})

	t.Run("FailingUpcasterStoresNothing", func(t *testing.T) {
		s, k := open(t), upcastKey(t)
		if err := mustV1(t, k, s).Handle(ctx, v1Deposit{Amount: -1}); err != nil { // version 2 refuses negative amounts
			t.Fatal(err)
		}
		w := mustV2(t, k, s)
		if err := w.Handle(ctx, v2Deposit{Cents: 1}); !errors.Is(err, es.ErrCorruptStream) {
			t.Fatalf("an event the upcaster refuses: got %v, want ErrCorruptStream", err)
		}
		rec := &typeRecorder{stream: w.StreamID()}
		if err := s.Refresh(ctx, rec); err != nil || len(rec.types) != 1 {
			t.Fatalf("after the refused load the stream holds %v (%v), want the 1 event", rec.types, err)
		}
	})
}

var upcastKeys atomic.Int64

func upcastKey(t *testing.T) string {
	return t.Name() + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatInt(upcastKeys.Add(1), 10)
}

// Version 1 of the wallet: whole units, and a fee event named "Fee".
type (
	v1Deposited struct{ Amount int64 }
	v1Fee       struct{ Amount int64 }
	v1Deposit   struct{ Amount int64 }
	v1Charge    struct{ Amount int64 }
)

type walletV1 struct {
	es.AggregateBase `json:"-"`
	Balance          int64
}

func (w *walletV1) SnapshotVersion() int { return 1 }
func (w *walletV1) HandleDeposit(c v1Deposit) ([]es.Event, error) {
	return []es.Event{v1Deposited(c)}, nil
}
func (w *walletV1) HandleCharge(c v1Charge) ([]es.Event, error) { return []es.Event{v1Fee(c)}, nil }
func (w *walletV1) ReplayDeposited(e v1Deposited)               { w.Balance += e.Amount }
func (w *walletV1) ReplayFee(e v1Fee)                           { w.Balance -= e.Amount }

func newV1Registry() *es.StandardEventRegistry {
	r := es.NewStandardEventRegistry("upcast-v1")
	if err := r.RegisterEventAs("Deposited", v1Deposited{}); err != nil {
		panic(err) // static: cannot fail
	}
	if err := r.RegisterEventAs("Fee", v1Fee{}); err != nil {
		panic(err)
	}
	return r
}

func newWalletV1(t *testing.T, reg es.EventRegistry, key string, store es.EventStore) *walletV1 {
	t.Helper()
	w := &walletV1{}
	w.Initialize(key, reg, store, func() any { return w })
	w.SetAggregateType("UpcastWallet")
	if err := w.AutomaticWireup(w); err != nil {
		t.Fatal(err)
	}
	return w
}

// Version 2: cents with a currency ("Deposited" version 2), and the fee
// renamed "Charge", then versioned in cents ("Charge" version 2).
type (
	v2Deposited struct {
		Cents    int64
		Currency string
	}
	v2Charge  struct{ Cents int64 }
	v2Deposit struct{ Cents int64 }
)

type walletV2 struct {
	es.AggregateBase `json:"-"`
	Cents            int64
	Charges          int
	Currencies       []string
}

func (w *walletV2) SnapshotVersion() int { return 2 }
func (w *walletV2) HandleDeposit(c v2Deposit) ([]es.Event, error) {
	return []es.Event{v2Deposited{Cents: c.Cents, Currency: "USD"}}, nil
}
func (w *walletV2) ReplayDeposited(e v2Deposited) {
	w.Cents += e.Cents
	w.Currencies = append(w.Currencies, e.Currency)
}
func (w *walletV2) ReplayCharge(e v2Charge) {
	w.Cents -= e.Cents
	w.Charges++
}

// toCents is the step of both events from version 1 to 2.
func toCents(currency string) es.UpcastFunc {
	return es.UpcastJSON(func(f map[string]json.RawMessage) error {
		var units int64
		if err := json.Unmarshal(f["Amount"], &units); err != nil {
			return fmt.Errorf("field Amount: %w", err)
		}
		if units < 0 {
			return fmt.Errorf("negative amount %d", units)
		}
		delete(f, "Amount")
		f["Cents"] = json.RawMessage(strconv.FormatInt(units*100, 10))
		if currency != "" {
			f["Currency"] = json.RawMessage(strconv.Quote(currency))
		}
		return nil
	})
}

func newV2Registry() *es.StandardEventRegistry {
	r := es.NewStandardEventRegistry("upcast-v2")
	for name, e := range map[string]es.Event{es.VersionedName("Deposited", 2): v2Deposited{}, es.VersionedName("Charge", 2): v2Charge{}} {
		if err := r.RegisterEventAs(name, e); err != nil {
			panic(err) // static
		}
	}
	if err := r.RegisterUpcasters(
		es.Upcaster{From: "Deposited", To: es.VersionedName("Deposited", 2), Func: toCents("EUR")},
		es.Upcaster{From: "Fee", To: "Charge"}, // renamed
		es.Upcaster{From: "Charge", To: es.VersionedName("Charge", 2), Func: toCents("")},
	); err != nil {
		panic(err)
	}
	return r
}

func newWalletV2(t *testing.T, reg es.EventRegistry, key string, store es.EventStore) *walletV2 {
	t.Helper()
	w := &walletV2{}
	w.Initialize(key, reg, store, func() any { return w })
	w.SetAggregateType("UpcastWallet")
	if err := w.AutomaticWireup(w); err != nil {
		t.Fatal(err)
	}
	return w
}

// typeRecorder is a Loader that keeps the stored type names.
type typeRecorder struct {
	stream es.StreamID
	seq    int64
	types  []string
}

func (r *typeRecorder) Stream() es.StreamID { return r.stream }
func (r *typeRecorder) Sequence() int64     { return r.seq }
func (r *typeRecorder) State() any          { return &struct{}{} }
func (r *typeRecorder) Apply(rec es.Record) error {
	if rec.Sequence != r.seq+1 {
		return &es.SequenceError{Stream: r.stream, Expected: r.seq + 1, Got: rec.Sequence}
	}
	r.seq = rec.Sequence
	r.types = append(r.types, rec.EventType)
	return nil
}
func (r *typeRecorder) Restore(int64, []byte, []string) error {
	r.seq, r.types = 0, nil
	return es.ErrInvalidSnapshot // it wants every record
}
