package dynamodb

import (
	"bytes"
	"maps"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	es "github.com/aggregatekit/eventsourcing"
)

// Attribute names. They are short because DynamoDB counts every attribute
// name, including the names inside each event map, toward the item size.
const (
	attrStream   = "stream" // S, partition key: StreamID.String()
	attrSeq      = "seq"    // N, sort key: first sequence of the commit (0: snapshot)
	attrLast     = "last"   // N: last sequence of the commit
	attrCommitID = "cid"    // B: random commit ID (16 bytes)
	attrTime     = "ts"     // N: commit time, Unix nanoseconds
	attrMeta     = "md"     // M of S: commit metadata
	attrEvents   = "ev"     // L of M: the events

	evType = "t"  // S: event type name
	evData = "d"  // B: event data (absent when empty)
	evTime = "ts" // N: the event's own time, when it differs from the commit's
	evMeta = "md" // M of S: the event's own metadata, when it differs

	attrSnapSeq     = "at"    // N: sequence the snapshot covers
	attrSnapVersion = "ver"   // N: schema version of the state
	attrSnapState   = "state" // B: encoded state (absent when empty)
	attrSnapTime    = "ts"    // N: when the snapshot was taken, Unix nanoseconds
)

const commitIDLen = 16

// Size accounting follows DynamoDB's published rules: an item's size is the
// sum of its attribute names and values; strings and binaries count their
// bytes; a number counts 1 byte per 2 significant digits plus 1; a list or map
// counts 3 bytes plus 1 per element, plus its elements (and, for a map, their
// names). numberSize over-estimates by a byte, and strings count UTF-8 bytes,
// so the computed size is an upper bound of what the service measures.

// numberSize is an upper bound of the stored size of the integer v.
func numberSize(v int64) int {
	digits := 1
	for u := v; u >= 10 || u <= -10; u /= 10 {
		digits++
	}
	n := 2 + (digits+1)/2
	if v < 0 {
		n++
	}
	return n
}

func metadataSize(md es.Metadata) int {
	n := 3
	for k, v := range md {
		n += 1 + len(k) + len(v)
	}
	return n
}

// commitLayout describes how a commit is laid out in its item: whether every
// event shares the first event's timestamp and metadata (the usual case,
// stored once at item level) or some carry their own.
type commitLayout struct {
	ts      time.Time
	md      es.Metadata
	ownTime []bool // per event: store the event's own time (nil: none does)
	ownMeta []bool // per event: store the event's own metadata (nil: none does)
}

func layoutOf(records []es.Record) commitLayout {
	l := commitLayout{ts: records[0].Timestamp, md: records[0].Metadata}
	for i, r := range records[1:] {
		if !r.Timestamp.Equal(l.ts) {
			if l.ownTime == nil {
				l.ownTime = make([]bool, len(records))
			}
			l.ownTime[i+1] = true
		}
		if !sameMetadata(r.Metadata, l.md) {
			if l.ownMeta == nil {
				l.ownMeta = make([]bool, len(records))
			}
			l.ownMeta[i+1] = true
		}
	}
	return l
}

func sameMetadata(a, b es.Metadata) bool {
	return len(a) == len(b) && maps.Equal(a, b)
}

// commitSize returns an upper bound of the size DynamoDB will measure for the
// item that encodeCommit builds from the same arguments.
func commitSize(pk string, records []es.Record, l commitLayout) int {
	first := records[0].Sequence
	last := records[len(records)-1].Sequence
	n := len(attrStream) + len(pk) +
		len(attrSeq) + numberSize(first) +
		len(attrLast) + numberSize(last) +
		len(attrCommitID) + commitIDLen
	if !l.ts.IsZero() {
		n += len(attrTime) + numberSize(l.ts.UnixNano())
	}
	if len(l.md) > 0 {
		n += len(attrMeta) + metadataSize(l.md)
	}
	n += len(attrEvents) + 3
	for i, r := range records {
		n++                                     // list element
		n += 3                                  // the event map
		n += 1 + len(evType) + len(r.EventType) // element + name + value
		if len(r.Data) > 0 {
			n += 1 + len(evData) + len(r.Data)
		}
		if l.ownTime != nil && l.ownTime[i] {
			n += 1 + len(evTime)
			if !r.Timestamp.IsZero() {
				n += numberSize(r.Timestamp.UnixNano())
			} else {
				n += numberSize(0)
			}
		}
		if l.ownMeta != nil && l.ownMeta[i] {
			n += 1 + len(evMeta) + metadataSize(r.Metadata)
		}
	}
	return n
}

