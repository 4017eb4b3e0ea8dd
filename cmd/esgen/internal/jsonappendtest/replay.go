package jsonappendtest

import (
	"encoding/json"
	"strconv"
	"time"
)

func (l *Ledger) ReplayPlain(Plain)           { l.N++ }
func (l *Ledger) ReplayKinds(Kinds)           { l.N++ }
func (l *Ledger) ReplayOmitAll(OmitAll)       { l.N++ }
func (l *Ledger) ReplayMixed(Mixed)           { l.N++ }
func (l *Ledger) ReplayTagged(Tagged)         { l.N++ }
func (l *Ledger) ReplayNothing(Nothing)       { l.N++ }
func (l *Ledger) ReplayOnlyHidden(OnlyHidden) { l.N++ }
func (l *Ledger) ReplayPointed(*Pointed)      { l.N++ }

func (l *Ledger) ReplayFloat(Float)                 { l.N++ }
func (l *Ledger) ReplayTime(Time)                   { l.N++ }
func (l *Ledger) ReplayNamed(Named)                 { l.N++ }
func (l *Ledger) ReplayPointer(Pointer)             { l.N++ }
func (l *Ledger) ReplaySlice(Slice)                 { l.N++ }
func (l *Ledger) ReplayMap(Map)                     { l.N++ }
func (l *Ledger) ReplayEmbedded(Embedded)           { l.N++ }
func (l *Ledger) ReplayStringOpt(StringOpt)         { l.N++ }
func (l *Ledger) ReplayOmitZero(OmitZero)           { l.N++ }
func (l *Ledger) ReplayUnknownOpt(UnknownOpt)       { l.N++ }
func (l *Ledger) ReplayMarshalJSON(MarshalJSON)     { l.N++ }
func (l *Ledger) ReplayMarshalText(MarshalText)     { l.N++ }
func (l *Ledger) ReplayUnmarshalJSON(UnmarshalJSON) { l.N++ }
func (l *Ledger) ReplayUnmarshalText(UnmarshalText) { l.N++ }
func (l *Ledger) ReplayDuplicate(Duplicate)         { l.N++ }
func (l *Ledger) ReplayGeneric(Generic[int])        { l.N++ }
func (l *Ledger) ReplayNotStruct(NotStruct)         { l.N++ }
func (l *Ledger) ReplayFieldClash(FieldClash)       { l.N++ }
func (l *Ledger) ReplayDecodeClash(DecodeClash)     { l.N++ }
func (l *Ledger) ReplayHandWritten(HandWritten)     { l.N++ }
func (l *Ledger) ReplayHandDecoded(HandDecoded)     { l.N++ }
func (l *Ledger) ReplayDuration(time.Duration)      { l.N++ }

func (a *Audit) ReplayPlain(*Plain) { a.N++ }

// The methods that make MarshalJSON, MarshalText, UnmarshalJSON and
// UnmarshalText ineligible, declared apart from the types as esgen must find
// them anywhere in the package.

// MarshalJSON encodes the number alone.
func (m *MarshalJSON) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, int64(m.N), 10), nil
}

// MarshalText encodes the number alone.
func (m MarshalText) MarshalText() ([]byte, error) {
	return strconv.AppendInt(nil, int64(m.N), 10), nil
}

// AppendJSON is written by hand, as json.Marshal encodes h.
func (h HandWritten) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"N":`...)
	dst = strconv.AppendInt(dst, int64(h.N), 10)
	return append(dst, '}')
}

// UnmarshalJSON decodes a number alone.
func (u *UnmarshalJSON) UnmarshalJSON(data []byte) error {
	return json.Unmarshal(data, &u.N)
}

// UnmarshalText decodes a number alone.
func (u *UnmarshalText) UnmarshalText(text []byte) error {
	n, err := strconv.Atoi(string(text))
	u.N = n
	return err
}

// DecodeJSON is written by hand, as json.Unmarshal decodes into h: into the
// same struct type without methods.
func (h *HandDecoded) DecodeJSON(data []byte) error {
	return json.Unmarshal(data, (*struct{ N int })(h))
}
