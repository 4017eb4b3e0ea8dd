package eventsourcing

import (
	"encoding/binary"
	"math/rand/v2"
	"time"
)

// NewCommitID returns a new commit ID: a UUID of version 7 (RFC 9562) in
// its 36-character text form. Its first 48 bits are the Unix time in
// milliseconds, so IDs sort by creation time to the millisecond; the other
// 74 free bits are random, so two IDs collide with negligible probability
// across any number of processes and stores.
func NewCommitID() string { return newCommitID(time.Now()) }

// newCommitID is NewCommitID at time now.
func newCommitID(now time.Time) string {
	return uuidV7(uint64(now.UnixMilli()), rand.Uint64(), rand.Uint64())
}

// uuidV7 returns the text form of the version 7 UUID of the low 48 bits of
// ms, the top 12 bits of ra (rand_a) and the top 62 bits of rb (rand_b).
//
// It writes the digits eight or four at a time at their fixed places:
//
//	tttttttt-tttt-7aaa-vbbb-bbbbbbbbbbbb
//
// t: the time; 7: the version; a: rand_a; v: the variant (binary 10) and
// 2 bits of rand_b; b: the other 60 bits of rand_b.
func uuidV7(ms, ra, rb uint64) string {
	hi := ms<<16 | 0x7000 | ra>>52      // bytes 0 to 7: time, version, rand_a
	lo := 0x8000_0000_0000_0000 | rb>>2 // bytes 8 to 15: variant, rand_b
	var s [36]byte
	binary.BigEndian.PutUint64(s[0:], hexDigits8(uint32(hi>>32)))
	s[8] = '-'
	mid := hexDigits8(uint32(hi))
	binary.BigEndian.PutUint32(s[9:], uint32(mid>>32))
	s[13] = '-'
	binary.BigEndian.PutUint32(s[14:], uint32(mid))
	s[18] = '-'
	mid = hexDigits8(uint32(lo >> 32))
	binary.BigEndian.PutUint32(s[19:], uint32(mid>>32))
	s[23] = '-'
	binary.BigEndian.PutUint32(s[24:], uint32(mid))
	binary.BigEndian.PutUint64(s[28:], hexDigits8(uint32(lo)))
	return string(s[:])
}

// hexDigits8 returns the eight lowercase hexadecimal digits of x, most
// significant first, as the bytes of a big-endian word.
func hexDigits8(x uint32) uint64 {
	// Spread the nibbles, one to a byte: 0x1234abcd -> 0x010203040a0b0c0d.
	v := uint64(x)
	v = (v | v<<16) & 0x0000ffff_0000ffff
	v = (v | v<<8) & 0x00ff00ff_00ff00ff
	v = (v | v<<4) & 0x0f0f0f0f_0f0f0f0f
	// A byte holding 10 or more gets 'a'-'0'-10 more: adding 6 carries into
	// its bit 4 exactly then (no byte exceeds 0x0f, so none carries out).
	letters := (v + 0x06060606_06060606) >> 4 & 0x01010101_01010101
	return v + 0x30303030_30303030 + letters*('a'-'0'-10)
}