func num(v int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func metadataValue(md es.Metadata) *types.AttributeValueMemberM {
	m := make(map[string]types.AttributeValue, len(md))
	for k, v := range md {
		m[k] = &types.AttributeValueMemberS{Value: v}
	}
	return &types.AttributeValueMemberM{Value: m}
}

// timeValue stores t as Unix nanoseconds. The zero time is stored as absent
// (item level) or as 0 (event level, where absence means "the commit's time").
func timeNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// encodeCommit builds the item of one commit. records are valid (CheckAppend)
// and non-empty.
func encodeCommit(pk string, records []es.Record, l commitLayout, cid []byte) map[string]types.AttributeValue {
	item := make(map[string]types.AttributeValue, 7)
	item[attrStream] = &types.AttributeValueMemberS{Value: pk}
	item[attrSeq] = num(records[0].Sequence)
	item[attrLast] = num(records[len(records)-1].Sequence)
	item[attrCommitID] = &types.AttributeValueMemberB{Value: cid}
	if !l.ts.IsZero() {
		item[attrTime] = num(l.ts.UnixNano())
	}
	if len(l.md) > 0 {
		item[attrMeta] = metadataValue(l.md)
	}
	evs := make([]types.AttributeValue, len(records))
	for i, r := range records {
		ev := make(map[string]types.AttributeValue, 2)
		ev[evType] = &types.AttributeValueMemberS{Value: r.EventType}
		if len(r.Data) > 0 {
			ev[evData] = &types.AttributeValueMemberB{Value: r.Data}
		}
		if l.ownTime != nil && l.ownTime[i] {
			ev[evTime] = num(timeNanos(r.Timestamp))
		}
		if l.ownMeta != nil && l.ownMeta[i] {
			ev[evMeta] = metadataValue(r.Metadata)
		}
		evs[i] = &types.AttributeValueMemberM{Value: ev}
	}
	item[attrEvents] = &types.AttributeValueMemberL{Value: evs}
	return item
}

// validTime reports whether t can be stored as Unix nanoseconds.
func validTime(t time.Time) bool {
	if t.IsZero() {
		return true
	}
	return !t.Before(minTime) && !t.After(maxTime)
}

var (
	minTime = time.Unix(0, -1<<63)
	maxTime = time.Unix(0, 1<<63-1)
)

// commit is a decoded commit item.
type commit struct {
	first, last int64
	records     []es.Record
}

// decoder turns items into records, reporting bad data as *CorruptItemError.
type decoder struct {
	table  string
	stream es.StreamID
	pk     string
}

func (d decoder) corrupt(seq int64, reason string) error {
	return &CorruptItemError{Table: d.table, Stream: d.stream.String(), Seq: seq, Reason: reason}
}

// keyAndLast decodes an item's key and last sequence, checking them.
func (d decoder) keyAndLast(item map[string]types.AttributeValue) (first, last int64, err error) {
	pkv, ok := item[attrStream].(*types.AttributeValueMemberS)
	if !ok || pkv.Value != d.pk {
		return 0, 0, d.corrupt(0, "partition key is not the stream")
	}
	first, err = d.int(item, attrSeq, 0)
	if err != nil {
		return 0, 0, err
	}
	if first < 1 {
		return 0, 0, d.corrupt(first, "sort key below 1")
	}
	last, err = d.int(item, attrLast, first)
	if err != nil {
		return 0, 0, err
	}
	if last < first {
		return 0, 0, d.corrupt(first, "last sequence "+strconv.FormatInt(last, 10)+" before the first")
	}
	return first, last, nil
}

func (d decoder) int(item map[string]types.AttributeValue, name string, seq int64) (int64, error) {
	v, ok := item[name]
	if !ok {
		return 0, d.corrupt(seq, "missing attribute "+name)
	}
	return d.intValue(v, name, seq)
}

func (d decoder) intValue(v types.AttributeValue, name string, seq int64) (int64, error) {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0, d.corrupt(seq, "attribute "+name+" is not a number")
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, d.corrupt(seq, "attribute "+name+" is not a 64-bit integer: "+strconv.Quote(n.Value))
	}
	return i, nil
}

