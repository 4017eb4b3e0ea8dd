package backend

import (
	"strings"
	"testing"
)

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

// ValidEventName, ValidCommitID and StreamID.Validate return what they
// return without their fast paths (the checks as they were written before
// those), for the inputs of checkInputs, and for each
// aggregate type and key against a few of the other.
func TestChecksMatchPlain(t *testing.T) {
	in := checkInputs()
	for _, s := range in {
		if got, want := ValidEventName(s), validEventNameSlow(s); !sameError(got, want) {
			t.Fatalf("ValidEventName(%q) = %v, want %v", s, got, want)
		}
		if got, want := ValidCommitID(s), validCommitIDSlow(s); !sameError(got, want) {
			t.Fatalf("ValidCommitID(%q) = %v, want %v", s, got, want)
		}
	}
	typs := []string{"", "Account", "a/b", "\x00", "Acc\x7fount", "ünï", "\xff", strings.Repeat("T", MaxAggregateTypeLen), strings.Repeat("T", MaxAggregateTypeLen+1)}
	for _, a := range typs {
		for _, b := range append(typs, in...) {
			for _, s := range []StreamID{{AggregateType: a, Key: b}, {AggregateType: b, Key: a}} {
				if got, want := s.Validate(), s.validateSlow(); !sameError(got, want) {
					t.Fatalf("%#v.Validate() = %v, want %v", s, got, want)
				}
			}
		}
	}
}
