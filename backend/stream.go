package backend

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on identities and names, checked by StreamID.Validate, ValidEventName,
// ValidCommitID and ValidMetadata.
const (
	MaxAggregateTypeLen = 200
	MaxKeyLen           = 1024
	MaxEventNameLen     = 200
	MaxCommitIDLen      = 128
	MaxMetadataKeyLen   = 256
)

// StreamID identifies one event stream: the events of one aggregate instance.
// Two aggregates of different types may share a key without sharing a stream.
type StreamID struct {
	AggregateType string
	Key           string
}

// String returns "AggregateType/Key". Because Validate forbids '/' in the
// aggregate type, the form is unambiguous and a store may use it as a single
// partition key.
func (s StreamID) String() string { return s.AggregateType + "/" + s.Key }

// Validate reports, wrapping ErrInvalidStream, an empty or overlong aggregate
// type or key, an aggregate type containing '/', or either containing invalid
// UTF-8 or control characters.
func (s StreamID) Validate() error {
	if s.AggregateType != "" && len(s.AggregateType) <= MaxAggregateTypeLen && s.Key != "" && len(s.Key) <= MaxKeyLen &&
		asciiIn(s.AggregateType, ' ', '~') && strings.IndexByte(s.AggregateType, '/') < 0 && asciiIn(s.Key, ' ', '~') {
		return nil // the usual case, which validateSlow accepts too
	}
	return s.validateSlow()
}

