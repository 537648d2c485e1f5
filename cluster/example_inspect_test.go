package cluster_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/cluster"
	"github.com/distributed-go/distributed/cluster/clusterpb"
)

// Inspect a node's actors and kill one through its inspection service; the
// same calls work for any member of the cluster.
func ExampleNode_Inspect() {
	cfg := cluster.Local("n1")
	cfg.Logger = zap.NewNop()
	node, err := cluster.NewNode(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer node.Stop()
	if err := node.ServeInspection(cluster.InspectOptions{AllowControl: true}); err != nil {
		log.Fatal(err)
	}
	pid, _ := node.System().SpawnNamed(actor.PropsFromFunc(func(c *actor.Context) {
		switch c.Message().(type) {
		case *actor.Started:
			c.SetInfo(func() string { return "serving" })
		case string:
			c.Reply("pong")
		}
	}, actor.WithKind("service")), "svc")
	if _, err := actor.Ask[string](ctx, node.System(), pid, "ping"); err != nil { // it has started
		log.Fatal(err)
	}

	report, err := node.Inspect(ctx, "n1")
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range report.GetProcesses() {
		if p.GetKind() == "service" {
			fmt.Println(p.GetPid().GetName(), p.GetInfo())
		}
	}
	fmt.Println(node.KillActor(ctx, pid))
	_, err = node.Control(ctx, "n1", &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Partition{
		Partition: &clusterpb.PartitionNodes{Groups: []*clusterpb.NodeGroup{{Nodes: []string{"n1"}}, {Nodes: []string{"n2"}}}}}})
	fmt.Println(err, node.Faults())
	// Output:
	// svc serving
	// <nil>
	// <nil> partition {n1} | {n2}
}
