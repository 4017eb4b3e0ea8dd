package modernice

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/modernice/goes/codec"
	"github.com/modernice/goes/event"
	"github.com/modernice/goes/event/query"
)

// JSONStore is an event.Store that keeps each event's data encoded by a
// codec registry (encoding/json unless the registry says otherwise), and
// the rest of the event (ID, name, time, aggregate, version) as values,
// indexed by aggregate as a database store's index would: the same work this
// repository's memory backend does for each event. A query naming one
// aggregate reads only that aggregate's events; any other query tests every
// event. It is safe for concurrent use.
type JSONStore struct {
	enc *codec.Registry

	mu      sync.RWMutex
	streams map[streamKey][]record // records[i] has version i+1
	loose   []record               // events of no aggregate
	ids     map[uuid.UUID]struct{}
}

type streamKey struct {
	name string
	id   uuid.UUID
}

type record struct {
	id      uuid.UUID
	name    string
	time    time.Time
	data    []byte
	agg     streamKey
	version int
}

// ErrVersionConflict reports an insert of an aggregate version that is stored
// already (a concurrent writer won).
var ErrVersionConflict = errors.New("aggregate version already exists")

// NewJSONStore returns an empty JSONStore encoding with enc.
func NewJSONStore(enc *codec.Registry) *JSONStore {
	return &JSONStore{enc: enc, streams: map[streamKey][]record{}, ids: map[uuid.UUID]struct{}{}}
}

// Insert stores events atomically: all or none. An event whose ID is stored
// already fails the insert, and so does an aggregate event whose version is
// not the one after its aggregate's last (ErrVersionConflict if it is
// stored already).
func (s *JSONStore) Insert(_ context.Context, events ...event.Event) error {
	recs := make([]record, len(events))
	for i, evt := range events {
		b, err := s.enc.Marshal(evt.Data())
		if err != nil {
			return fmt.Errorf("marshal %q event data: %w", evt.Name(), err)
		}
		id, name, v := evt.Aggregate()
		recs[i] = record{id: evt.ID(), name: evt.Name(), time: evt.Time(), data: b, agg: streamKey{name, id}, version: v}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[streamKey]int{} // the next version expected per aggregate in this batch
	for _, r := range recs {
		if _, dup := s.ids[r.id]; dup {
			return fmt.Errorf("%s:%s: duplicate event", r.name, r.id)
		}
		if !r.aggregated() {
			continue
		}
		want, ok := next[r.agg]
		if !ok {
			want = len(s.streams[r.agg]) + 1
		}
		switch {
		case r.version < want:
			return fmt.Errorf("%s:%s v%d of %q aggregate %s: %w", r.name, r.id, r.version, r.agg.name, r.agg.id, ErrVersionConflict)
		case r.version > want:
			return fmt.Errorf("%s:%s v%d of %q aggregate %s: version %d expected", r.name, r.id, r.version, r.agg.name, r.agg.id, want)
		}
		next[r.agg] = want + 1
	}
	for _, r := range recs {
		s.ids[r.id] = struct{}{}
		if r.aggregated() {
			s.streams[r.agg] = append(s.streams[r.agg], r)
		} else {
			s.loose = append(s.loose, r)
		}
	}
	return nil
}

func (r record) aggregated() bool { return r.agg.name != "" && r.agg.id != uuid.Nil && r.version > 0 }

// Find returns the event with the given ID.
func (s *JSONStore) Find(_ context.Context, id uuid.UUID) (event.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.ids[id]; !ok {
		return nil, fmt.Errorf("event %s not found", id)
	}
	for _, recs := range s.streams {
		for _, r := range recs {
			if r.id == id {
				return s.decode(r)
			}
		}
	}
	for _, r := range s.loose {
		if r.id == id {
			return s.decode(r)
		}
	}
	return nil, fmt.Errorf("event %s not found", id)
}

func (s *JSONStore) decode(r record) (event.Event, error) {
	data, err := s.enc.Unmarshal(r.data, r.name)
	if err != nil {
		return nil, fmt.Errorf("unmarshal %q event data: %w", r.name, err)
	}
	// A literal rather than event.New, which would draw a new random ID
	// only for it to be replaced by the stored one.
	d := event.Data[any]{ID: r.id, Name: r.name, Time: r.time, Data: data}
	if r.aggregated() {
		d.AggregateName, d.AggregateID, d.AggregateVersion = r.agg.name, r.agg.id, r.version
	}
	return event.Evt[any]{D: d}, nil
}

// Query decodes the events that match q, sorts them as q asks, and streams
// them on the returned channel, as the library's own stores do.
func (s *JSONStore) Query(ctx context.Context, q event.Query) (<-chan event.Event, <-chan error, error) {
	var candidates [][]record
	one, single := oneAggregate(q)
	s.mu.RLock()
	if single {
		candidates = append(candidates, s.streams[one]) // append-only: the prefix stays valid
	} else {
		for _, recs := range s.streams {
			candidates = append(candidates, recs)
		}
		candidates = append(candidates, s.loose)
	}
	s.mu.RUnlock()

	var events []event.Event
	for _, recs := range candidates {
		for _, r := range recs {
			evt, err := s.decode(r)
			if err != nil {
				return nil, nil, err
			}
			if query.Test(q, evt) {
				events = append(events, evt)
			}
		}
	}
	if !single || !inVersionOrder(q.Sortings()) {
		events = event.SortMulti(events, q.Sortings()...)
	}

	out := make(chan event.Event)
	errs := make(chan error)
	go func() {
		defer close(errs)
		defer close(out)
		for _, evt := range events {
			select {
			case <-ctx.Done():
				return
			case out <- evt:
			}
		}
	}()
	return out, errs, nil
}

// oneAggregate reports the aggregate q is limited to, if exactly one.
func oneAggregate(q event.Query) (streamKey, bool) {
	if refs := q.Aggregates(); len(refs) == 1 && len(q.AggregateNames()) == 0 && len(q.AggregateIDs()) == 0 {
		return streamKey{refs[0].Name, refs[0].ID}, true
	}
	names, ids := q.AggregateNames(), q.AggregateIDs()
	if len(q.Aggregates()) == 0 && len(names) == 1 && len(ids) == 1 {
		return streamKey{names[0], ids[0]}, true
	}
	return streamKey{}, false
}

// inVersionOrder reports whether sorts keep one aggregate's events in
// stored order.
func inVersionOrder(sorts []event.SortOptions) bool {
	for _, o := range sorts {
		if o.Sort == event.SortAggregateVersion && o.Dir == event.SortAsc {
			return true
		}
		if o.Sort != event.SortAggregateName && o.Sort != event.SortAggregateID {
			return false
		}
	}
	return true
}

// Delete removes the given events.
func (s *JSONStore) Delete(_ context.Context, events ...event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	gone := map[uuid.UUID]bool{}
	for _, evt := range events {
		if _, ok := s.ids[evt.ID()]; ok {
			gone[evt.ID()] = true
			delete(s.ids, evt.ID())
		}
	}
	keep := func(recs []record) []record {
		out := recs[:0:0]
		for _, r := range recs {
			if !gone[r.id] {
				out = append(out, r)
			}
		}
		return out
	}
	for k, recs := range s.streams {
		s.streams[k] = keep(recs)
	}
	s.loose = keep(s.loose)
	return nil
}

// data returns the stored bytes of the aggregate's events.
func (s *JSONStore) data(name string, id uuid.UUID) [][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	recs := s.streams[streamKey{name, id}]
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[i] = r.data
	}
	return out
}