// validateSlow is Validate without its fast path for the usual case.
func (s StreamID) validateSlow() error {
	switch {
	case s.AggregateType == "":
		return fmt.Errorf("%w: empty aggregate type", ErrInvalidStream)
	case s.Key == "":
		return fmt.Errorf("%w: empty key for aggregate type %q", ErrInvalidStream, s.AggregateType)
	case len(s.AggregateType) > MaxAggregateTypeLen:
		return fmt.Errorf("%w: aggregate type longer than %d bytes", ErrInvalidStream, MaxAggregateTypeLen)
	case len(s.Key) > MaxKeyLen:
		return fmt.Errorf("%w: key longer than %d bytes", ErrInvalidStream, MaxKeyLen)
	case strings.Contains(s.AggregateType, "/"):
		return fmt.Errorf("%w: aggregate type %q contains '/'", ErrInvalidStream, s.AggregateType)
	case !printable(s.AggregateType):
		return fmt.Errorf("%w: aggregate type %q has invalid UTF-8 or control characters", ErrInvalidStream, s.AggregateType)
	case !printable(s.Key):
		return fmt.Errorf("%w: key %q has invalid UTF-8 or control characters", ErrInvalidStream, s.Key)
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	return asciiIn(s, ' ', '~') || printableUTF8(s) // the first is the usual all-ASCII case, without decoding
}

// printableUTF8 is printable decoding every rune.
func printableUTF8(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Bytes repeated in every byte of a word.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// asciiIn reports whether every byte of s is in lo to hi, where hi is
// below 0x80. It reads s eight bytes at a time, the last word overlapping
// the one before when the length is not a multiple of 8.
func asciiIn(s string, lo, hi byte) bool {
	n := len(s)
	switch {
	case n >= 8:
		var out uint64 // the high bit of a byte is set if some byte is outside
		for i := 0; i < n-8; i += 8 {
			out |= outside(load64(s[i:]), lo, hi)
		}
		return (out|outside(load64(s[n-8:]), lo, hi))&highs == 0
	case n >= 4:
		return outside(uint64(load32(s))|uint64(load32(s[n-4:]))<<32, lo, hi)&highs == 0
	}
	for i := 0; i < n; i++ {
		if c := s[i]; c < lo || c > hi {
			return false
		}
	}
	return true
}

// outside returns a word with a byte's high bit set for some of the bytes
// of w outside lo to hi (hi below 0x80), and with no high bit set if there
// are none. A byte of 0x80 or more has it set already. Subtracting lo from
// a byte below it borrows into its own high bit; adding 0x7f-hi to a byte
// (of at most 0x7f) above hi carries into its own high bit and no further.
// A subtraction borrows from the next byte only out of a byte already out
// of range, so a word in range is never misjudged.
func outside(w uint64, lo, hi byte) uint64 {
	return w | (w - uint64(lo)*ones) | (w + uint64(0x7f-hi)*ones)
}

// load64 returns the first eight bytes of s (at least 8) as a
// little-endian word, in one load.
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// load32 returns the first four bytes of s (at least 4) as a little-endian
// word, in one load.
func load32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// ValidEventName reports, wrapping ErrInvalidEventName, an event type name
// that is empty, longer than MaxEventNameLen bytes, not valid UTF-8, or holds
// a space or a control character.
func ValidEventName(name string) error {
	if name != "" && len(name) <= MaxEventNameLen && asciiIn(name, '!', '~') {
		return nil // the usual case, which validEventNameSlow accepts too
	}
	return validEventNameSlow(name)
}

// validEventNameSlow is ValidEventName without its fast path for the usual
// case.
func validEventNameSlow(name string) error {
	if name == "" || len(name) > MaxEventNameLen || !utf8.ValidString(name) {
		return fmt.Errorf("%w: %q (want 1 to %d bytes of UTF-8)", ErrInvalidEventName, name, MaxEventNameLen)
	}
	for _, c := range name {
		if c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: %q contains a space or control character", ErrInvalidEventName, name)
		}
	}
	return nil
}

// ValidCommitID reports, wrapping ErrInvalidCommitID, a commit ID that is
// empty, longer than MaxCommitIDLen bytes, or holds anything but printable
// ASCII without spaces (0x21 to 0x7E). The restriction lets every store
// keep the ID as a plain string and every broker use it as a message ID
// header.
func ValidCommitID(id string) error {
	if id != "" && len(id) <= MaxCommitIDLen && asciiIn(id, '!', '~') {
		return nil // the usual case, which validCommitIDSlow accepts too
	}
	return validCommitIDSlow(id)
}

// validCommitIDSlow is ValidCommitID without its fast path for the usual
// case.
func validCommitIDSlow(id string) error {
	if id == "" || len(id) > MaxCommitIDLen {
		return fmt.Errorf("%w: %q (want 1 to %d bytes)", ErrInvalidCommitID, id, MaxCommitIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: %q holds byte %#x (want printable ASCII without spaces)", ErrInvalidCommitID, id, c)
		}
	}
	return nil
}

// Metadata is a set of string headers stored with every event of a commit
// (correlation and causation IDs, user headers).
type Metadata map[string]string

// ValidMetadata reports, wrapping ErrInvalidMetadata, a header whose key is
// empty, longer than MaxMetadataKeyLen bytes or not valid UTF-8, or whose
// value is not valid UTF-8. Every store keeps the headers it accepts exactly;
// these are the ones some store cannot (real DynamoDB refuses an empty map
// key; BSON and DynamoDB strings must be UTF-8), refused the same way
// everywhere before anything is written.
func ValidMetadata(md Metadata) error {
	if len(md) == 0 {
		return nil // without starting an iteration
	}
	for k, v := range md {
		switch {
		case k == "":
			return fmt.Errorf("%w: empty key", ErrInvalidMetadata)
		case len(k) > MaxMetadataKeyLen:
			return fmt.Errorf("%w: key %.32q... longer than %d bytes", ErrInvalidMetadata, k, MaxMetadataKeyLen)
		case !utf8.ValidString(k):
			return fmt.Errorf("%w: key %q is not valid UTF-8", ErrInvalidMetadata, k)
		case !utf8.ValidString(v):
			return fmt.Errorf("%w: value of %q is not valid UTF-8: %q", ErrInvalidMetadata, k, v)
		}
	}
	return nil
}

// Times a store must keep exactly: from the zero time.Time (January 1 of
// year 1, UTC) to the last nanosecond of year 9999 UTC. CheckAppend refuses
// timestamps outside this range.
var (
	MinTime = time.Time{}
	MaxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// Record is one stored event as a store sees it: bytes plus identity.
// Records yielded by a store are owned by the caller but may share backing
// arrays with the store; treat Data and Metadata as read-only.
type Record struct {
	Stream    StreamID
	Sequence  int64     // 1-based position in the stream
	EventType string    // the registry's name for the event's Go type
	Data      []byte    // the event encoded by the registry's codec
	Timestamp time.Time // commit time; all events of a commit usually share it
	Metadata  Metadata  // from the committing context; may be nil
	CommitID  string    // ID of the commit that stored the event; "" for data written before commit IDs
}

// Commit is one atomic write: the events one command raised, for one
// stream. It is what Backend.Append stores and what a Feed or an Outbox
// yields.
type Commit struct {
	Stream StreamID
	// Expected is the stream's last sequence before the commit (0 for a new
	// stream): the commit's records are numbered Expected+1, Expected+2, ...
	Expected int64
	// ID identifies the commit across the store (see ValidCommitID). It is
	// the de-duplication key of everything downstream: a repeated command,
	// a broker message, a projection.
	ID string
	// Records are the events, in order. Each carries Stream, its Sequence
	// and CommitID equal to ID.
	Records []Record
}

// First returns the sequence of the commit's first record, Expected+1.
func (c Commit) First() int64 { return c.Expected + 1 }

// Last returns the sequence of the commit's last record: the stream's head
// after the commit.
func (c Commit) Last() int64 { return c.Expected + int64(len(c.Records)) }

// Ref returns the commit's reference (see Outbox).
func (c Commit) Ref() CommitRef {
	return CommitRef{Stream: c.Stream, First: c.First(), Last: c.Last(), ID: c.ID}
}

// CheckAppend validates a commit before a store writes it: a valid stream
// and commit ID, an expected sequence of 0 or more, and records numbered
// Expected+1, Expected+2, ... belonging to the stream and the commit, each
// with a valid event type, valid metadata and a timestamp between MinTime
// and MaxTime. Errors wrap ErrInvalidAppend, ErrInvalidStream,
// ErrInvalidCommitID, ErrInvalidEventName or ErrInvalidMetadata, and name
// the stream. A commit of no records passes (stores treat it as a no-op).
func CheckAppend(c Commit) error {
	if err := c.Stream.Validate(); err != nil {
		return err
	}
	if err := ValidCommitID(c.ID); err != nil {
		return fmt.Errorf("append to %s: %w", c.Stream, err)
	}
	if c.Expected < 0 {
		return fmt.Errorf("%w: append to %s: negative expected sequence %d", ErrInvalidAppend, c.Stream, c.Expected)
	}
	if int64(len(c.Records)) > (1<<63-1)-c.Expected {
		return fmt.Errorf("%w: append to %s: sequences overflow", ErrInvalidAppend, c.Stream)
	}
	for i := range c.Records {
		r := &c.Records[i]
		if r.Stream != c.Stream {
			return fmt.Errorf("%w: append to %s: record %d belongs to stream %s", ErrInvalidAppend, c.Stream, i, r.Stream)
		}
		if want := c.Expected + int64(i) + 1; r.Sequence != want {
			return fmt.Errorf("%w: append to %s: record %d has sequence %d, want %d", ErrInvalidAppend, c.Stream, i, r.Sequence, want)
		}
		if r.CommitID != c.ID {
			return fmt.Errorf("%w: append to %s: record %d has commit ID %q, want %q", ErrInvalidAppend, c.Stream, i, r.CommitID, c.ID)
		}
		if err := ValidEventName(r.EventType); err != nil {
			return fmt.Errorf("append to %s: record %d: %w", c.Stream, i, err)
		}
		if r.Timestamp.Before(MinTime) || r.Timestamp.After(MaxTime) {
			return fmt.Errorf("%w: append to %s: record %d has timestamp %v, outside years 1 to 9999",
				ErrInvalidAppend, c.Stream, i, r.Timestamp)
		}
		if err := ValidMetadata(r.Metadata); err != nil {
			return fmt.Errorf("append to %s: record %d: %w", c.Stream, i, err)
		}
	}
	return nil
}
