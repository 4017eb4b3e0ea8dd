package publish

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	es "github.com/aggregatekit/eventsourcing"
)

// Handler receives one published event.
type Handler func(ctx context.Context, m Message) error

// Bus is an in-process Publisher for tests and single-process applications:
// Publish calls the subscribed handlers synchronously, on the publishing
// goroutine, message by message in order and, for each message, handler by
// handler in the order they subscribed.
//
// A handler that returns an error (or panics: the panic is recovered and
// becomes the error) receives no further messages of that Publish call, so
// it never sees an event after one it failed on; the other handlers carry
// on. Publish then returns an *Error listing every message that did not
// reach all its handlers, joining the handlers' errors. Publish stops early,
// with the remaining messages unpublished, if ctx is done.
//
// A Bus is safe for concurrent use: handlers may be added and removed while
// Publish runs (a running Publish keeps the handlers it started with), and
// Publish may run concurrently, so handlers must be safe for concurrent use
// too. Handlers may publish or commit (for instance, issue a command in
// reaction to an event). The zero value is an empty Bus ready to use.
type Bus struct {
	mu   sync.Mutex                      // serialises changes to subs
	subs atomic.Pointer[[]*subscription] // copy on write
}

type subscription struct {
	all       bool         // every event
	eventType string       // by stored type name, if not empty
	goType    reflect.Type // by Go type (non-pointer), if not nil
	handler   Handler
}

// NewBus returns an empty Bus.
func NewBus() *Bus { return &Bus{} }

// Subscribe calls h for every event whose stored type name (Record.EventType)
// is eventType. It returns a function that removes the subscription; calling
// it more than once is harmless. A nil h subscribes nothing.
func (b *Bus) Subscribe(eventType string, h Handler) (unsubscribe func()) {
	return b.add(&subscription{eventType: eventType, handler: h})
}

// SubscribeAll calls h for every event. It returns a function that removes
// the subscription. A nil h subscribes nothing.
func (b *Bus) SubscribeAll(h Handler) (unsubscribe func()) {
	return b.add(&subscription{all: true, handler: h})
}

// On subscribes h to the events of Go type E on b, whether they were raised
// as E or as *E: h receives a value of type E (if E is a pointer type,
// events raised as values are passed by address). If E is an interface type,
// h receives every event that implements it. On returns a function that
// removes the subscription. A nil b or h subscribes nothing.
func On[E any](b *Bus, h func(ctx context.Context, event E, rec es.Record) error) (unsubscribe func()) {
	if b == nil || h == nil {
		return func() {}
	}
	t := reflect.TypeFor[E]()
	base := t
	if base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	return b.add(&subscription{goType: base, handler: func(ctx context.Context, m Message) error {
		switch v := m.Event.(type) {
		case E:
			return h(ctx, v, m.Record)
		case *E:
			if v != nil {
				return h(ctx, *v, m.Record)
			}
		}
		// E is *T and the event was raised as a T.
		if rv := reflect.ValueOf(m.Event); t.Kind() == reflect.Pointer && rv.IsValid() && rv.Type() == base {
			p := reflect.New(base)
			p.Elem().Set(rv)
			return h(ctx, p.Interface().(E), m.Record)
		}
		return fmt.Errorf("publish: event %s at sequence %d of %s is a nil %T", m.Record.EventType, m.Record.Sequence, m.Record.Stream, m.Event)
	}})
}

func (b *Bus) add(s *subscription) func() {
	if b == nil || s.handler == nil {
		return func() {}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var cur []*subscription
	if p := b.subs.Load(); p != nil {
		cur = *p
	}
	next := append(slices.Clip(cur), s)
	b.subs.Store(&next)
	var once sync.Once
	return func() { once.Do(func() { b.remove(s) }) }
}

func (b *Bus) remove(s *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.subs.Load()
	if p == nil {
		return
	}
	next := slices.DeleteFunc(slices.Clone(*p), func(x *subscription) bool { return x == s })
	b.subs.Store(&next)
}

func (s *subscription) matches(m *Message, t reflect.Type) bool {
	switch {
	case s.all:
		return true
	case s.goType != nil && s.goType.Kind() == reflect.Interface:
		return m.Event != nil && reflect.TypeOf(m.Event).Implements(s.goType)
	case s.goType != nil:
		return t == s.goType
	default:
		return m.Record.EventType == s.eventType
	}
}

// Publish delivers msgs to the subscribed handlers; see Bus. A nil Bus
// delivers nothing and returns nil.
func (b *Bus) Publish(ctx context.Context, msgs []Message) error {
	if b == nil {
		return nil
	}
	p := b.subs.Load()
	if p == nil || len(*p) == 0 {
		return nil
	}
	subs := *p
	var (
		failed       []bool // per subscription: failed earlier in this call
		errs         []error
		undelivered  []Message
		cancelledErr error
	)
	for i := range msgs {
		m := &msgs[i]
		if cancelledErr == nil {
			cancelledErr = ctx.Err()
		}
		if cancelledErr != nil {
			undelivered = append(undelivered, *m)
			continue
		}
		t := reflect.TypeOf(m.Event)
		if t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		ok := true
		for j, s := range subs {
			if !s.matches(m, t) {
				continue
			}
			if failed != nil && failed[j] {
				ok = false
				continue
			}
			if err := call(ctx, s.handler, m); err != nil {
				if failed == nil {
					failed = make([]bool, len(subs))
				}
				failed[j] = true
				ok = false
				errs = append(errs, fmt.Errorf("handler %d on %s sequence %d (%s): %w", j+1, m.Record.Stream, m.Record.Sequence, m.Record.EventType, err))
			}
		}
		if !ok {
			undelivered = append(undelivered, *m)
		}
	}
	if cancelledErr != nil {
		errs = append(errs, cancelledErr)
	}
	if len(undelivered) == 0 {
		return nil
	}
	return &Error{Messages: undelivered, Err: errors.Join(errs...)}
}

func call(ctx context.Context, h Handler, m *Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("publish: handler panicked: %v", r)
		}
	}()
	return h(ctx, *m)
}
