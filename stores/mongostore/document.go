package mongostore

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Field names of the stored documents; the package documentation describes
// the schema.
const (
	fID        = "_id"
	fAggregate = "aggregate"
	fKey       = "key"
	fFirst     = "first"
	fLast      = "last"
	fCommitID  = "cid"
	fPending   = "pending"
	fTime      = "time"
	fNanos     = "ns"
	fMeta      = "meta"
	fEvents    = "events"
	fType      = "type"
	fData      = "data"
	fMetaKey   = "k"
	fMetaValue = "v"
	fSequence  = "seq"
	fVersion   = "version"
	fState     = "state"
)

// docID returns the _id of the commit document of stream ending at seq, or
// of its snapshot at seq: "<aggregate type>/<key>/<seq>", seq as 19 decimal
// digits, so that the byte order of the ids of one stream is the numeric
// order of seq. The id is unambiguous because an aggregate type cannot
// contain '/' and seq is digits only. Callers pass 0 <= seq.
func docID(stream backend.StreamID, seq int64) string {
	const width = 19 // digits of math.MaxInt64
	var digits [width]byte
	for i := width - 1; i >= 0; i-- {
		digits[i] = byte('0' + seq%10)
		seq /= 10
	}
	return stream.AggregateType + "/" + stream.Key + "/" + string(digits[:])
}

// idRange returns a filter matching the documents of stream whose _id (see
// docID) lies between those of low and high, bounds included or not by the
// operators lowOp and highOp ("$gt", "$gte", "$lt", "$lte"), so that the _id
// index serves it. Another stream's key may extend this one's with
// "/<digits>", so a range of _id alone could match its documents too: the
// filter also requires the stream's fields.
func idRange(stream backend.StreamID, lowOp string, low int64, highOp string, high int64) bson.D {
	return bson.D{
		{Key: fID, Value: bson.D{{Key: lowOp, Value: docID(stream, low)}, {Key: highOp, Value: docID(stream, high)}}},
		{Key: fAggregate, Value: stream.AggregateType},
		{Key: fKey, Value: stream.Key},
	}
}

// commitDoc is the stored form of one commit (see the package documentation).
type commitDoc struct {
	ID        string        `bson:"_id"`
	Aggregate string        `bson:"aggregate"`
	Key       string        `bson:"key"`
	First     int64         `bson:"first"`
	Last      int64         `bson:"last"`
	CommitID  string        `bson:"cid"`
	Pending   int64         `bson:"pending,omitempty"`
	Time      bson.DateTime `bson:"time"`
	Nanos     int32         `bson:"ns"`
	Meta      []metaPair    `bson:"meta,omitempty"`
	Events    []eventDoc    `bson:"events"`
}

// eventDoc is one event of a commit. Time, Nanos and Meta are set only on
// an event whose timestamp or metadata differ from the commit's.
type eventDoc struct {
	Type  string         `bson:"type"`
	Data  []byte         `bson:"data"`
	Time  *bson.DateTime `bson:"time,omitempty"`
	Nanos *int32         `bson:"ns,omitempty"`
	Meta  *[]metaPair    `bson:"meta,omitempty"`
}

// metaPair is one metadata header. Metadata is stored as an array of pairs,
// not as a sub-document, because a header name may contain '.' or start
// with '$', which servers refuse in field names.
type metaPair struct {
	K string `bson:"k"`
	V string `bson:"v"`
}

// splitTime returns t as a BSON datetime (milliseconds since the Unix epoch)
// and the nanoseconds within that millisecond, so that no precision is lost.
func splitTime(t time.Time) (bson.DateTime, int32) {
	return bson.DateTime(t.UnixMilli()), int32(t.Nanosecond() % int(time.Millisecond))
}

func joinTime(ms int64, ns int32) time.Time {
	return time.UnixMilli(ms).Add(time.Duration(ns)).UTC()
}

func metaPairs(md backend.Metadata) []metaPair {
	if len(md) == 0 {
		return nil
	}
	pairs := make([]metaPair, 0, len(md))
	for _, k := range slices.Sorted(maps.Keys(md)) {
		pairs = append(pairs, metaPair{K: k, V: md[k]})
	}
	return pairs
}

