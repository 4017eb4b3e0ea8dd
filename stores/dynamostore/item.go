package dynamostore

import (
	"maps"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aggregatekit/eventsourcing/backend"
)

// Attribute names. They are short because DynamoDB counts every attribute
// name, including the names inside each event map, toward the item size.
const (
	attrStream   = "stream" // S, partition key: StreamID.String()
	attrSeq      = "seq"    // N, sort key: first sequence of the commit (0: snapshot)
	attrLast     = "last"   // N: last sequence of the commit
	attrCommitID = "id"     // S: the commit ID (absent in items written before commit IDs)
	attrTime     = "tn"     // N: commit time, nanoseconds since the Unix epoch (any sign, any size)
	attrMeta     = "md"     // M of S: commit metadata
	attrEvents   = "ev"     // L of M: the events
	attrShard    = "ob"     // N: outbox marker, present while the commit is pending: the shard (0..outboxShards-1)
	attrPendAt   = "obt"    // N: outbox sort key: the appending backend's clock, Unix nanoseconds

	evType = "t"  // S: event type name
	evData = "d"  // B: event data (absent when empty)
	evTime = "tn" // N: the event's own time, when it differs from the commit's
	evMeta = "md" // M of S: the event's own metadata, when it differs

	attrSnapSeq     = "at"    // N: sequence the snapshot covers
	attrSnapVersion = "ver"   // N: schema version of the state
	attrSnapState   = "state" // B: encoded state (absent when empty)
	attrSnapTime    = "tn"    // N: when the snapshot was taken, as attrTime

	// Written by earlier versions, still read.
	legacyCommitID = "cid" // B: 16 random bytes; ignored (such commits load with CommitID "")
	legacyTime     = "ts"  // N: Unix nanoseconds within int64; item level: absent = zero time; event level: 0 = zero time
)

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
	return digitsSize(digits, v < 0)
}

// decimalSize is an upper bound of the stored size of the decimal integer s
// (as formatted by strconv or math/big).
func decimalSize(s string) int {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	return digitsSize(len(s), neg)
}

func digitsSize(digits int, neg bool) int {
	n := 2 + (digits+1)/2
	if neg {
		n++
	}
	return n
}

func metadataSize(md backend.Metadata) int {
	n := 3
	for k, v := range md {
		n += 1 + len(k) + len(v)
	}
	return n
}

// Times are stored as nanoseconds since the Unix epoch, as a DynamoDB
// number of up to 21 digits: every time.Time from year 1 to 9999 fits
// (DynamoDB numbers hold 38 digits), the epoch is 0 and the zero time.Time
// is -62135596800000000000, so the two never meet.
var (
	billion = big.NewInt(1e9)
	// Unix seconds whose nanosecond count fits an int64.
	minFastSec = int64(-9223372035)
	maxFastSec = int64(9223372035)
)

// timeString encodes t as nanoseconds since the Unix epoch.
func timeString(t time.Time) string {
	sec, ns := t.Unix(), int64(t.Nanosecond())
	if sec >= minFastSec && sec <= maxFastSec {
		return strconv.FormatInt(sec*1e9+ns, 10)
	}
	v := new(big.Int).Mul(big.NewInt(sec), billion)
	return v.Add(v, big.NewInt(ns)).String()
}

// parseTime decodes timeString's output. It reports false for anything
// else, including times outside years 1 to 9999.
func parseTime(s string) (time.Time, bool) {
	if s == "" || len(s) > 22 {
		return time.Time{}, false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && !(i == 0 && c == '-' && len(s) > 1) {
			return time.Time{}, false
		}
	}
	var t time.Time
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		t = time.Unix(0, n)
	} else {
		v, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return time.Time{}, false
		}
		sec, ns := new(big.Int).DivMod(v, billion, new(big.Int)) // ns in [0, 1e9)
		if !sec.IsInt64() {
			return time.Time{}, false
		}
		t = time.Unix(sec.Int64(), ns.Int64())
	}
	if t.Before(backend.MinTime) || t.After(backend.MaxTime) {
		return time.Time{}, false
	}
	if t.Equal(backend.MinTime) {
		return time.Time{}, true // exactly the zero value, as given
	}
	return t.UTC(), true
}

// commitLayout describes how a commit is laid out in its item: whether every
// event shares the first event's timestamp and metadata (the usual case,
// stored once at item level) or some carry their own.
type commitLayout struct {
	ts      time.Time
	md      backend.Metadata
	ownTime []bool // per event: store the event's own time (nil: none does)
	ownMeta []bool // per event: store the event's own metadata (nil: none does)
}

