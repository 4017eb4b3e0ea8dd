package pgstore

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// notifyGap is the least time between two NOTIFYs of one Backend: the
// appends of that time share one notification.
const notifyGap = 5 * time.Millisecond

// notifier wakes WaitFeed callers after appends: those of its own Backend at
// once, those of other Backends and processes with a NOTIFY on the schema's
// channel, sent by a goroutine of its own after the commit, so that no
// append waits for it. A NOTIFY costs a transaction that takes PostgreSQL's
// notification lock at commit, which serialises the commits of all
// notifying transactions; sending one per notifyGap rather than one per
// append keeps that lock out of the appends' way (measured: see the package
// documentation). A notification lost on the way (a crash between the
// commit and the NOTIFY, a failed NOTIFY) costs a reader at most its poll
// interval.
type notifier struct {
	pool    *pgxpool.Pool
	channel string
	sql     string
	enabled bool
	local   *listener

	kick chan struct{} // capacity 1: pending kicks coalesce

	mu      sync.Mutex
	started bool
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

func newNotifier(pool *pgxpool.Pool, channel, sql string, enabled bool, local *listener) *notifier {
	return &notifier{pool: pool, channel: channel, sql: sql, enabled: enabled, local: local, kick: make(chan struct{}, 1)}
}

// committed is called after every successful append.
func (n *notifier) committed() {
	n.local.broadcast()
	if !n.enabled {
		return
	}
	n.mu.Lock()
	if !n.started && !n.closed {
		n.started = true
		n.stop, n.done = make(chan struct{}), make(chan struct{})
		go n.run()
	}
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *notifier) run() {
	defer close(n.done)
	gap := time.NewTimer(0)
	defer gap.Stop()
	for {
		select {
		case <-n.stop:
			select {
			case <-n.kick: // appends not yet announced
				n.send()
			default:
			}
			return
		case <-n.kick:
		}
		n.send()
		gap.Reset(notifyGap)
		select {
		case <-n.stop:
		case <-gap.C:
		}
	}
}

func (n *notifier) send() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = n.pool.Exec(ctx, n.sql, n.channel) // lost: readers poll
}

// close stops the goroutine, sending a last notification if appends are
// not yet announced.
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	started := n.started
	n.mu.Unlock()
	if started {
		close(n.stop)
		<-n.done
	}
}
