package pgstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A Position of this store's feed is the transaction ID (xid8) of the
// commit and the position (identity column) of its last event, each as 20
// decimal digits, joined by '/': 41 bytes that sort as strings like the
// feed. The zero Position "" comes before every commit.
const positionLen = 20 + 1 + 20

func formatPosition(tx uint64, pos int64) backend.Position {
	var buf [positionLen]byte
	putDigits(buf[:20], tx)
	buf[20] = '/'
	putDigits(buf[21:], uint64(pos))
	return backend.Position(buf[:])
}

func putDigits(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

// parsePosition reads a Position made by formatPosition ("" is 0, 0).
func parsePosition(p backend.Position) (tx uint64, pos int64, err error) {
	if p == "" {
		return 0, 0, nil
	}
	s := string(p)
	if len(s) != positionLen || s[20] != '/' {
		return 0, 0, fmt.Errorf("%w: %q is not a pgstore feed position", backend.ErrInvalidPosition, truncate(s))
	}
	tx, err1 := strconv.ParseUint(s[:20], 10, 64)
	upos, err2 := strconv.ParseUint(s[21:], 10, 63)
	if err1 != nil || err2 != nil || strings.ContainsAny(s, "+-") {
		return 0, 0, fmt.Errorf("%w: %q is not a pgstore feed position", backend.ErrInvalidPosition, truncate(s))
	}
	return tx, int64(upos), nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// ReadFeed yields every commit after the position after, in the feed's
// order, up to the end of what was readable when it started. The order is
// that of the committing transactions' IDs (then of the events' positions),
// and only transactions older than the oldest one still running anywhere in
// the database cluster are read (pg_snapshot_xmin of the current snapshot):
// all of those have ended, so no commit can later appear before one already
// yielded. A commit whose transaction is still running, or that ended after
// an older one that is still running, is yielded by a later ReadFeed; when
// ReadFeed starts and sees such committed rows, it first waits (polling) up
// to WithInFlightWait for the older transactions to end, so that a commit
// acknowledged before ReadFeed started is yielded by it unless a long
// transaction holds the feed back.
//
// It reads a page of rows at a time (WithPageSize), returning the page's
// connection to the pool before yielding its commits. A row that cannot be
// read as what Append writes yields a *backend.CorruptError naming its
// stream; a position this store did not produce, an error matching
// eventsourcing.ErrInvalidPosition.
//
// Round trips: one query for the bound (see WithInFlightWait), which is all
// when there is nothing after the position; otherwise one more per page of
// rows. A page ends with the last commit it holds whole; a commit cut by
// the end of a page is read again by the next one.
func (b *Backend) ReadFeed(ctx context.Context, after backend.Position) iter.Seq2[backend.FeedCommit, error] {
	return func(yield func(backend.FeedCommit, error) bool) {
		if b.closed.Load() {
			yield(backend.FeedCommit{}, fmt.Errorf("pgstore: read feed: %w", backend.ErrClosed))
			return
		}
		tx, pos, err := parsePosition(after)
		if err != nil {
			yield(backend.FeedCommit{}, err)
			return
		}
		bound, found, err := b.feedBound(ctx, tx, pos)
		if err != nil {
			yield(backend.FeedCommit{}, err)
			return
		}
		if !found { // nothing after the position: one round trip
			return
		}
		limit := b.cfg.pageSize
		for {
			if err := ctx.Err(); err != nil {
				yield(backend.FeedCommit{}, fmt.Errorf("pgstore: read feed: %w", err))
				return
			}
			rows, rerr := b.feedPage(ctx, tx, pos, bound, limit)
			var damaged *backend.CorruptError
			if rerr != nil && !errors.As(rerr, &damaged) {
				yield(backend.FeedCommit{}, rerr)
				return
			}
			if len(rows) == 0 && rerr == nil {
				return
			}
			// The page query reads one row more than the page, to tell
			// whether the page's last commit ends with it.
			full, cut := len(rows) > limit, false
			if full {
				next, last := rows[limit], rows[limit-1]
				cut = next.tx == last.tx && next.rec.Stream == last.rec.Stream && next.rec.CommitID == last.rec.CommitID
				rows = rows[:limit]
			}
			commits, cerr := b.groupCommits(rows)
			switch {
			case cerr != nil:
				rerr = cerr
			case rerr != nil && len(commits) > 0:
				// The damaged row may belong to the last commit read.
				commits = commits[:len(commits)-1]
			case cut && len(commits) == 1:
				// One commit longer than the page: read it whole.
				limit *= 2
				continue
			case cut:
				commits = commits[:len(commits)-1]
			}
			for _, c := range commits {
				if err := ctx.Err(); err != nil {
					yield(backend.FeedCommit{}, fmt.Errorf("pgstore: read feed: %w", err))
					return
				}
				if !yield(c.FeedCommit, nil) {
					return
				}
			}
			if rerr != nil {
				yield(backend.FeedCommit{}, rerr)
				return
			}
			if !full {
				return
			}
			last := commits[len(commits)-1]
			tx, pos, limit = last.tx, last.pos, b.cfg.pageSize
		}
	}
}

// feedRow is one row of the feed query.
type feedRow struct {
	tx  uint64
	pos int64
	rec backend.Record
}

// feedCommit is a commit read from the feed, with its place.
type feedCommit struct {
	backend.FeedCommit
	tx  uint64
	pos int64
}

// feedBound returns the transaction ID below which a ReadFeed reads: the
// oldest transaction running when it starts, or, if that holds back commits
// it can already see, the oldest one running once those older transactions
// have ended (waiting at most WithInFlightWait). found reports whether the
// statement saw any commit after the position.
func (b *Backend) feedBound(ctx context.Context, tx uint64, pos int64) (bound uint64, found bool, err error) {
	var (
		xmin uint64
		hi   *uint64
	)
	if err := b.pool.QueryRow(ctx, b.sql.feedBound, tx, pos).Scan(&xmin, &hi); err != nil {
		return 0, false, b.readError(ctx, "read feed", err)
	}
	if hi == nil {
		return xmin, false, nil
	}
	if *hi < xmin || b.cfg.inFlightWait <= 0 {
		return xmin, true, nil
	}
	deadline := time.Now().Add(b.cfg.inFlightWait)
	delay := 250 * time.Microsecond
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return 0, false, fmt.Errorf("pgstore: read feed: %w", ctx.Err())
		case <-timer.C:
		}
		if err := b.pool.QueryRow(ctx, b.sql.xmin).Scan(&xmin); err != nil {
			return 0, false, b.readError(ctx, "read feed", err)
		}
		if xmin > *hi {
			break
		}
		delay = min(delay*2, 10*time.Millisecond)
		timer.Reset(delay)
	}
	return xmin, true, nil
}

