package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/aggregatekit/eventsourcing/backend"
)

// ReadFeed yields every commit after the position after, in the order they
// were committed, up to the last commit visible when it reads its last
// batch. Because SQLite runs one write transaction at a time, event rows
// get increasing positions in commit order and a commit's rows become
// visible together: a reader never sees a later commit before an earlier
// one, so the feed never skips one. A commit's position is that of its
// last event row, as 20 decimal digits.
//
// It reads WithBatchSize event rows per query and releases the connection
// before yielding; a commit longer than a batch is completed from the next
// one. A position that is not 20 digits, or that falls inside a commit,
// yields an error matching backend.ErrInvalidPosition; rows that do not
// form whole commits yield a *backend.CorruptError.
func (b *Backend) ReadFeed(ctx context.Context, after backend.Position) iter.Seq2[backend.FeedCommit, error] {
	return func(yield func(backend.FeedCommit, error) bool) {
		const op = "read feed"
		if b.closed.Load() {
			yield(backend.FeedCommit{}, b.closedErr(op))
			return
		}
		from, err := decodePosition(after)
		if err != nil {
			yield(backend.FeedCommit{}, err)
			return
		}
		g := grouper{from: from}
		for {
			if err := ctx.Err(); err != nil {
				yield(backend.FeedCommit{}, fmt.Errorf("sqlitestore: %s: %w", op, err))
				return
			}
			n, done, err := b.feedBatch(ctx, &g)
			// The commits completed before a failure are yielded first.
			for _, c := range done {
				if err := ctx.Err(); err != nil {
					yield(backend.FeedCommit{}, fmt.Errorf("sqlitestore: %s: %w", op, err))
					return
				}
				if !yield(c, nil) {
					return
				}
			}
			if err != nil {
				var ce *backend.CorruptError
				if errors.As(err, &ce) || errors.Is(err, backend.ErrInvalidPosition) {
					err = fmt.Errorf("sqlitestore: %s: %w", op, err)
				} else {
					err = b.wrap(ctx, op, err)
				}
				yield(backend.FeedCommit{}, err)
				return
			}
			if n < b.cfg.batchSize {
				if g.open != nil {
					// The last commit visible has no last event.
					yield(backend.FeedCommit{}, g.broken(g.open.Records[len(g.open.Records)-1].Sequence, g.last, "the commit's last events are missing"))
				}
				return
			}
		}
	}
}

// grouper assembles event rows, in position order, into commits.
type grouper struct {
	from  int64 // the position read after
	last  int64 // position of the last row read
	rows  int   // rows read so far
	open  *backend.Commit
	first int64 // commit_first and commit_last of the open commit
	end   int64
	md    metaDecoder
}

func (g *grouper) broken(seq, pos int64, reason string) error {
	var s backend.StreamID
	if g.open != nil {
		s = g.open.Stream
	}
	return corrupt(s, seq, pos, reason, nil)
}

// add takes the next row; it returns a commit when the row completes one.
func (g *grouper) add(pos int64, typ, key string, seq, first, last int64, id, etype string, data []byte, ts string, meta *string) (*backend.FeedCommit, error) {
	stream := backend.StreamID{AggregateType: typ, Key: key}
	g.rows++
	g.last = pos
	if first < 1 || last < first || seq < first || seq > last {
		return nil, corrupt(stream, seq, pos, fmt.Sprintf("sequence %d outside its commit's range %d to %d", seq, first, last), nil)
	}
	if g.open == nil {
		if seq != first {
			if g.rows == 1 && g.from > 0 {
				return nil, fmt.Errorf("%w: position %d is inside a commit of %s (its event %d), not at the end of one", backend.ErrInvalidPosition, g.from, stream, seq)
			}
			return nil, corrupt(stream, seq, pos, fmt.Sprintf("the commit's first events (from %d) are missing", first), nil)
		}
		g.open = &backend.Commit{Stream: stream, Expected: first - 1, ID: id, Records: make([]backend.Record, 0, last-first+1)}
		g.first, g.end = first, last
	} else {
		prev := g.open.Records[len(g.open.Records)-1].Sequence
		if stream != g.open.Stream || first != g.first || last != g.end || id != g.open.ID || seq != prev+1 {
			return nil, corrupt(g.open.Stream, prev, pos, fmt.Sprintf("the commit of events %d to %d is cut short by another row", g.first, g.end), nil)
		}
	}
	r, err := decodeRecord(stream, seq, id, etype, data, ts, meta, &g.md)
	if err != nil {
		return nil, corrupt(stream, seq, pos, err.Error(), nil)
	}
	g.open.Records = append(g.open.Records, r)
	if seq < last {
		return nil, nil
	}
	c := &backend.FeedCommit{Commit: *g.open, Position: encodePosition(pos)}
	g.open = nil
	return c, nil
}

