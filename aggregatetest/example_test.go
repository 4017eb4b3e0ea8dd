package aggregatetest_test

import (
	"context"
	"fmt"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/aggregatetest"
)

// reporter stands in for the *testing.T that a test function receives: it
// prints what the scenario reports.
type reporter struct{ testing.TB }

func (reporter) Helper() {}
func (reporter) Errorf(format string, args ...any) {
	fmt.Printf(format+"\n", args...)
}

// In a test function, t is the *testing.T.
func Example() {
	t := reporter{}
	registry := bankRegistry()

	aggregatetest.New(t, registry, NewAccount).
		Given(Deposited{Amount: 100}).
		When(Withdraw{Amount: 30}).
		Then(Withdrawn{Amount: 30}).
		ThenState(func(t testing.TB, a *Account) {
			if a.Balance != 70 {
				t.Errorf("balance %d, want 70", a.Balance)
			}
		})

	aggregatetest.New(t, registry, NewAccount).
		Given(Deposited{Amount: 10}).
		When(Withdraw{Amount: 30}).
		ThenError(ErrInsufficientFunds)
	fmt.Println("passed")
	// Output: passed
}

// A failure names the history, the commands, the events wanted and
// stored, and the first difference.
func Example_failure() {
	t := reporter{}
	aggregatetest.New(t, bankRegistry(), NewAccount).
		Key("alice").
		Given(Deposited{Amount: 100}).
		When(Withdraw{Amount: 30}).
		Then(Withdrawn{Amount: 20})
	// Output:
	// aggregatetest: Account/alice: events differ
	//   given 1 event:
	//     1. Deposited{Amount: 100}
	//   when 1 command:
	//     1. Withdraw{Amount: 30, At: 0001-01-01T00:00:00Z}
	//   want 1 event:
	//     1. Withdrawn{Amount: 20, At: 0001-01-01T00:00:00Z, Tags: nil}
	//   stored 1 event:
	//     1. Withdrawn{Amount: 30, At: 0001-01-01T00:00:00Z, Tags: nil}
	//   event 1: Withdrawn.Amount: want 20, got 30
}

// A command repeated with the same command ID applies once, also when its
// commit is already in the history.
func ExampleScenario_GivenCommit() {
	t := reporter{}
	ctx := es.WithCommandID(context.Background(), "deposit-7")

	aggregatetest.New(t, bankRegistry(), NewAccount).
		When(Deposit{Amount: 5}).
		WhenContext(ctx, Deposit{Amount: 10}).
		WhenContext(ctx, Deposit{Amount: 10}).
		Then(Deposited{Amount: 5}, Deposited{Amount: 10})

	aggregatetest.New(t, bankRegistry(), NewAccount).
		GivenCommit("deposit-7", Deposited{Amount: 10}).
		WhenContext(ctx, Deposit{Amount: 10}).
		Then()
	fmt.Println("passed")
	// Output: passed
}

// Events of an older schema, as stored, load through the registry's
// upcasters.
func ExampleScenario_GivenStored() {
	t := reporter{}
	registry := es.NewStandardEventRegistry("bank")
	_ = registry.RegisterEventAs(es.VersionedName("Deposited", 2), Deposited{})
	_ = registry.RegisterEvent(Withdrawn{})
	_ = registry.RegisterUpcasters(es.Upcaster{From: "Credit", To: es.VersionedName("Deposited", 2)}) // renamed

	aggregatetest.New(t, registry, NewAccount).
		GivenStored("Credit", []byte(`{"Amount":40}`)).
		When(Withdraw{Amount: 40}).
		Then(Withdrawn{Amount: 40})
	fmt.Println("passed")
	// Output: passed
}
