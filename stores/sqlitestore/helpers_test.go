package sqlitestore_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/sqlitestore"
)

// The tests re-execute their own binary as a child process for what needs
// another process: a writer killed with SIGKILL, a process holding the
// database file locked, an unprivileged user. The variable names the role.
const childEnv = "SQLITESTORE_TEST_CHILD"

func TestMain(m *testing.M) {
	role := os.Getenv(childEnv)
	if role == "" {
		os.Exit(m.Run())
	}
	path := os.Getenv("SQLITESTORE_TEST_PATH")
	var err error
	switch role {
	case "writer":
		err = childWriter(path)
	case "lock-exclusive":
		err = childLock(path, true)
	case "lock-write":
		err = childLock(path, false)
	case "open":
		err = childOpen(path)
	default:
		err = fmt.Errorf("unknown child role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// child starts this test binary in role on path.
func child(t *testing.T, role, path string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, "SQLITESTORE_TEST_PATH="+path)
	cmd.Stderr = os.Stderr
	return cmd
}

// childWriter appends commits of 1 to 10 events to 4 streams from 4
// goroutines until it is killed, and prints one line per acknowledged
// commit: "ack <stream key> <first> <last> <commit ID>".
func childWriter(path string) error {
	ctx := context.Background()
	b, err := sqlitestore.Open(ctx, path)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		go func() {
			s := backend.StreamID{AggregateType: "Crash", Key: "w" + strconv.Itoa(w)}
			head := int64(0)
			for r, err := range b.Load(ctx, s, 0) {
				if err != nil {
					errs <- err
					return
				}
				head = r.Sequence
			}
			for i := 0; ; i++ {
				c := crashCommit(s, head, 1+i%10, fmt.Sprintf("%s-%d-%d", s.Key, os.Getpid(), i))
				if err := b.Append(ctx, c); err != nil {
					errs <- err
					return
				}
				head = c.Last()
				mu.Lock()
				fmt.Fprintf(out, "ack %s %d %d %s\n", s.Key, c.First(), c.Last(), c.ID)
				err := out.Flush() // acknowledged: the parent may count it
				mu.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	return <-errs
}

// crashCommit returns a commit of n events whose data name the commit and
// their place in it, with a payload large enough to span pages.
func crashCommit(s backend.StreamID, expected int64, n int, id string) backend.Commit {
	c := backend.Commit{Stream: s, Expected: expected, ID: id}
	pad := strings.Repeat("x", 700)
	for i := 0; i < n; i++ {
		c.Records = append(c.Records, backend.Record{Stream: s, Sequence: expected + int64(i) + 1, EventType: "Wrote",
			Data:      []byte(fmt.Sprintf(`{"commit":%q,"i":%d,"n":%d,"pad":%q}`, id, i, n, pad)),
			Timestamp: time.Now(), Metadata: backend.Metadata{"writer": s.Key}, CommitID: id})
	}
	return c
}

// childLock holds a lock on the database, prints "locked", and keeps it
// until its standard input closes: an exclusive lock on the file
// (locking_mode EXCLUSIVE and a write transaction: no other connection can
// read or write), or the write lock of a long write transaction (others
// can still read).
func childLock(path string, exclusive bool) error {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(context.Background())
	if err != nil {
		return err
	}
	defer conn.Close()
	qs := []string{`BEGIN IMMEDIATE`}
	if exclusive {
		qs = []string{`PRAGMA locking_mode = EXCLUSIVE`, `BEGIN EXCLUSIVE`, `CREATE TABLE IF NOT EXISTS holder (x)`}
	}
	for _, q := range qs {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	_, err = conn.ExecContext(context.Background(), `ROLLBACK`)
	return err
}

// childOpen opens the database and prints which of the package's errors
// the result matches, for a test that needs another user.
func childOpen(path string) error {
	b, err := sqlitestore.Open(context.Background(), path, sqlitestore.WithBusyTimeout(100*time.Millisecond))
	if err == nil {
		_ = b.Close()
	}
	fmt.Println(describe(err))
	return nil
}
