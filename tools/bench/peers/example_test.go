package peers_test

import (
	"context"
	"fmt"

	"github.com/aggregatekit/eventsourcing/tools/bench/peers/internal/bank"
)

// Every library runs the same operations; this is what one op of each
// workload does, for each of them.
func Example() {
	ctx := context.Background()
	libs, err := newLibraries()
	if err != nil {
		panic(err)
	}
	for _, lib := range libs {
		st, err := lib.NewStore()
		if err != nil {
			panic(err)
		}
		id := bank.NewID()
		_ = st.Seed(ctx, id, 1000)                   // setup of BenchmarkCommand1000
		_ = st.Command(ctx, id, 1)                   // its op
		balance, version, err := st.Rebuild(ctx, id) // the op of BenchmarkRebuild10000
		fmt.Println(lib.Name(), balance, version, err)
	}
	// Output:
	// us 28001 1001 <nil>
	// us-generated 28001 1001 <nil>
	// us-define 28001 1001 <nil>
	// us-generated-gojson 28001 1001 <nil>
	// hallgren 28001 1001 <nil>
	// eventhorizon 28001 1001 <nil>
	// eventhorizon-json 28001 1001 <nil>
	// goes 28001 1001 <nil>
	// goes-json 28001 1001 <nil>
}
