package publish_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
)

type Opened struct{ N int }
type Closed struct{ N int }

func msg(seq int64, typ string, ev es.Event) publish.Message {
	return publish.Message{
		Record: es.Record{Stream: es.StreamID{AggregateType: "T", Key: "k"}, Sequence: seq, EventType: typ},
		Event:  ev,
	}
}

func TestBusDispatch(t *testing.T) {
	var bus publish.Bus // the zero value is ready
	var mu sync.Mutex
	var trace []string
	rec := func(s string) {
		mu.Lock()
		trace = append(trace, s)
		mu.Unlock()
	}
	publish.On(&bus, func(_ context.Context, e Opened, r es.Record) error {
		rec(fmt.Sprintf("On[Opened] %d@%d", e.N, r.Sequence))
		return nil
	})
	publish.On(&bus, func(_ context.Context, e *Closed, r es.Record) error {
		rec(fmt.Sprintf("On[*Closed] %d@%d", e.N, r.Sequence))
		return nil
	})
	bus.Subscribe("Closed", func(_ context.Context, m publish.Message) error {
		rec(fmt.Sprintf("Subscribe(Closed) @%d", m.Record.Sequence))
		return nil
	})
	unsubAll := bus.SubscribeAll(func(_ context.Context, m publish.Message) error {
		rec(fmt.Sprintf("All %s@%d", m.Record.EventType, m.Record.Sequence))
		return nil
	})
	msgs := []publish.Message{
		msg(1, "Opened", Opened{1}),
		msg(2, "Opened", &Opened{2}), // raised as a pointer
		msg(3, "Closed", Closed{3}),
		msg(4, "Closed", &Closed{4}),
		msg(5, "Other", "something else"),
	}
	if err := bus.Publish(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"On[Opened] 1@1", "All Opened@1",
		"On[Opened] 2@2", "All Opened@2",
		"On[*Closed] 3@3", "Subscribe(Closed) @3", "All Closed@3",
		"On[*Closed] 4@4", "Subscribe(Closed) @4", "All Closed@4",
		"All Other@5",
	}
	if !slices.Equal(trace, want) {
		t.Fatalf("dispatch:\n got  %q\n want %q", trace, want)
	}
	trace = nil
	unsubAll()
	unsubAll() // harmless
	if err := bus.Publish(ctx, msgs[4:]); err != nil || len(trace) != 0 {
		t.Fatalf("after unsubscribing: %v, %q", err, trace)
	}
	var nilBus *publish.Bus
	if err := nilBus.Publish(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if unsub := publish.On[Opened](nil, nil); unsub == nil {
		t.Fatal("nil unsubscribe")
	}
}

func TestBusFailingHandlers(t *testing.T) {
	bus := publish.NewBus()
	var good, bad []int64
	errBad := errors.New("bad")
	bus.SubscribeAll(func(_ context.Context, m publish.Message) error {
		if m.Record.Sequence == 2 {
			return errBad
		}
		bad = append(bad, m.Record.Sequence)
		return nil
	})
	bus.Subscribe("Closed", func(_ context.Context, m publish.Message) error { panic("kaboom") })
	bus.SubscribeAll(func(_ context.Context, m publish.Message) error {
		good = append(good, m.Record.Sequence)
		return nil
	})
	msgs := []publish.Message{msg(1, "Opened", Opened{}), msg(2, "Opened", Opened{}), msg(3, "Opened", Opened{}), msg(4, "Closed", Closed{})}
	err := bus.Publish(ctx, msgs)
	var perr *publish.Error
	if !errors.As(err, &perr) || !errors.Is(err, errBad) || !errors.Is(err, publish.ErrNotPublished) {
		t.Fatalf("got %v", err)
	}
	if !slices.Equal(seqs(perr.Messages), []int64{2, 3, 4}) {
		t.Fatalf("undelivered %v, want 2 3 4", seqs(perr.Messages))
	}
	if !strings.Contains(err.Error(), "panicked: kaboom") {
		t.Fatalf("panic not reported: %v", err)
	}
	if !slices.Equal(bad, []int64{1}) || !slices.Equal(good, []int64{1, 2, 3, 4}) {
		t.Fatalf("failing handler got %v, healthy %v", bad, good)
	}
}

func TestBusStopsWhenContextDone(t *testing.T) {
	bus := publish.NewBus()
	cctx, cancel := context.WithCancel(ctx)
	var got []int64
	bus.SubscribeAll(func(_ context.Context, m publish.Message) error {
		got = append(got, m.Record.Sequence)
		cancel()
		return nil
	})
	err := bus.Publish(cctx, []publish.Message{msg(1, "Opened", Opened{}), msg(2, "Opened", Opened{})})
	var perr *publish.Error
	if !errors.As(err, &perr) || !errors.Is(err, context.Canceled) || !slices.Equal(seqs(perr.Messages), []int64{2}) {
		t.Fatalf("got %v", err)
	}
	if !slices.Equal(got, []int64{1}) {
		t.Fatalf("delivered %v", got)
	}
}

func TestBusConcurrentUse(t *testing.T) {
	bus := publish.NewBus()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				unsub := publish.On(bus, func(context.Context, Opened, es.Record) error { return nil })
				unsub()
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				if err := bus.Publish(ctx, []publish.Message{msg(int64(j), "Opened", Opened{j})}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

type numbered interface{ Num() int }

func (o Opened) Num() int { return o.N }

func TestBusOnInterface(t *testing.T) {
	bus := publish.NewBus()
	var got []int
	publish.On(bus, func(_ context.Context, e numbered, _ es.Record) error {
		got = append(got, e.Num())
		return nil
	})
	msgs := []publish.Message{msg(1, "Opened", Opened{1}), msg(2, "Closed", Closed{2}), msg(3, "Opened", &Opened{3}), msg(4, "Nil", nil)}
	if err := bus.Publish(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("got %v", got)
	}
}
