package eventsourcing

import (
	"math/rand/v2"
	"time"
)

// NewCommitID returns a new commit ID: a UUID of version 7 (RFC 9562) in
// its 36-character text form. Its first 48 bits are the Unix time in
// milliseconds, so IDs sort by creation time to the millisecond; the other
// 74 free bits are random, so two IDs collide with negligible probability
// across any number of processes and stores.
func NewCommitID() string { return newCommitID(time.Now()) }

const hexDigits = "0123456789abcdef"

// newCommitID is NewCommitID at time now.
func newCommitID(now time.Time) string {
	ms := uint64(now.UnixMilli())
	r1, r2 := rand.Uint64(), rand.Uint64()
	var u [16]byte
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | byte(r1>>60)&0x0f // version 7
	u[7] = byte(r1 >> 52)
	u[8] = 0x80 | byte(r2>>56)&0x3f // variant 10
	u[9], u[10], u[11], u[12], u[13], u[14], u[15] = byte(r2>>48), byte(r2>>40), byte(r2>>32), byte(r2>>24), byte(r2>>16), byte(r2>>8), byte(r2)
	var s [36]byte
	j := 0
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = hexDigits[b>>4], hexDigits[b&0x0f]
		j += 2
	}
	return string(s[:])
}
