package looplab

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"time"

	eh "github.com/looplab/eventhorizon"
	"github.com/looplab/eventhorizon/uuid"
)

// JSONStore is an eh.EventStore that keeps each event's data encoded with
// encoding/json, and the rest of the event (type, time, aggregate, version,
// metadata) as values, one slice of records per aggregate: the same work
// this repository's memory backend does for each event. It is safe for
// concurrent use.
type JSONStore struct {
	mu      sync.RWMutex
	streams map[uuid.UUID]*jsonStream
}

type jsonStream struct {
	aggType eh.AggregateType
	records []jsonRecord // append-only; records[i] has version i+1
}

type jsonRecord struct {
	typ      eh.EventType
	data     []byte // nil: the event had no data
	time     time.Time
	metadata map[string]any
}

// NewJSONStore returns an empty JSONStore.
func NewJSONStore() *JSONStore { return &JSONStore{streams: map[uuid.UUID]*jsonStream{}} }

// Save appends events, which must belong to one aggregate and carry the
// versions after originalVersion, if the aggregate's stored version is
// originalVersion; otherwise it fails with eh.ErrEventConflictFromOtherSave.
func (s *JSONStore) Save(_ context.Context, events []eh.Event, originalVersion int) error {
	if len(events) == 0 {
		return &eh.EventStoreError{Err: eh.ErrMissingEvents, Op: eh.EventStoreOpSave}
	}
	id, at := events[0].AggregateID(), events[0].AggregateType()
	fail := func(err error) error {
		return &eh.EventStoreError{Err: err, Op: eh.EventStoreOpSave, AggregateType: at, AggregateID: id,
			AggregateVersion: originalVersion, Events: events}
	}
	records := make([]jsonRecord, len(events))
	for i, e := range events {
		switch {
		case e.AggregateID() != id:
			return fail(eh.ErrMismatchedEventAggregateIDs)
		case e.AggregateType() != at:
			return fail(eh.ErrMismatchedEventAggregateTypes)
		case e.Version() != originalVersion+i+1:
			return fail(eh.ErrIncorrectEventVersion)
		}
		r := jsonRecord{typ: e.EventType(), time: e.Timestamp(), metadata: maps.Clone(e.Metadata())}
		if d := e.Data(); d != nil {
			b, err := json.Marshal(d)
			if err != nil {
				return fail(fmt.Errorf("encoding %s: %w", e.EventType(), err))
			}
			r.data = b
		}
		records[i] = r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[id]
	if st == nil {
		st = &jsonStream{aggType: at}
		s.streams[id] = st
	}
	if len(st.records) != originalVersion {
		return fail(eh.ErrEventConflictFromOtherSave)
	}
	st.records = append(st.records, records...)
	return nil
}

// Load loads every event of the aggregate.
func (s *JSONStore) Load(ctx context.Context, id uuid.UUID) ([]eh.Event, error) {
	return s.LoadFrom(ctx, id, 1)
}

// LoadFrom loads the events of the aggregate from version on, decoding their
// data into the types registered with eh.RegisterEventData. An aggregate
// without events fails with eh.ErrAggregateNotFound, as the library's
// stores do.
func (s *JSONStore) LoadFrom(_ context.Context, id uuid.UUID, version int) ([]eh.Event, error) {
	s.mu.RLock()
	st := s.streams[id]
	var records []jsonRecord
	var at eh.AggregateType
	if st != nil {
		records, at = st.records, st.aggType // append-only: the prefix stays valid
	}
	s.mu.RUnlock()
	if len(records) == 0 {
		return nil, &eh.EventStoreError{Err: eh.ErrAggregateNotFound, Op: eh.EventStoreOpLoad, AggregateID: id}
	}
	if version < 1 {
		version = 1
	}
	if version > len(records) {
		return nil, nil
	}
	out := make([]eh.Event, 0, len(records)-version+1)
	for i := version - 1; i < len(records); i++ {
		r := records[i]
		var data eh.EventData
		if r.data != nil {
			d, err := eh.CreateEventData(r.typ)
			if err != nil {
				return nil, &eh.EventStoreError{Err: err, Op: eh.EventStoreOpLoad, AggregateType: at, AggregateID: id, AggregateVersion: i + 1}
			}
			if err := json.Unmarshal(r.data, d); err != nil {
				return nil, &eh.EventStoreError{Err: fmt.Errorf("decoding %s: %w", r.typ, err), Op: eh.EventStoreOpLoad,
					AggregateType: at, AggregateID: id, AggregateVersion: i + 1}
			}
			data = d
		}
		out = append(out, eh.NewEvent(r.typ, data, r.time, eh.ForAggregate(at, id, i+1), eh.WithMetadata(maps.Clone(r.metadata))))
	}
	return out, nil
}

// Close does nothing.
func (s *JSONStore) Close() error { return nil }

// data returns the stored bytes of the aggregate's events.
func (s *JSONStore) data(id uuid.UUID) [][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.streams[id]
	if st == nil {
		return nil
	}
	out := make([][]byte, len(st.records))
	for i, r := range st.records {
		out[i] = r.data
	}
	return out
}
