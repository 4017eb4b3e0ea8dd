package peers_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aggregatekit/eventsourcing/tools/bench/peers/internal/bank"
)

// TestSameBehaviour drives every library through the workloads' operations
// and checks that each computes the same balances and versions, so that the
// benchmarks compare the same work.
func TestSameBehaviour(t *testing.T) {
	ctx := context.Background()
	const n = 1001
	for _, lib := range libraries(t) {
		t.Run(lib.Name(), func(t *testing.T) {
			lib.NewInstances(bank.NewID(), 3)
			st, err := lib.NewStore()
			if err != nil {
				t.Fatal(err)
			}
			seeded := bank.NewID()
			if err := st.Seed(ctx, seeded, n); err != nil {
				t.Fatal(err)
			}
			want := bank.SeedBalance(n)
			check := func(id bank.ID, balance int64, version int) {
				t.Helper()
				b, v, err := st.Rebuild(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if b != balance || v != version {
					t.Fatalf("rebuilt balance %d version %d, want %d and %d", b, v, balance, version)
				}
			}
			check(seeded, want, n)

			fresh := bank.NewID()
			if err := st.Command(ctx, fresh, 5); err != nil {
				t.Fatal(err)
			}
			check(fresh, 5, 1)
			if err := st.Command(ctx, seeded, 5); err != nil {
				t.Fatal(err)
			}
			check(seeded, want+5, n+1)
			if err := st.Command(ctx, bank.NewID(), 0); !errors.Is(err, bank.ErrInvalidAmount) {
				t.Fatalf("deposit of 0: %v, want ErrInvalidAmount", err)
			}

			acct, err := st.Open(ctx, seeded)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				if err := acct.Deposit(ctx, 7); err != nil {
					t.Fatal(err)
				}
			}
			if acct.Balance() != want+26 || acct.Version() != n+4 {
				t.Fatalf("kept instance: balance %d version %d, want %d and %d", acct.Balance(), acct.Version(), want+26, n+4)
			}
			if err := acct.Withdraw(ctx, want+27); !errors.Is(err, bank.ErrInsufficientFunds) {
				t.Fatalf("overdraft: %v, want ErrInsufficientFunds", err)
			}
			if err := acct.Withdraw(ctx, 6); err != nil {
				t.Fatal(err)
			}
			check(seeded, want+20, n+5)
		})
	}
}

// TestStoredJSON checks that the stores said to encode keep the same JSON
// for the same events, and that the stock eventhorizon and goes stores keep
// no bytes at all (which is why they are not the fair comparison).
func TestStoredJSON(t *testing.T) {
	ctx := context.Background()
	for _, lib := range libraries(t) {
		t.Run(lib.Name(), func(t *testing.T) {
			st, err := lib.NewStore()
			if err != nil {
				t.Fatal(err)
			}
			id := bank.NewID()
			if err := st.Seed(ctx, id, 2); err != nil {
				t.Fatal(err)
			}
			sd, ok := st.(storedData)
			if !ok {
				t.Fatalf("%T has no StoredData", st)
			}
			data, err := sd.StoredData(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !encodes(lib.Name()) {
				if data != nil {
					t.Fatalf("stock store keeps bytes: %q", data)
				}
				return
			}
			want := []string{
				fmt.Sprintf(`{"Amount":10,"Reference":%q}`, bank.Reference),
				fmt.Sprintf(`{"Amount":3,"Reference":%q}`, bank.Reference),
			}
			if len(data) != len(want) {
				t.Fatalf("%d events stored, want %d", len(data), len(want))
			}
			for i := range want {
				if string(data[i]) != want[i] {
					t.Errorf("event %d stored as %s, want %s", i+1, data[i], want[i])
				}
			}
		})
	}
}

// TestConflict opens two instances of one stream and commands both: the
// store must refuse the stale second one (the peers report it; ours reloads
// and retries), so no library's benchmark skips the concurrency check.
func TestConflict(t *testing.T) {
	ctx := context.Background()
	for _, lib := range libraries(t) {
		t.Run(lib.Name(), func(t *testing.T) {
			st, err := lib.NewStore()
			if err != nil {
				t.Fatal(err)
			}
			id := bank.NewID()
			if err := st.Seed(ctx, id, 10); err != nil {
				t.Fatal(err)
			}
			a, err := st.Open(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			b, err := st.Open(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Deposit(ctx, 1); err != nil {
				t.Fatal(err)
			}
			err = b.Deposit(ctx, 2)
			base := bank.SeedBalance(10)
			balance, version, rerr := st.Rebuild(ctx, id)
			if rerr != nil {
				t.Fatal(rerr)
			}
			switch {
			case retries(lib.Name()) && err == nil:
				if balance != base+3 || version != 12 {
					t.Fatalf("after retry: balance %d version %d, want %d and 12", balance, version, base+3)
				}
			case !retries(lib.Name()) && err != nil:
				if balance != base+1 || version != 11 {
					t.Fatalf("after refusal: balance %d version %d, want %d and 11", balance, version, base+1)
				}
			default:
				t.Fatalf("stale command: %v", err)
			}
		})
	}
}