func (d decoder) metadata(v types.AttributeValue, name string, seq int64) (es.Metadata, error) {
	m, ok := v.(*types.AttributeValueMemberM)
	if !ok {
		return nil, d.corrupt(seq, "attribute "+name+" is not a map")
	}
	if len(m.Value) == 0 {
		return nil, nil
	}
	md := make(es.Metadata, len(m.Value))
	for k, v := range m.Value {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return nil, d.corrupt(seq, "metadata "+strconv.Quote(k)+" is not a string")
		}
		md[k] = s.Value
	}
	return md, nil
}

func (d decoder) time(v types.AttributeValue, name string, seq int64) (time.Time, error) {
	ns, err := d.intValue(v, name, seq)
	if err != nil || ns == 0 {
		return time.Time{}, err
	}
	return time.Unix(0, ns).UTC(), nil
}

// commit decodes a whole commit item.
func (d decoder) commit(item map[string]types.AttributeValue) (commit, error) {
	first, last, err := d.keyAndLast(item)
	if err != nil {
		return commit{}, err
	}
	var ts time.Time
	if v, ok := item[attrTime]; ok {
		if ts, err = d.time(v, attrTime, first); err != nil {
			return commit{}, err
		}
	}
	var md es.Metadata
	if v, ok := item[attrMeta]; ok {
		if md, err = d.metadata(v, attrMeta, first); err != nil {
			return commit{}, err
		}
	}
	lv, ok := item[attrEvents].(*types.AttributeValueMemberL)
	if !ok {
		return commit{}, d.corrupt(first, "attribute "+attrEvents+" is missing or not a list")
	}
	if n := int64(len(lv.Value)); n != last-first+1 {
		return commit{}, d.corrupt(first, "holds "+strconv.FormatInt(n, 10)+" events for sequences "+
			strconv.FormatInt(first, 10)+".."+strconv.FormatInt(last, 10))
	}
	recs := make([]es.Record, len(lv.Value))
	for i, v := range lv.Value {
		seq := first + int64(i)
		m, ok := v.(*types.AttributeValueMemberM)
		if !ok {
			return commit{}, d.corrupt(seq, "event is not a map")
		}
		r := es.Record{Stream: d.stream, Sequence: seq, Timestamp: ts, Metadata: md}
		t, ok := m.Value[evType].(*types.AttributeValueMemberS)
		if !ok || t.Value == "" {
			return commit{}, d.corrupt(seq, "event type is missing, empty or not a string")
		}
		r.EventType = t.Value
		if v, ok := m.Value[evData]; ok {
			b, ok := v.(*types.AttributeValueMemberB)
			if !ok {
				return commit{}, d.corrupt(seq, "event data is not binary")
			}
			r.Data = b.Value
		}
		if r.Data == nil {
			r.Data = []byte{}
		}
		if v, ok := m.Value[evTime]; ok {
			if r.Timestamp, err = d.time(v, evTime, seq); err != nil {
				return commit{}, err
			}
		}
		if v, ok := m.Value[evMeta]; ok {
			if r.Metadata, err = d.metadata(v, evMeta, seq); err != nil {
				return commit{}, err
			}
		}
		recs[i] = r
	}
	return commit{first: first, last: last, records: recs}, nil
}

// ownCommit reports whether item carries the commit ID cid.
func ownCommit(item map[string]types.AttributeValue, cid []byte) bool {
	b, ok := item[attrCommitID].(*types.AttributeValueMemberB)
	return ok && bytes.Equal(b.Value, cid)
}
