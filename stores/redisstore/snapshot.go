// Package redisstore provides a backend.SnapshotStore kept in Redis, for
// the snapshot middleware (package middleware/snapshot), built on
// github.com/redis/go-redis/v9. The event streams themselves live in another
// store.
//
// Each stream's snapshot is one Redis hash under the key prefix +
// StreamID.String() (unambiguous, because an aggregate type cannot contain
// '/'), with the fields:
//
//	seq    the sequence, as a decimal string (full int64 precision)
//	ver    the schema version, decimal
//	time   when it was taken, RFC 3339 with nanoseconds, UTC
//	state  the encoded state, raw bytes
//
// Put runs one Lua script, so "store unless a newer snapshot is held" is a
// single atomic step on the server, not a read followed by a write that a
// racing writer could slip between. The script compares sequences as decimal
// strings (by length, then in 9-digit chunks that Lua's double-precision
// numbers hold exactly), so sequences above 2^53 compare correctly. A value
// under the key that is not a well-formed snapshot hash (written by something
// else, or damaged) makes Get fail with an error matching
// backend.ErrInvalidSnapshot, which the snapshot middleware reports and
// answers with a full replay; the next Put replaces it.
//
// The store needs nothing besides the client; it does not contact the server
// until the first call.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	goredis "github.com/redis/go-redis/v9"
)

// DefaultKeyPrefix is the key prefix of a SnapshotStore built without
// WithKeyPrefix.
const DefaultKeyPrefix = "eventsourcing:snapshot:"

// ErrInvalidConfig reports an unusable argument to NewSnapshotStore.
var ErrInvalidConfig = errors.New("redisstore: invalid configuration")

// Hash fields of a stored snapshot.
const (
	fieldSeq     = "seq"
	fieldVersion = "ver"
	fieldTime    = "time"
	fieldState   = "state"
)

// putSource stores a snapshot unless the key holds a well-formed snapshot at
// a later sequence. Anything else under the key (another type, a hash
// lacking a field, with a malformed seq or ver) is replaced. The time field
// is only checked for presence: a hash whose time alone is damaged keeps its
// place in the order (Get reports it invalid; a Put at its sequence or later
// replaces it).
//
// KEYS[1] the snapshot's key
// ARGV    seq (canonical decimal), ver, time, state, ttl in ms (0: none)
const putSource = `
local key = KEYS[1]
local seq = ARGV[1]

local function canonical(s)
  return type(s) == 'string' and #s >= 1 and #s <= 19 and string.match(s, '^[0-9]+$') ~= nil
    and (#s == 1 or string.sub(s, 1, 1) ~= '0')
end

-- a > b for canonical decimals: longer is larger; else compare 9-digit
-- chunks, each exact as a Lua number (a double).
local function greater(a, b)
  if #a ~= #b then return #a > #b end
  for i = 1, #a, 9 do
    local x = tonumber(string.sub(a, i, i + 8))
    local y = tonumber(string.sub(b, i, i + 8))
    if x ~= y then return x > y end
  end
  return false
end

if not canonical(seq) then
  return redis.error_reply('ERR eventsourcing: invalid sequence argument')
end

local kind = redis.call('TYPE', key)['ok']
if kind ~= 'none' then
  local cur = false
  if kind == 'hash' then
    local f = redis.call('HMGET', key, 'seq', 'ver', 'time', 'state')
    if canonical(f[1]) and type(f[2]) == 'string' and #f[2] <= 20 and string.match(f[2], '^-?[0-9]+$') ~= nil
      and type(f[3]) == 'string' and #f[3] > 0 and type(f[4]) == 'string' then
      cur = f[1]
    end
  end
  if cur then
    if greater(cur, seq) then
      return 0
    end
  else
    redis.call('DEL', key)
  end
end

redis.call('HSET', key, 'seq', seq, 'ver', ARGV[2], 'time', ARGV[3], 'state', ARGV[4])
local ttl = tonumber(ARGV[5])
if ttl and ttl > 0 then
  redis.call('PEXPIRE', key, ttl)
else
  redis.call('PERSIST', key)
end
return 1
`

// Option configures NewSnapshotStore.
type Option func(*SnapshotStore) error

// WithKeyPrefix sets the prefix of every key the store uses (default
// DefaultKeyPrefix). Give each application or tenant sharing a Redis
// database its own prefix. An empty prefix is allowed: keys are then the
// bare stream names.
func WithKeyPrefix(prefix string) Option {
	return func(s *SnapshotStore) error {
		s.prefix = prefix
		return nil
	}
}

// WithTTL makes every snapshot expire ttl after it was last written (with
// millisecond granularity). An expired snapshot is simply missing: the
// middleware then replays the stream in full and writes a new one at its
// next due commit. 0, the default, keeps snapshots until deleted; a negative
// ttl makes NewSnapshotStore fail.
func WithTTL(ttl time.Duration) Option {
	return func(s *SnapshotStore) error {
		if ttl < 0 {
			return fmt.Errorf("%w: negative TTL %v", ErrInvalidConfig, ttl)
		}
		s.ttl = ttl
		return nil
	}
}

// SnapshotStore is a backend.SnapshotStore in Redis. It is safe for
// concurrent use, as the go-redis clients are. It does not own the client:
// closing the client is the caller's business, and the store has no Close.
type SnapshotStore struct {
	client goredis.UniversalClient
	prefix string
	ttl    time.Duration
	put    *goredis.Script
}

