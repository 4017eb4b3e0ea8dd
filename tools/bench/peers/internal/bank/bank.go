// Package bank is the contract every library under comparison implements
// for the peer benchmarks: a bank account with Deposit and Withdraw commands
// and Deposited and Withdrawn events, each carrying an int64 amount and a
// string reference. The benchmarks drive a Library through this package only,
// so every library runs exactly the same workload.
package bank

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// ErrInsufficientFunds is what every library's Withdraw handler returns when
// the balance does not cover the amount.
var ErrInsufficientFunds = errors.New("insufficient funds")

// ErrInvalidAmount is what every library's handlers return for an amount that
// is not positive.
var ErrInvalidAmount = errors.New("amount must be positive")

// ID names one account in every form a library wants it: eventhorizon and
// goes key aggregates by UUID, we and hallgren by string. Both forms are
// computed before a benchmark's timed loop.
type ID struct {
	UUID uuid.UUID
	Str  string
}

// NewID returns a random account ID.
func NewID() ID {
	u := uuid.New()
	return ID{UUID: u, Str: u.String()}
}

// IDs returns n random account IDs.
func IDs(n int) []ID {
	out := make([]ID, n)
	for i := range out {
		out[i] = NewID()
	}
	return out
}

// Library is one event-sourcing library (or one configuration of it) under
// comparison. Implementations are safe for concurrent use if their stores
// are; the benchmarks use them from one goroutine.
type Library interface {
	// Name is the sub-benchmark name: "us", "hallgren", ...
	Name() string
	// NewInstances constructs n ready-to-use account instances for id (what
	// the library does before it can load a stream: allocation and
	// wire-up), and returns the last one. Every instance is allocated on
	// the heap, as it escapes through the result.
	NewInstances(id ID, n int) any
	// NewStore returns an empty in-memory event store of the library.
	NewStore() (Store, error)
}

// Store is one library's in-memory event store with the account domain on
// top of it.
type Store interface {
	// Seed appends n events to the empty stream of id, alternating
	// Deposited (amount 10 + i%100) and Withdrawn (amount 3), in commits of
	// at most 100 events, through the library's own save path. It is setup,
	// never timed.
	Seed(ctx context.Context, id ID, n int) error
	// Command runs one Deposit on a fresh instance for id: construct and wire
	// it, load its stream, decide, commit, apply.
	Command(ctx context.Context, id ID, amount int64) error
	// Rebuild constructs a fresh instance for id and loads its stream,
	// returning the balance and the version (number of events applied).
	Rebuild(ctx context.Context, id ID) (balance int64, version int, err error)
	// Open returns a loaded instance of id to keep between commands.
	Open(ctx context.Context, id ID) (Account, error)
}

// Account is an instance kept between commands (the warm workload).
type Account interface {
	// Deposit handles one Deposit command on the kept instance and commits it.
	Deposit(ctx context.Context, amount int64) error
	// Withdraw handles one Withdraw command; it fails with an error matching
	// ErrInsufficientFunds and stores nothing if the balance is too low.
	Withdraw(ctx context.Context, amount int64) error
	// Balance returns the balance the instance holds.
	Balance() int64
	// Version returns the number of events the instance has applied.
	Version() int
}

// Reference is the string every command carries into its event.
const Reference = "wire transfer 2024-0001"

// SeedEvent describes event i (from 0) of a seeded history: a deposit of
// 10 + i%100 for even i, a withdrawal of 3 for odd i.
func SeedEvent(i int) (deposit bool, amount int64) {
	if i%2 == 0 {
		return true, int64(10 + i%100)
	}
	return false, 3
}

// SeedBalance returns the balance after the first n seeded events.
func SeedBalance(n int) int64 {
	var b int64
	for i := 0; i < n; i++ {
		if dep, amt := SeedEvent(i); dep {
			b += amt
		} else {
			b -= amt
		}
	}
	return b
}

// Check validates an amount the way every library's handlers do.
func Check(amount int64) error {
	if amount <= 0 {
		return fmt.Errorf("%w, not %d", ErrInvalidAmount, amount)
	}
	return nil
}