func layoutOf(records []backend.Record) commitLayout {
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

func sameMetadata(a, b backend.Metadata) bool {
	return len(a) == len(b) && maps.Equal(a, b)
}

// marker is the outbox marker of a pending commit: its shard and the
// appending backend's clock.
type marker struct {
	shard int
	at    int64
}

// commitSize returns an upper bound of the size DynamoDB will measure for the
// item that encodeCommit builds from the same arguments.
func commitSize(pk string, c backend.Commit, l commitLayout, m *marker) int {
	n := len(attrStream) + len(pk) +
		len(attrSeq) + numberSize(c.First()) +
		len(attrLast) + numberSize(c.Last()) +
		len(attrCommitID) + len(c.ID) +
		len(attrTime) + decimalSize(timeString(l.ts))
	if m != nil {
		n += len(attrShard) + numberSize(int64(m.shard)) + len(attrPendAt) + numberSize(m.at)
	}
	if len(l.md) > 0 {
		n += len(attrMeta) + metadataSize(l.md)
	}
	n += len(attrEvents) + 3
	for i, r := range c.Records {
		n++                                     // list element
		n += 3                                  // the event map
		n += 1 + len(evType) + len(r.EventType) // element + name + value
		if len(r.Data) > 0 {
			n += 1 + len(evData) + len(r.Data)
		}
		if l.ownTime != nil && l.ownTime[i] {
			n += 1 + len(evTime) + decimalSize(timeString(r.Timestamp))
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

func str(s string) *types.AttributeValueMemberS {
	return &types.AttributeValueMemberS{Value: s}
}

func metadataValue(md backend.Metadata) *types.AttributeValueMemberM {
	m := make(map[string]types.AttributeValue, len(md))
	for k, v := range md {
		m[k] = str(v)
	}
	return &types.AttributeValueMemberM{Value: m}
}

// encodeCommit builds the item of one commit, with the outbox marker m if
// not nil. c is valid (CheckAppend) and holds records.
func encodeCommit(pk string, c backend.Commit, l commitLayout, m *marker) map[string]types.AttributeValue {
	item := make(map[string]types.AttributeValue, 9)
	item[attrStream] = str(pk)
	item[attrSeq] = num(c.First())
	item[attrLast] = num(c.Last())
	item[attrCommitID] = str(c.ID)
	item[attrTime] = &types.AttributeValueMemberN{Value: timeString(l.ts)}
	if m != nil {
		item[attrShard] = num(int64(m.shard))
		item[attrPendAt] = num(m.at)
	}
	if len(l.md) > 0 {
		item[attrMeta] = metadataValue(l.md)
	}
	evs := make([]types.AttributeValue, len(c.Records))
	for i, r := range c.Records {
		ev := make(map[string]types.AttributeValue, 2)
		ev[evType] = str(r.EventType)
		if len(r.Data) > 0 {
			ev[evData] = &types.AttributeValueMemberB{Value: r.Data}
		}
		if l.ownTime != nil && l.ownTime[i] {
			ev[evTime] = &types.AttributeValueMemberN{Value: timeString(r.Timestamp)}
		}
		if l.ownMeta != nil && l.ownMeta[i] {
			ev[evMeta] = metadataValue(r.Metadata)
		}
		evs[i] = &types.AttributeValueMemberM{Value: ev}
	}
	item[attrEvents] = &types.AttributeValueMemberL{Value: evs}
	return item
}

// storedCommit is a decoded commit item.
type storedCommit struct {
	first, last int64
	id          string
	pending     bool // carries the outbox marker
	records     []backend.Record
}

func (c storedCommit) commit(stream backend.StreamID) backend.Commit {
	return backend.Commit{Stream: stream, Expected: c.first - 1, ID: c.id, Records: c.records}
}

// decoder turns items into records, reporting bad data as
// *backend.CorruptError.
type decoder struct {
	table  string
	stream backend.StreamID
	pk     string
}

func newDecoder(table string, stream backend.StreamID) decoder {
	return decoder{table: table, stream: stream, pk: stream.String()}
}

func (d decoder) corrupt(seq int64, reason string) error {
	where := "table " + strconv.Quote(d.table) + ", item stream=" + strconv.Quote(d.pk)
	if seq != 0 {
		where += " seq=" + strconv.FormatInt(seq, 10)
	}
	return &backend.CorruptError{Stream: d.stream, Sequence: seq, Where: where, Reason: reason}
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

func (d decoder) metadata(v types.AttributeValue, name string, seq int64) (backend.Metadata, error) {
	m, ok := v.(*types.AttributeValueMemberM)
	if !ok {
		return nil, d.corrupt(seq, "attribute "+name+" is not a map")
	}
	if len(m.Value) == 0 {
		return nil, nil
	}
	md := make(backend.Metadata, len(m.Value))
	for k, v := range m.Value {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return nil, d.corrupt(seq, "metadata "+strconv.Quote(k)+" is not a string")
		}
		md[k] = s.Value
	}
	return md, nil
}

// time decodes a time in this version's encoding (see timeString).
func (d decoder) time(v types.AttributeValue, name string, seq int64) (time.Time, error) {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return time.Time{}, d.corrupt(seq, "attribute "+name+" is not a number")
	}
	t, ok := parseTime(n.Value)
	if !ok {
		return time.Time{}, d.corrupt(seq, "attribute "+name+" is not a time in years 1 to 9999: "+strconv.Quote(n.Value))
	}
	return t, nil
}

// legacyTimeValue decodes a time written by earlier versions: Unix
// nanoseconds in an int64. zeroIsZero says that 0 stands for the zero
// time.Time (the event-level encoding, which could not tell it from the
// epoch); at item level the zero time was left out, so 0 is the epoch.
func (d decoder) legacyTimeValue(v types.AttributeValue, name string, seq int64, zeroIsZero bool) (time.Time, error) {
	ns, err := d.intValue(v, name, seq)
	if err != nil || (ns == 0 && zeroIsZero) {
		return time.Time{}, err
	}
	return time.Unix(0, ns).UTC(), nil
}

// itemTime decodes an item-level time: this version's attribute, else an
// earlier version's, else the zero time (which earlier versions left out).
func (d decoder) itemTime(item map[string]types.AttributeValue, name string, seq int64) (time.Time, error) {
	if v, ok := item[name]; ok {
		return d.time(v, name, seq)
	}
	if v, ok := item[legacyTime]; ok {
		return d.legacyTimeValue(v, legacyTime, seq, false)
	}
	return time.Time{}, nil
}

// commit decodes a whole commit item.
func (d decoder) commit(item map[string]types.AttributeValue) (storedCommit, error) {
	first, last, err := d.keyAndLast(item)
	if err != nil {
		return storedCommit{}, err
	}
	c := storedCommit{first: first, last: last}
	if v, ok := item[attrCommitID]; ok {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok || backend.ValidCommitID(s.Value) != nil {
			return storedCommit{}, d.corrupt(first, "attribute "+attrCommitID+" is not a valid commit ID")
		}
		c.id = s.Value
	}
	_, c.pending = item[attrShard]
	ts, err := d.itemTime(item, attrTime, first)
	if err != nil {
		return storedCommit{}, err
	}
	var md backend.Metadata
	if v, ok := item[attrMeta]; ok {
		if md, err = d.metadata(v, attrMeta, first); err != nil {
			return storedCommit{}, err
		}
	}
	lv, ok := item[attrEvents].(*types.AttributeValueMemberL)
	if !ok {
		return storedCommit{}, d.corrupt(first, "attribute "+attrEvents+" is missing or not a list")
	}
	if n := int64(len(lv.Value)); n != last-first+1 {
		return storedCommit{}, d.corrupt(first, "holds "+strconv.FormatInt(n, 10)+" events for sequences "+
			strconv.FormatInt(first, 10)+".."+strconv.FormatInt(last, 10))
	}
	c.records = make([]backend.Record, len(lv.Value))
	for i, v := range lv.Value {
		seq := first + int64(i)
		m, ok := v.(*types.AttributeValueMemberM)
		if !ok {
			return storedCommit{}, d.corrupt(seq, "event is not a map")
		}
		r := backend.Record{Stream: d.stream, Sequence: seq, Timestamp: ts, Metadata: md, CommitID: c.id}
		t, ok := m.Value[evType].(*types.AttributeValueMemberS)
		if !ok || t.Value == "" {
			return storedCommit{}, d.corrupt(seq, "event type is missing, empty or not a string")
		}
		r.EventType = t.Value
		if v, ok := m.Value[evData]; ok {
			b, ok := v.(*types.AttributeValueMemberB)
			if !ok {
				return storedCommit{}, d.corrupt(seq, "event data is not binary")
			}
			r.Data = b.Value
		}
		if r.Data == nil {
			r.Data = []byte{}
		}
		if v, ok := m.Value[evTime]; ok {
			if r.Timestamp, err = d.time(v, evTime, seq); err != nil {
				return storedCommit{}, err
			}
		} else if v, ok := m.Value[legacyTime]; ok {
			if r.Timestamp, err = d.legacyTimeValue(v, legacyTime, seq, true); err != nil {
				return storedCommit{}, err
			}
		}
		if v, ok := m.Value[evMeta]; ok {
			if r.Metadata, err = d.metadata(v, evMeta, seq); err != nil {
				return storedCommit{}, err
			}
		}
		c.records[i] = r
	}
	return c, nil
}

// ownCommit reports whether item (projected to its commit ID and last
// sequence) is the commit c.
func ownCommit(item map[string]types.AttributeValue, c backend.Commit) bool {
	id, ok := item[attrCommitID].(*types.AttributeValueMemberS)
	last, ok2 := item[attrLast].(*types.AttributeValueMemberN)
	return ok && ok2 && id.Value == c.ID && last.Value == strconv.FormatInt(c.Last(), 10)
}

// parseStream reads a partition key back as a stream.
func parseStream(pk string) (backend.StreamID, bool) {
	typ, key, ok := strings.Cut(pk, "/")
	s := backend.StreamID{AggregateType: typ, Key: key}
	return s, ok && s.Validate() == nil
}
