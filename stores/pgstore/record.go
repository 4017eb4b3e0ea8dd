package pgstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"time"
	"unicode/utf8"

	"github.com/aggregatekit/eventsourcing/backend"
)

// splitTime returns t as PostgreSQL's timestamptz keeps it (microseconds)
// and the nanoseconds that it drops (0 to 999).
func splitTime(t time.Time) (time.Time, int16) {
	return t.Truncate(time.Microsecond), int16(t.Nanosecond() % 1000)
}

// joinTime is the inverse of splitTime, in UTC. It refuses what splitTime
// never produces.
func joinTime(ts time.Time, ns int16) (time.Time, error) {
	if ns < 0 || ns > 999 {
		return time.Time{}, fmt.Errorf("time_ns %d is outside 0..999", ns)
	}
	t := ts.UTC().Add(time.Duration(ns))
	if t.Before(backend.MinTime) || t.After(backend.MaxTime) {
		return time.Time{}, fmt.Errorf("time %v is outside years 1 to 9999", t)
	}
	return t, nil
}

// encodeMetadata returns the headers as a JSON object (keys sorted), or
// nil for none. ValidMetadata has checked that keys and values are UTF-8,
// so the encoding is exact; it is stored as bytea rather than jsonb because
// jsonb refuses the NUL character, which a header may hold.
func encodeMetadata(md backend.Metadata) ([]byte, error) {
	if len(md) == 0 {
		return nil, nil
	}
	return json.Marshal(map[string]string(md))
}

// decodeMetadata is the inverse of encodeMetadata; it refuses anything but
// a JSON object of UTF-8 strings.
func decodeMetadata(b []byte) (backend.Metadata, error) {
	if b == nil {
		return nil, nil
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("metadata is not UTF-8")
	}
	var md map[string]string
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("metadata is not a JSON object of strings: %w", err)
	}
	if md == nil { // the JSON literal null
		return nil, fmt.Errorf("metadata is JSON null")
	}
	return md, nil
}

// metadataEncoder encodes the metadata of a commit's records, encoding a
// map equal to the previous record's only once (the events of one commit
// usually share their headers).
type metadataEncoder struct {
	prev    backend.Metadata
	prevEnc []byte
	started bool
}

func (e *metadataEncoder) encode(md backend.Metadata) ([]byte, error) {
	if e.started && maps.Equal(md, e.prev) {
		return e.prevEnc, nil
	}
	enc, err := encodeMetadata(md)
	if err != nil {
		return nil, err
	}
	e.prev, e.prevEnc, e.started = md, enc, true
	return enc, nil
}

// metadataDecoder decodes rows' metadata, reusing the map of the previous
// row when the bytes are the same (records are read-only for callers, so
// the events of one commit may share one map).
type metadataDecoder struct {
	prevRaw []byte
	prev    backend.Metadata
	started bool
}

func (d *metadataDecoder) decode(raw []byte) (backend.Metadata, error) {
	if d.started && bytes.Equal(raw, d.prevRaw) && (raw == nil) == (d.prevRaw == nil) {
		return d.prev, nil
	}
	md, err := decodeMetadata(raw)
	if err != nil {
		return nil, err
	}
	d.prevRaw, d.prev, d.started = raw, md, true
	return md, nil
}
