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
	i := 0
	for ; i+8 <= len(s); i += 8 { // eight bytes at a time while all are printable ASCII
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if !printableASCII8(w) {
			break // the byte loop finds which byte, and decodes UTF-8
		}
	}
	for ; i < len(s); i++ { // the usual all-ASCII case, without decoding
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		} else if c >= utf8.RuneSelf {
			return printableUTF8(s[i:])
		}
	}
	return true
}

// Bytes repeated in every byte of a word.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// printableASCII8 reports whether the eight bytes of w are all in 0x20 to
// 0x7e. The subtractions borrow across bytes only out of a byte that is
// already out of range, so a word is never misjudged.
func printableASCII8(w uint64) bool {
	if w&highs != 0 { // a byte of 0x80 or more
		return false
	}
	if (w-0x20*ones)&highs != 0 { // a byte below 0x20 (it borrows into its own high bit)
		return false
	}
	x := w ^ 0x7f*ones // a 0x7f byte becomes zero
	return (x-ones)&^x&highs == 0
}

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

// ValidEventName reports, wrapping ErrInvalidEventName, an event type name
// that is empty, longer than MaxEventNameLen bytes, not valid UTF-8, or holds
// a space or a control character.
func ValidEventName(name string) error {
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
	for i, r := range c.Records {
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
