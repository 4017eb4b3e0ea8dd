package sqlitestore

import (
	"sync"

	"github.com/aggregatekit/eventsourcing/backend"
)

// headCacheSize is the number of streams whose head a Backend remembers.
const headCacheSize = 10000

// heads remembers, for a bounded number of streams, a sequence the stream
// is known to have reached: the last sequence of a commit the Backend
// wrote, or of a record it loaded. Stored events are never removed, so a
// stream's head only grows and the remembered value stays a lower bound.
// Append uses it to refuse a commit whose expected sequence is already
// behind without a transaction (and without waiting for the writer's turn);
// any other commit is still checked by the database. When full, an
// arbitrary stream is forgotten, which costs nothing but that shortcut.
// Safe for concurrent use.
type heads struct {
	mu sync.Mutex
	m  map[backend.StreamID]int64
}

// known returns the highest sequence noted for s, or 0.
func (h *heads) known(s backend.StreamID) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[s]
}

// note records that s has reached seq.
func (h *heads) note(s backend.StreamID, seq int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.m[s]; ok {
		h.m[s] = max(v, seq)
		return
	}
	if h.m == nil {
		h.m = make(map[backend.StreamID]int64)
	}
	if len(h.m) >= headCacheSize {
		for k := range h.m { // map order: an arbitrary victim
			delete(h.m, k)
			break
		}
	}
	h.m[s] = seq
}
