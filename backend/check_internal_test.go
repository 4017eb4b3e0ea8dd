package backend

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// The checks as they were written before their ASCII fast paths: the
// fast paths must not change what they accept, nor the errors they return.

func validateStreamPlain(s StreamID) error {
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
	case !printableUTF8(s.AggregateType):
		return fmt.Errorf("%w: aggregate type %q has invalid UTF-8 or control characters", ErrInvalidStream, s.AggregateType)
	case !printableUTF8(s.Key):
		return fmt.Errorf("%w: key %q has invalid UTF-8 or control characters", ErrInvalidStream, s.Key)
	}
	return nil
}

func validEventNamePlain(name string) error {
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

func validCommitIDPlain(id string) error {
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

// sameError reports whether a and b are both nil, or errors with the same
// text.
func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Error() == b.Error()
}

// checkInputs returns names around every limit and byte class: each byte
// value alone, before and after a word of letters and in the middle of one,
// names of the limit lengths and one more, and some runes.
func checkInputs() []string {
	in := []string{"", "Account", "Deposited", "0195f7c2-3b7a-7cc3-9a8e-0d4f6e2b1a90", "a/b", "/", "ünïcödé", "\u2028",
		"abc\u0085", "\xff", "abcdefgh\xc3", "é/", "a b", " ", "~!", "\x7f"}
	for _, n := range []int{MaxAggregateTypeLen, MaxKeyLen, MaxEventNameLen, MaxCommitIDLen, MaxMetadataKeyLen} {
		in = append(in, strings.Repeat("k", n), strings.Repeat("k", n+1), strings.Repeat("é", n/2), strings.Repeat("é", n/2)+"k")
	}
	for c := 0; c < 256; c++ {
		b := string([]byte{byte(c)})
		in = append(in, b, b+"abcdefgh", "abcdefgh"+b, "abcd"+b+"efghijk", "ab"+b)
	}
	return in
}

// ValidEventName, ValidCommitID and StreamID.Validate return what their
// plain versions return, for the inputs of checkInputs, and for each
// aggregate type and key against a few of the other.
func TestChecksMatchPlain(t *testing.T) {
	in := checkInputs()
	for _, s := range in {
		if got, want := ValidEventName(s), validEventNamePlain(s); !sameError(got, want) {
			t.Fatalf("ValidEventName(%q) = %v, want %v", s, got, want)
		}
		if got, want := ValidCommitID(s), validCommitIDPlain(s); !sameError(got, want) {
			t.Fatalf("ValidCommitID(%q) = %v, want %v", s, got, want)
		}
	}
	typs := []string{"", "Account", "a/b", "\x00", "Acc\x7fount", "ünï", "\xff", strings.Repeat("T", MaxAggregateTypeLen), strings.Repeat("T", MaxAggregateTypeLen+1)}
	for _, a := range typs {
		for _, b := range append(typs, in...) {
			for _, s := range []StreamID{{AggregateType: a, Key: b}, {AggregateType: b, Key: a}} {
				if got, want := s.Validate(), validateStreamPlain(s); !sameError(got, want) {
					t.Fatalf("%#v.Validate() = %v, want %v", s, got, want)
				}
			}
		}
	}
}
