package backendtest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aggregatekit/eventsourcing/backend"
)

// RunCheckpoints runs the Checkpoints conformance suite. newStore is called
// once per subtest.
func RunCheckpoints(t *testing.T, newStore func(t *testing.T) backend.Checkpoints) {
	t.Helper()
	ctx := context.Background()
	load := func(t *testing.T, c backend.Checkpoints, name string) backend.Position {
		t.Helper()
		p, err := c.LoadCheckpoint(ctx, name)
		if err != nil {
			t.Fatalf("LoadCheckpoint(%q): %v", name, err)
		}
		return p
	}
	save := func(t *testing.T, c backend.Checkpoints, name string, p backend.Position) {
		t.Helper()
		if err := c.SaveCheckpoint(ctx, name, p); err != nil {
			t.Fatalf("SaveCheckpoint(%q, %q): %v", name, p, err)
		}
	}

	t.Run("RoundTrip", func(t *testing.T) {
		c := newStore(t)
		name := uniqueStream(t, "cp").Key
		if p := load(t, c, name); p != "" {
			t.Fatalf("a checkpoint never saved loads as %q, want \"\"", p)
		}
		for _, p := range []backend.Position{"00000000000000000001", "00000000000000000002/00000000000000000009", ""} {
			save(t, c, name, p)
			if got := load(t, c, name); got != p {
				t.Fatalf("saved %q, loaded %q", p, got)
			}
		}
	})

	t.Run("NamesAreSeparate", func(t *testing.T) {
		c := newStore(t)
		base := uniqueStream(t, "cp").Key
		names := []string{base + "-a", base + "-b", base + "/ünï code.$x", base + strings.Repeat("n", 200)}
		for i, n := range names {
			save(t, c, n, backend.Position(fmt.Sprintf("%020d", i)))
		}
		for i, n := range names {
			if got := load(t, c, n); got != backend.Position(fmt.Sprintf("%020d", i)) {
				t.Fatalf("%q loads %q", n, got)
			}
		}
	})

	t.Run("ConcurrentSaves", func(t *testing.T) {
		c := newStore(t)
		name := uniqueStream(t, "cp").Key
		racingWriters(t, 8, func(w int) error {
			for i := 0; i < 20; i++ {
				if err := c.SaveCheckpoint(ctx, name, backend.Position(fmt.Sprintf("%020d", w*100+i))); err != nil {
					return err
				}
			}
			return nil
		})
		got := load(t, c, name)
		if len(got) != 20 || !strings.HasSuffix(string(got), "19") {
			t.Fatalf("after racing saves the checkpoint is %q, want the last save of some writer", got)
		}
	})
}
