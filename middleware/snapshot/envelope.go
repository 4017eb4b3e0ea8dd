package snapshot

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	es "github.com/aggregatekit/eventsourcing"
)

// A snapshot's State, as the middleware stores it, is an envelope around the
// codec's encoding of the aggregate state:
//
//	magic   "essn" and a format version byte (1)
//	sum     SHA-256 over the stream, sequence, schema version and the rest
//	        of the envelope (32 bytes)
//	n       uvarint: the number of recent commit IDs
//	ids     n times: uvarint length, then the ID's bytes
//	state   the codec's bytes, to the end
//
// The checksum binds the state to the stream and sequence it was taken at,
// so a snapshot store returning anything but the middleware's own output
// for that stream and sequence (another program's data, a damaged or
// truncated value, a snapshot of another stream or sequence) is refused
// with es.ErrInvalidSnapshot and answered with a full replay.
var magic = [5]byte{'e', 's', 's', 'n', 1}

const sumLen = sha256.Size

// seal returns the envelope of state and recent, taken at seq of stream
// under schema version.
func seal(stream es.StreamID, seq int64, version int, recent []string, state []byte) []byte {
	n := len(magic) + sumLen + binary.MaxVarintLen64 + len(state)
	for _, id := range recent {
		n += binary.MaxVarintLen64 + len(id)
	}
	out := make([]byte, len(magic)+sumLen, n)
	copy(out, magic[:])
	out = binary.AppendUvarint(out, uint64(len(recent)))
	for _, id := range recent {
		out = binary.AppendUvarint(out, uint64(len(id)))
		out = append(out, id...)
	}
	out = append(out, state...)
	sum := checksum(stream, seq, version, out[len(magic)+sumLen:])
	copy(out[len(magic):], sum[:])
	return out
}

var errNotSealed = errors.New("the state is not a snapshot this middleware wrote")

// open verifies the envelope of a snapshot of stream and returns the state
// and recent commit IDs inside it.
func open(stream es.StreamID, snap es.Snapshot) (state []byte, recent []string, err error) {
	b := snap.State
	if len(b) < len(magic)+sumLen || string(b[:len(magic)]) != string(magic[:]) {
		return nil, nil, errNotSealed
	}
	body := b[len(magic)+sumLen:]
	want := checksum(stream, snap.Sequence, snap.Version, body)
	if string(b[len(magic):len(magic)+sumLen]) != string(want[:]) {
		return nil, nil, fmt.Errorf("checksum mismatch: the snapshot was not taken of %s at sequence %d with version %d, or was damaged",
			stream, snap.Sequence, snap.Version)
	}
	n, k := binary.Uvarint(body)
	if k <= 0 || n > uint64(len(body)) {
		return nil, nil, errors.New("malformed commit ID list")
	}
	body = body[k:]
	recent = make([]string, 0, n)
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(body)
		if k <= 0 || l > uint64(len(body)-k) {
			return nil, nil, errors.New("malformed commit ID")
		}
		recent = append(recent, string(body[k:k+int(l)]))
		body = body[k+int(l):]
	}
	return body, recent, nil
}

func checksum(stream es.StreamID, seq int64, version int, body []byte) [sumLen]byte {
	h := sha256.New()
	var buf [binary.MaxVarintLen64]byte
	for _, s := range []string{stream.AggregateType, stream.Key} {
		h.Write(binary.AppendUvarint(buf[:0], uint64(len(s))))
		h.Write([]byte(s))
	}
	h.Write(binary.AppendVarint(buf[:0], seq))
	h.Write(binary.AppendVarint(buf[:0], int64(version)))
	h.Write(body)
	var sum [sumLen]byte
	h.Sum(sum[:0])
	return sum
}

// Unseal verifies a snapshot the middleware stored (as a SnapshotStore
// returns it) and returns what it holds: the aggregate state as the codec
// encoded it, and the stream's latest commit IDs at that point, oldest
// first. It fails with an error matching eventsourcing.ErrInvalidSnapshot
// for anything else. Use it to inspect snapshots; the middleware calls it
// on every load.
func Unseal(snap es.Snapshot) (state []byte, commitIDs []string, err error) {
	state, commitIDs, err = open(snap.Stream, snap)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s at sequence %d: %w", es.ErrInvalidSnapshot, snap.Stream, snap.Sequence, err)
	}
	return state, commitIDs, nil
}