// feedBatch reads the next batch of rows after g's last one into g, and
// returns how many rows it read and the commits they completed.
func (b *Backend) feedBatch(ctx context.Context, g *grouper) (int, []backend.FeedCommit, error) {
	after := g.from
	if g.rows > 0 {
		after = g.last
	}
	rows, err := b.st.feed.QueryContext(ctx, after, b.cfg.batchSize)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	var done []backend.FeedCommit
	n := 0
	for rows.Next() {
		var (
			pos, seq, first, last   int64
			typ, key, id, etype, ts string
			data                    []byte
			meta                    *string
		)
		if err := rows.Scan(&pos, &typ, &key, &seq, &first, &last, &id, &etype, &data, &ts, &meta); err != nil {
			return n, done, corrupt(backend.StreamID{}, 0, pos, "a column has the wrong type", err)
		}
		n++
		c, err := g.add(pos, typ, key, seq, first, last, id, etype, data, ts, meta)
		if err != nil {
			return n, done, err
		}
		if c != nil {
			done = append(done, *c)
		}
	}
	if err := rows.Err(); err != nil {
		if sqliteCode(err) == sqlite3.SQLITE_CORRUPT {
			return n, done, corrupt(backend.StreamID{}, 0, 0, "SQLite reports the database file damaged", err)
		}
		return n, done, err
	}
	return n, done, nil
}

// WaitFeed returns nil as soon as a commit after the position after is
// stored: at once if one is, when this Backend commits one, or at the next
// poll (WithPollInterval) for commits of other processes and Backends. It
// returns ctx's error when ctx ends first, and an error matching
// backend.ErrClosed if the Backend is closed.
func (b *Backend) WaitFeed(ctx context.Context, after backend.Position) error {
	const op = "wait for the feed"
	from, err := decodePosition(after)
	if err != nil {
		return err
	}
	if b.closed.Load() {
		return b.closedErr(op)
	}
	b.mu.Lock()
	changed := b.changed // taken before the check, so no commit is missed
	b.mu.Unlock()
	var last int64
	if err := b.st.last.QueryRowContext(ctx).Scan(&last); err != nil {
		return b.wrap(ctx, op, err)
	}
	if last > from {
		return nil
	}
	t := time.NewTimer(b.cfg.pollInterval)
	defer t.Stop()
	select {
	case <-changed:
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sqlitestore: %s: %w", op, ctx.Err())
	case <-b.done:
		return b.closedErr(op)
	}
}

// LoadCheckpoint returns the position saved under name, or "" if none is.
func (b *Backend) LoadCheckpoint(ctx context.Context, name string) (backend.Position, error) {
	op := fmt.Sprintf("load checkpoint %q", name)
	if b.closed.Load() {
		return "", b.closedErr(op)
	}
	var p string
	err := b.st.loadCheckpoint.QueryRowContext(ctx, name).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", b.wrap(ctx, op, err)
	}
	return backend.Position(p), nil
}

// SaveCheckpoint saves pos under name, replacing the position saved
// before, in one write transaction.
func (b *Backend) SaveCheckpoint(ctx context.Context, name string, pos backend.Position) error {
	op := fmt.Sprintf("save checkpoint %q", name)
	if b.closed.Load() {
		return b.closedErr(op)
	}
	err := b.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, b.st.saveCheckpoint).ExecContext(ctx, name, string(pos))
		return err
	})
	return b.wrap(ctx, op, err)
}