// encodeCommit returns the BSON document storing c, which CheckAppend has
// validated and which is not empty, with the pending marker if marker is
// not 0.
func encodeCommit(c backend.Commit, marker int64) ([]byte, error) {
	stream, records := c.Stream, c.Records
	head := records[0]
	doc := commitDoc{
		ID:        docID(stream, c.Last()),
		Aggregate: stream.AggregateType,
		Key:       stream.Key,
		First:     c.First(),
		Last:      c.Last(),
		CommitID:  c.ID,
		Pending:   marker,
		Meta:      metaPairs(head.Metadata),
		Events:    make([]eventDoc, len(records)),
	}
	doc.Time, doc.Nanos = splitTime(head.Timestamp)
	for i, r := range records {
		ev := eventDoc{Type: r.EventType, Data: r.Data}
		if ev.Data == nil {
			ev.Data = []byte{}
		}
		if !r.Timestamp.Equal(head.Timestamp) {
			ms, ns := splitTime(r.Timestamp)
			ev.Time, ev.Nanos = &ms, &ns
		}
		if !maps.Equal(r.Metadata, head.Metadata) {
			pairs := metaPairs(r.Metadata)
			if pairs == nil {
				pairs = []metaPair{}
			}
			ev.Meta = &pairs
		}
		doc.Events[i] = ev
	}
	return bson.Marshal(doc)
}

// corruptDoc reports a commit document that cannot be read as one.
func corruptDoc(stream backend.StreamID, id bson.RawValue, format string, args ...any) error {
	return &backend.CorruptError{Stream: stream, Where: "mongostore: commit document " + idString(id),
		Reason: fmt.Sprintf(format, args...)}
}

func idString(id bson.RawValue) string {
	if id.Type == 0 {
		return "without _id"
	}
	if oid, ok := id.ObjectIDOK(); ok {
		return "ObjectId(" + oid.Hex() + ")"
	}
	return id.String()
}

// fieldError describes a missing or mistyped field.
type fieldError struct {
	field string
	got   bson.Type // 0 if missing
	want  string
}

func (e *fieldError) Error() string {
	if e.got == 0 {
		return fmt.Sprintf("field %q is missing (want %s)", e.field, e.want)
	}
	return fmt.Sprintf("field %q is %s, want %s", e.field, e.got, e.want)
}

func lookup(doc bson.Raw, field string) (bson.RawValue, bool) {
	v, err := doc.LookupErr(field)
	return v, err == nil
}

func stringField(doc bson.Raw, field string) (string, error) {
	v, _ := lookup(doc, field)
	if s, ok := v.StringValueOK(); ok {
		return s, nil
	}
	return "", &fieldError{field, v.Type, "string"}
}

// intField reads a 32- or 64-bit integer.
func intField(doc bson.Raw, field string) (int64, error) {
	v, _ := lookup(doc, field)
	if n, ok := v.Int64OK(); ok {
		return n, nil
	}
	if n, ok := v.Int32OK(); ok {
		return int64(n), nil
	}
	return 0, &fieldError{field, v.Type, "integer"}
}

// timeFields reads a datetime and its sub-millisecond nanoseconds (which
// may be absent, meaning 0).
func timeFields(doc bson.Raw) (time.Time, error) {
	v, _ := lookup(doc, fTime)
	ms, ok := v.DateTimeOK()
	if !ok {
		return time.Time{}, &fieldError{fTime, v.Type, "date"}
	}
	var ns int32
	if v, ok := lookup(doc, fNanos); ok {
		if ns, ok = v.Int32OK(); !ok {
			return time.Time{}, &fieldError{fNanos, v.Type, "32-bit integer"}
		}
		if ns < 0 || ns >= int32(time.Millisecond) {
			return time.Time{}, fmt.Errorf("field %q is %d, want 0 to 999999", fNanos, ns)
		}
	}
	return joinTime(ms, ns), nil
}

// metaField reads a metadata array, returning nil for an empty one.
func metaField(v bson.RawValue) (backend.Metadata, error) {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, &fieldError{fMeta, v.Type, "array"}
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, fmt.Errorf("field %q: %w", fMeta, err)
	}
	if len(vals) == 0 {
		return nil, nil
	}
	md := make(backend.Metadata, len(vals))
	for i, pv := range vals {
		pair, ok := pv.DocumentOK()
		if !ok {
			return nil, fmt.Errorf("field %q, element %d is %s, want document", fMeta, i, pv.Type)
		}
		k, err := stringField(pair, fMetaKey)
		if err != nil {
			return nil, fmt.Errorf("field %q, element %d: %w", fMeta, i, err)
		}
		val, err := stringField(pair, fMetaValue)
		if err != nil {
			return nil, fmt.Errorf("field %q, element %d: %w", fMeta, i, err)
		}
		md[k] = val
	}
	return md, nil
}

