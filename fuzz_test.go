package eventsourcing_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// FuzzDecodeRecord feeds arbitrary stored records to an aggregate: every
// input either applies or fails with ErrCorruptStream or ErrUnknownEventType,
// and never panics.
func FuzzDecodeRecord(f *testing.F) {
	f.Add("Deposited", []byte(`{"Amount":5}`), int64(1))
	f.Add("Deposited", []byte(`{"Amount":"5"}`), int64(1))
	f.Add("Withdrawn", []byte(`null`), int64(1))
	f.Add("Deposited", []byte(`{"Amount":1e400}`), int64(1))
	f.Add("Nope", []byte(`{}`), int64(1))
	f.Add("Deposited", []byte{0xff, 0x00}, int64(2))
	f.Add("KindsRecorded", []byte(`{"Kinds":{"Big":9223372036854775807,"Time":"2026-13-01T00:00:00Z"}}`), int64(1))
	reg := probe.NewRegistry()
	_ = reg.RegisterEvent(Deposited{}, Withdrawn{})
	f.Fuzz(func(t *testing.T, typ string, data []byte, seq int64) {
		stream := es.StreamID{AggregateType: "Account", Key: "k"}
		rec := es.Record{Stream: stream, Sequence: seq, EventType: typ, Data: data}
		a, err := newAccount("k", reg, es.NewStore(gappy{memory.NewBackend(), []es.Record{rec}}))
		if err != nil {
			t.Fatal(err)
		}
		err = a.Refresh(context.Background())
		switch {
		case err == nil:
			if a.SequenceNumber() != 1 {
				t.Fatalf("applied record %d but sequence is %d", seq, a.SequenceNumber())
			}
		case errors.Is(err, es.ErrCorruptStream), errors.Is(err, es.ErrUnknownEventType):
			if a.SequenceNumber() != 0 {
				t.Fatalf("failed record moved the sequence to %d", a.SequenceNumber())
			}
		default:
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

// FuzzRestoreSnapshot restores arbitrary snapshot bytes: the aggregate is
// either restored or reset to zero at sequence 0 with ErrInvalidSnapshot.
func FuzzRestoreSnapshot(f *testing.F) {
	f.Add([]byte(`{"Balance":20}`), int64(2))
	f.Add([]byte(`{"Balance":"x"}`), int64(2))
	f.Add([]byte(`{"Balance":9223372036854775808}`), int64(1))
	f.Add([]byte(`[`), int64(5))
	f.Add([]byte(``), int64(-1))
	reg := bankRegistry(f)
	f.Fuzz(func(t *testing.T, state []byte, seq int64) {
		r := &restoring{EventStore: es.NewStore(memory.NewBackend()), seq: seq, state: string(state)}
		a, _ := newAccount("k", reg, r)
		a.Balance = 99
		err := a.Refresh(context.Background())
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if r.err != nil {
			if !errors.Is(r.err, es.ErrInvalidSnapshot) {
				t.Fatalf("restore error of the wrong kind: %v", r.err)
			}
			if a.SequenceNumber() != 0 || (seq >= 0 && a.Balance != 0) {
				t.Fatalf("half-restored: balance %d sequence %d", a.Balance, a.SequenceNumber())
			}
		} else if seq > 0 && a.SequenceNumber() != seq {
			t.Fatalf("restored at %d, want %d", a.SequenceNumber(), seq)
		}
	})
}

// FuzzRegistryNames registers arbitrary names: each is accepted and looked
// up again exactly, or rejected with a registry error.
func FuzzRegistryNames(f *testing.F) {
	for _, s := range []string{"Deposited", "bank.deposited.v2", "", " ", "a b", "\x00", "é", strings.Repeat("n", 201), "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		reg := es.NewStandardEventRegistry("fuzz")
		_ = reg.RegisterEvent(Withdrawn{})
		err := reg.RegisterEventAs(name, Deposited{})
		switch {
		case err == nil:
			if got, ok := reg.Type(name); !ok || got != typeOf[Deposited]() {
				t.Fatalf("registered %q but lookup gives %v %v", name, got, ok)
			}
			if n, _ := reg.Name(typeOf[Deposited]()); n != name {
				t.Fatalf("name round trip: %q != %q", n, name)
			}
		case errors.Is(err, es.ErrInvalidEventName), errors.Is(err, es.ErrDuplicateEventName):
			if _, ok := reg.Name(typeOf[Deposited]()); ok {
				t.Fatalf("rejected %q but registered it", name)
			}
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	})
}

// FuzzStreamID checks that a valid stream's String form is unambiguous.
func FuzzStreamID(f *testing.F) {
	f.Add("Account", "alice")
	f.Add("A/B", "k")
	f.Add("Account", "a/b/c")
	f.Add("", "k")
	f.Fuzz(func(t *testing.T, typ, key string) {
		s := es.StreamID{AggregateType: typ, Key: key}
		if s.Validate() != nil {
			return
		}
		gotType, gotKey, _ := strings.Cut(s.String(), "/")
		if gotType != typ || gotKey != key {
			t.Fatalf("%q does not split back into %q and %q", s.String(), typ, key)
		}
	})
}
