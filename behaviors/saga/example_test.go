package saga_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/saga"
)

// A two-step saga over two participant actors: the second step refuses,
// so the first is compensated.
func Example() {
	sys, _ := actor.NewSystem(actor.Config{Name: "example", Logger: zap.NewNop()})
	defer sys.Shutdown(context.Background())
	dir, _ := os.MkdirTemp("", "saga-example-")
	defer os.RemoveAll(dir)

	stock := 10
	inventory, _ := sys.Spawn(saga.ParticipantProps(saga.NewBarrier(), saga.Handler{
		Action:     func(saga.Request) ([]byte, error) { stock--; return nil, nil },
		Compensate: func(saga.Request) error { stock++; return nil },
	}))
	payment, _ := sys.Spawn(saga.ParticipantProps(saga.NewBarrier(), saga.Handler{
		Action: func(req saga.Request) ([]byte, error) {
			if string(req.Input) == "declined" {
				return nil, saga.Failf("card declined")
			}
			return []byte("txn-1"), nil
		},
		Compensate: func(saga.Request) error { return nil },
	}))

	m, err := saga.Start(sys, saga.Config{
		Dir: filepath.Join(dir, "saga"),
		Definitions: []*saga.Definition{{Name: "order", Steps: []saga.Step{
			{Name: "Reserve inventory", Compensation: "Release inventory", Participant: saga.To(inventory)},
			{Name: "Process payment", Compensation: "Refund payment", Participant: saga.To(payment)},
		}}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close(context.Background())

	ctx := context.Background()
	ok, _ := m.Run(ctx, "order", "order-1", []byte("visa"))
	fmt.Println("order-1:", ok.Status, "stock", stock)
	bad, _ := m.Run(ctx, "order", "order-2", []byte("declined"))
	fmt.Println("order-2:", bad.Status, "stock", stock)
	history, _ := m.History("order-2")
	for _, ev := range history {
		fmt.Println(" ", ev)
	}
	// Output:
	// order-1: committed stock 9
	// order-2: compensated stock 9
	//   order-2 STARTED
	//   order-2 SENT step 0 (Reserve inventory) action attempt 1
	//   order-2 DONE step 0 (Reserve inventory) action attempt 1
	//   order-2 SENT step 1 (Process payment) action attempt 1
	//   order-2 FAILED step 1 (Process payment) action attempt 1 business failure: card declined
	//   order-2 SENT step 0 (Release inventory) compensation attempt 1
	//   order-2 DONE step 0 (Release inventory) compensation attempt 1
	//   order-2 COMPENSATED
}