// decodeCommit appends to out the records of the commit document doc with a
// sequence greater than after. It validates the whole document first, so a
// damaged commit yields an error and none of its records. The records' Data
// slices point into doc.
func decodeCommit(stream backend.StreamID, doc bson.Raw, after int64, out []backend.Record) ([]backend.Record, error) {
	id, _ := lookup(doc, fID)
	bad := func(err error) error { return corruptDoc(stream, id, "%v", err) }

	agg, err := stringField(doc, fAggregate)
	if err != nil {
		return out, bad(err)
	}
	key, err := stringField(doc, fKey)
	if err != nil {
		return out, bad(err)
	}
	if agg != stream.AggregateType || key != stream.Key {
		return out, corruptDoc(stream, id, "belongs to stream %s", backend.StreamID{AggregateType: agg, Key: key})
	}
	first, err := intField(doc, fFirst)
	if err != nil {
		return out, bad(err)
	}
	last, err := intField(doc, fLast)
	if err != nil {
		return out, bad(err)
	}
	if first < 1 || last < first {
		return out, corruptDoc(stream, id, "holds sequences %d to %d", first, last)
	}
	// Loads order and the head check find commits by _id, the boundary cache
	// by last: a document where they disagree cannot be trusted.
	if sid, ok := id.StringValueOK(); !ok || sid != docID(stream, last) {
		return out, corruptDoc(stream, id, "has an _id that does not match its last sequence %d", last)
	}
	cid := ""
	if v, ok := lookup(doc, fCommitID); ok { // absent in commits written before commit IDs
		if cid, ok = v.StringValueOK(); !ok {
			return out, bad(&fieldError{fCommitID, v.Type, "string"})
		}
	}
	ts, err := timeFields(doc)
	if err != nil {
		return out, bad(err)
	}
	var md backend.Metadata
	if v, ok := lookup(doc, fMeta); ok {
		if md, err = metaField(v); err != nil {
			return out, bad(err)
		}
	}
	evv, _ := lookup(doc, fEvents)
	arr, ok := evv.ArrayOK()
	if !ok {
		return out, bad(&fieldError{fEvents, evv.Type, "array"})
	}
	events, err := arr.Values()
	if err != nil {
		return out, bad(fmt.Errorf("field %q: %w", fEvents, err))
	}
	if int64(len(events)) != last-first+1 {
		return out, corruptDoc(stream, id, "holds %d events for sequences %d to %d", len(events), first, last)
	}
	start := len(out)
	for i, v := range events {
		seq := first + int64(i)
		rec, err := decodeEvent(stream, v, seq, ts, md)
		if err != nil {
			return out[:start], &backend.CorruptError{Stream: stream, Sequence: seq,
				Where: "mongostore: commit document " + idString(id), Reason: "event " + strconv.Itoa(i), Err: err}
		}
		rec.CommitID = cid
		if seq > after {
			out = append(out, rec)
		}
	}
	return out, nil
}

func decodeEvent(stream backend.StreamID, v bson.RawValue, seq int64, ts time.Time, md backend.Metadata) (backend.Record, error) {
	rec := backend.Record{Stream: stream, Sequence: seq, Timestamp: ts, Metadata: md}
	fail := func(err error) (backend.Record, error) { return backend.Record{}, err }
	doc, ok := v.DocumentOK()
	if !ok {
		return fail(fmt.Errorf("event is %s, want document", v.Type))
	}
	typ, err := stringField(doc, fType)
	if err != nil {
		return fail(err)
	}
	if typ == "" {
		return fail(errors.New("empty event type"))
	}
	rec.EventType = typ
	dv, _ := lookup(doc, fData)
	_, data, ok := dv.BinaryOK()
	if !ok {
		return fail(&fieldError{fData, dv.Type, "binary"})
	}
	rec.Data = data
	if _, ok := lookup(doc, fTime); ok {
		if rec.Timestamp, err = timeFields(doc); err != nil {
			return fail(err)
		}
	}
	if mv, ok := lookup(doc, fMeta); ok {
		if rec.Metadata, err = metaField(mv); err != nil {
			return fail(err)
		}
	}
	return rec, nil
}