// NewSnapshotStore returns a snapshot store using client, which may be a
// *goredis.Client, a *goredis.ClusterClient (each snapshot is one key, so
// the script never crosses slots) or any goredis.UniversalClient. It fails
// with an error matching ErrInvalidConfig if client is nil or an option is
// invalid. It does not contact the server.
func NewSnapshotStore(client goredis.UniversalClient, opts ...Option) (*SnapshotStore, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidConfig)
	}
	s := &SnapshotStore{client: client, prefix: DefaultKeyPrefix, put: goredis.NewScript(putSource)}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Key returns the Redis key holding stream's snapshot.
func (s *SnapshotStore) Key(stream backend.StreamID) string { return s.prefix + stream.String() }

// Get returns the stream's snapshot. It fails with an error matching
// backend.ErrSnapshotNotFound if there is none, and with one matching
// backend.ErrInvalidSnapshot if the key holds anything but a
// well-formed snapshot. It costs one round trip (HMGET).
func (s *SnapshotStore) Get(ctx context.Context, stream backend.StreamID) (backend.Snapshot, error) {
	if err := stream.Validate(); err != nil {
		return backend.Snapshot{}, err
	}
	key := s.Key(stream)
	vals, err := s.client.HMGet(ctx, key, fieldSeq, fieldVersion, fieldTime, fieldState).Result()
	if err != nil {
		if goredis.HasErrorPrefix(err, "WRONGTYPE") {
			return backend.Snapshot{}, fmt.Errorf("%w: %s: key %q holds another type: %w", backend.ErrInvalidSnapshot, stream, key, err)
		}
		return backend.Snapshot{}, fmt.Errorf("redisstore: get snapshot of %s: %w", stream, err)
	}
	if len(vals) != 4 {
		return backend.Snapshot{}, fmt.Errorf("redisstore: get snapshot of %s: HMGET returned %d values, want 4", stream, len(vals))
	}
	var strs [4]string
	missing := 0
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			missing++
			continue
		}
		strs[i] = str
	}
	if missing == len(vals) {
		return backend.Snapshot{}, fmt.Errorf("%w: %s", backend.ErrSnapshotNotFound, stream)
	}
	invalid := func(format string, args ...any) (backend.Snapshot, error) {
		return backend.Snapshot{}, fmt.Errorf("%w: %s: key %q: %s", backend.ErrInvalidSnapshot, stream, key, fmt.Sprintf(format, args...))
	}
	if missing > 0 {
		return invalid("hash lacks some of the fields %s, %s, %s, %s", fieldSeq, fieldVersion, fieldTime, fieldState)
	}
	seq, ok := parseSequence(strs[0])
	if !ok {
		return invalid("malformed sequence %.40q", strs[0])
	}
	ver, err := strconv.Atoi(strs[1])
	if err != nil {
		return invalid("malformed version %.40q", strs[1])
	}
	var at time.Time
	if err := at.UnmarshalText([]byte(strs[2])); err != nil {
		return invalid("malformed time %.40q", strs[2])
	}
	return backend.Snapshot{Stream: stream, Sequence: seq, Version: ver, State: []byte(strs[3]), Time: at.UTC()}, nil
}

// parseSequence accepts exactly the canonical decimal form Put writes (and
// the Lua script recognises): digits, no sign, no leading zero.
func parseSequence(s string) (int64, bool) {
	if s == "" || len(s) > 19 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// Put stores snap unless the stream's key holds a snapshot at a later
// sequence (then it stores nothing and returns nil); a snapshot at the same
// sequence is replaced. Whatever else the key held (another Redis type, a
// hash lacking a field or with a malformed sequence or version) is replaced,
// so a damaged snapshot does not block later ones. The comparison and the write are one Lua
// script (EVALSHA, falling back to EVAL once per server), so racing writers
// cannot make the snapshot go back. A snapshot backend.CheckSnapshot refuses
// (a sequence below 1, say) fails with an error matching
// backend.ErrInvalidSnapshot, an invalid stream with one matching
// backend.ErrInvalidStream.
func (s *SnapshotStore) Put(ctx context.Context, snap backend.Snapshot) error {
	if err := backend.CheckSnapshot(snap); err != nil {
		return err
	}
	at, err := snap.Time.UTC().MarshalText()
	if err != nil {
		return fmt.Errorf("%w: %s: time %v: %w", backend.ErrInvalidSnapshot, snap.Stream, snap.Time, err)
	}
	ttl := int64(0)
	if s.ttl > 0 {
		ttl = max(1, s.ttl.Milliseconds())
	}
	err = s.put.Run(ctx, s.client, []string{s.Key(snap.Stream)},
		strconv.FormatInt(snap.Sequence, 10), strconv.Itoa(snap.Version), string(at), snap.State, ttl).Err()
	if err != nil {
		return fmt.Errorf("redisstore: put snapshot of %s at %d: %w", snap.Stream, snap.Sequence, err)
	}
	return nil
}

// Delete removes the stream's snapshot (and whatever else is under its key).
// Deleting a missing snapshot is not an error.
func (s *SnapshotStore) Delete(ctx context.Context, stream backend.StreamID) error {
	if err := stream.Validate(); err != nil {
		return err
	}
	if err := s.client.Del(ctx, s.Key(stream)).Err(); err != nil {
		return fmt.Errorf("redisstore: delete snapshot of %s: %w", stream, err)
	}
	return nil
}

var _ backend.SnapshotStore = (*SnapshotStore)(nil)
