package peers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aggregatekit/eventsourcing/tools/bench/peers/internal/bank"
	"github.com/aggregatekit/eventsourcing/tools/bench/peers/internal/hallgren"
	"github.com/aggregatekit/eventsourcing/tools/bench/peers/internal/looplab"
	"github.com/aggregatekit/eventsourcing/tools/bench/peers/internal/modernice"
	"github.com/aggregatekit/eventsourcing/tools/bench/peers/internal/ours"
)

// newLibraries returns every library under comparison, ours first.
func newLibraries() ([]bank.Library, error) {
	var libs []bank.Library
	for _, mode := range []ours.Mode{ours.Reflection, ours.Generated, ours.Define, ours.GeneratedGoJSON} {
		l, err := ours.New(mode)
		if err != nil {
			return nil, err
		}
		libs = append(libs, l)
	}
	return append(libs,
		hallgren.New(),
		looplab.New(false), looplab.New(true),
		modernice.New(false), modernice.New(true),
	), nil
}

// libraries is newLibraries for tests and benchmarks.
func libraries(tb testing.TB) []bank.Library {
	tb.Helper()
	libs, err := newLibraries()
	if err != nil {
		tb.Fatal(err)
	}
	return libs
}

// storedData is implemented by the stores that keep encoded bytes.
type storedData interface {
	StoredData(ctx context.Context, id bank.ID) ([][]byte, error)
}

// encodes reports whether a library's store keeps events as JSON bytes.
func encodes(name string) bool {
	return name != "eventhorizon" && name != "goes"
}

// retries reports whether a library's command on a kept instance reloads and
// retries after a conflict (ours does; the peers report the conflict).
func retries(name string) bool { return strings.HasPrefix(name, "us") }