func (b *Backend) feedPage(ctx context.Context, tx uint64, pos int64, bound uint64, limit int) ([]feedRow, error) {
	rows, err := b.pool.Query(ctx, b.sql.feed, tx, pos, bound, limit+1)
	if err != nil {
		return nil, b.readError(ctx, "read feed", err)
	}
	defer rows.Close()
	var (
		out      []feedRow
		md       metadataDecoder
		ts       time.Time
		ns       int16
		metadata []byte
	)
	for rows.Next() {
		var fr feedRow
		r := &fr.rec
		if err := rows.Scan(&fr.tx, &fr.pos, &r.Stream.AggregateType, &r.Stream.Key, &r.Sequence, &r.CommitID,
			&r.EventType, &r.Data, &ts, &ns, &metadata); err != nil {
			return out, b.corrupt(r.Stream, r.Sequence, "position "+strconv.FormatInt(fr.pos, 10), "unreadable columns", err)
		}
		if err := r.Stream.Validate(); err != nil {
			return out, b.corrupt(r.Stream, r.Sequence, "position "+strconv.FormatInt(fr.pos, 10), "unusable stream", err)
		}
		if err := b.decodeRow(r, ts, ns, metadata, &md); err != nil {
			return out, err
		}
		out = append(out, fr)
	}
	if err := rows.Err(); err != nil {
		return nil, b.readError(ctx, "read feed", err)
	}
	return out, nil
}

// groupCommits groups rows into commits: runs of rows of one transaction,
// stream and commit ID. It returns the commits before a damaged one, and
// an error for it.
func (b *Backend) groupCommits(rows []feedRow) ([]feedCommit, error) {
	var out []feedCommit
	for i := 0; i < len(rows); {
		first := rows[i]
		j := i + 1
		for j < len(rows) && rows[j].tx == first.tx && rows[j].rec.Stream == first.rec.Stream && rows[j].rec.CommitID == first.rec.CommitID {
			j++
		}
		recs := make([]backend.Record, j-i)
		for k := i; k < j; k++ {
			recs[k-i] = rows[k].rec
			if want := first.rec.Sequence + int64(k-i); rows[k].rec.Sequence != want {
				return out, b.corrupt(first.rec.Stream, rows[k].rec.Sequence, "position "+strconv.FormatInt(rows[k].pos, 10),
					"commit "+first.rec.CommitID+" has sequence "+strconv.FormatInt(rows[k].rec.Sequence, 10)+
						" where "+strconv.FormatInt(want, 10)+" was expected", nil)
			}
		}
		last := rows[j-1]
		out = append(out, feedCommit{
			FeedCommit: backend.FeedCommit{
				Commit: backend.Commit{
					Stream:   first.rec.Stream,
					Expected: first.rec.Sequence - 1,
					ID:       first.rec.CommitID,
					Records:  recs,
				},
				Position: formatPosition(last.tx, last.pos),
			},
			tx:  last.tx,
			pos: last.pos,
		})
		i = j
	}
	return out, nil
}

