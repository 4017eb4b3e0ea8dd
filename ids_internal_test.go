package eventsourcing

import (
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// uuidV7Plain is uuidV7 written plainly: the 16 bytes, then their hex
// digits with dashes after the 4th, 6th, 8th and 10th byte.
func uuidV7Plain(ms, ra, rb uint64) string {
	var u [16]byte
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	randA := ra >> 52 // 12 bits
	u[6] = 0x70 | byte(randA>>8)
	u[7] = byte(randA)
	randB := rb >> 2 // 62 bits
	u[8] = 0x80 | byte(randB>>56)
	for i := 9; i < 16; i++ {
		u[i] = byte(randB >> (120 - 8*i))
	}
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// uuidV7 agrees with uuidV7Plain for each of the 16 values of every
// nibble of every input (the others 0, then all ones) and for random
// inputs.
func TestUUIDv7MatchesPlain(t *testing.T) {
	check := func(ms, ra, rb uint64) {
		t.Helper()
		if got, want := uuidV7(ms, ra, rb), uuidV7Plain(ms, ra, rb); got != want {
			t.Fatalf("uuidV7(%#x, %#x, %#x) = %s, want %s", ms, ra, rb, got, want)
		}
	}
	for _, base := range []uint64{0, ^uint64(0)} {
		for shift := 0; shift < 64; shift += 4 {
			for v := uint64(0); v < 16; v++ {
				x := base&^(0xf<<shift) | v<<shift
				check(x, base, base)
				check(base, x, base)
				check(base, base, x)
			}
		}
	}
	for i := 0; i < 100000; i++ {
		check(rand.Uint64(), rand.Uint64(), rand.Uint64())
	}
}

// Commit IDs are lowercase 8-4-4-4-12 hex, version 7, variant binary 10,
// and carry the time of their creation in milliseconds; their random bits
// vary.
func TestCommitIDFormat(t *testing.T) {
	var ones, zeros [16]byte // the bits seen set, and seen clear
	for i := 0; i < 10000; i++ {
		before := time.Now().UnixMilli()
		id := NewCommitID()
		after := time.Now().UnixMilli()
		if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
			t.Fatalf("%q is not 8-4-4-4-12", id)
		}
		if strings.ToLower(id) != id {
			t.Fatalf("%q is not lowercase", id)
		}
		u, err := hex.DecodeString(strings.ReplaceAll(id, "-", ""))
		if err != nil || len(u) != 16 {
			t.Fatalf("%q is not hexadecimal: %v", id, err)
		}
		if u[6]>>4 != 7 {
			t.Fatalf("%q has version %d", id, u[6]>>4)
		}
		if u[8]>>6 != 0b10 {
			t.Fatalf("%q has variant %02b", id, u[8]>>6)
		}
		var ms int64
		for _, b := range u[:6] {
			ms = ms<<8 | int64(b)
		}
		if ms < before || ms > after {
			t.Fatalf("%q has time %d ms, made between %d and %d", id, ms, before, after)
		}
		for j, b := range u {
			ones[j] |= b
			zeros[j] |= ^b
		}
	}
	// The 74 random bits: the low 4 of byte 6, byte 7, the low 6 of byte
	// 8, bytes 9 to 15. In 10,000 IDs, each is both 0 and 1 somewhere.
	random := [16]byte{6: 0x0f, 7: 0xff, 8: 0x3f, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}
	for j, m := range random {
		if ones[j]&zeros[j]&m != m {
			t.Fatalf("byte %d: random bits %08b never vary", j, m&^(ones[j]&zeros[j]))
		}
	}
}

func BenchmarkNewCommitID(b *testing.B) {
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		newCommitID(now)
	}
}