// WaitFeed blocks until a commit after the position after may be
// readable, until the poll interval (WithPollInterval) has passed, or until
// ctx is done (it then returns ctx's error). It first checks, with one
// query, whether a commit is readable already; then it waits for a
// notification, which Append sends (unless WithoutNotify) when its
// transaction commits. Notifications are only a wake-up: the data is always
// read by ReadFeed, and a lost notification costs at most a poll interval.
//
// The notifications arrive on one connection per Backend, opened on the
// first WaitFeed with the pool's connection settings but outside the pool
// (so it takes no pooled connection), and reopened if it breaks.
func (b *Backend) WaitFeed(ctx context.Context, after backend.Position) error {
	if b.closed.Load() {
		return fmt.Errorf("pgstore: wait feed: %w", backend.ErrClosed)
	}
	tx, pos, err := parsePosition(after)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	wake := b.lis.subscribe(ctx)
	var ready bool
	if err := b.pool.QueryRow(ctx, b.sql.feedReady, tx, pos).Scan(&ready); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return b.readError(ctx, "wait feed", err)
	}
	if ready {
		return nil
	}
	timer := time.NewTimer(b.cfg.pollInterval)
	defer timer.Stop()
	select {
	case <-wake:
		return nil
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// listener holds the LISTEN connection of a Backend and wakes waiters on
// every notification.
type listener struct {
	pool     *pgxpool.Pool
	channel  string
	interval time.Duration

	mu      sync.Mutex
	wake    chan struct{} // closed and replaced on every notification
	ready   chan struct{} // closed when the first LISTEN attempt has finished
	started bool
	closed  bool
	stop    context.CancelFunc
	done    chan struct{}
}

func newListener(pool *pgxpool.Pool, channel string, interval time.Duration) *listener {
	return &listener{pool: pool, channel: channel, interval: interval, wake: make(chan struct{}), ready: make(chan struct{})}
}

// subscribe starts the listener if needed, waits (bounded by ctx) until
// its first LISTEN has succeeded or failed, and returns the channel that
// the next notification closes.
func (l *listener) subscribe(ctx context.Context) <-chan struct{} {
	l.mu.Lock()
	if !l.started && !l.closed {
		l.started = true
		lctx, cancel := context.WithCancel(context.Background())
		l.stop, l.done = cancel, make(chan struct{})
		go l.run(lctx)
	}
	ready, started := l.ready, l.started
	l.mu.Unlock()
	if started {
		select {
		case <-ready:
		case <-ctx.Done():
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wake
}

func (l *listener) broadcast() {
	l.mu.Lock()
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

func (l *listener) markReady() {
	l.mu.Lock()
	select {
	case <-l.ready:
	default:
		close(l.ready)
	}
	l.mu.Unlock()
}

func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	defer l.markReady()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, l.pool.Config().ConnConfig)
		if err == nil {
			if _, err = conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
				closeConn(conn)
			}
		}
		if err != nil {
			l.markReady() // waiters fall back to polling
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, l.interval)
			continue
		}
		backoff = 50 * time.Millisecond
		l.markReady()
		l.broadcast() // notifications may have been lost while there was no connection
		for {
			if _, err := conn.WaitForNotification(ctx); err != nil {
				break
			}
			l.broadcast()
		}
		closeConn(conn)
	}
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// close stops the listener and waits for it.
func (l *listener) close() {
	l.mu.Lock()
	l.closed = true
	stop, done := l.stop, l.done
	l.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// LoadCheckpoint returns the position saved under name, or "" if none was.
// One round trip.
func (b *Backend) LoadCheckpoint(ctx context.Context, name string) (backend.Position, error) {
	if b.closed.Load() {
		return "", fmt.Errorf("pgstore: load checkpoint %q: %w", name, backend.ErrClosed)
	}
	if err := checkText("checkpoint name", name); err != nil {
		return "", err
	}
	var p string
	err := b.pool.QueryRow(ctx, b.sql.loadPoint, name).Scan(&p)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", b.readError(ctx, fmt.Sprintf("load checkpoint %q", name), err)
	}
	return backend.Position(p), nil
}

// SaveCheckpoint stores pos under name, replacing what was saved before
// (an upsert on the checkpoints table). One round trip.
func (b *Backend) SaveCheckpoint(ctx context.Context, name string, pos backend.Position) error {
	if b.closed.Load() {
		return fmt.Errorf("pgstore: save checkpoint %q: %w", name, backend.ErrClosed)
	}
	if err := checkText("checkpoint name", name); err != nil {
		return err
	}
	if err := checkText("checkpoint position", string(pos)); err != nil {
		return err
	}
	if _, err := b.pool.Exec(ctx, b.sql.savePoint, name, string(pos)); err != nil {
		return b.readError(ctx, fmt.Sprintf("save checkpoint %q", name), err)
	}
	return nil
}

// checkText refuses what a PostgreSQL text column cannot hold: invalid
// UTF-8 and NUL.
func checkText(what, s string) error {
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("pgstore: %s %q: want UTF-8 without NUL bytes", what, truncate(s))
	}
	return nil
}
