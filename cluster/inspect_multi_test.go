package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/cluster/clusterpb"
)

// Each node has its own Faults, as nodes in separate OS processes do: a
// partition only holds if it is pushed to every node, and a heal must reach
// nodes that the sender sees as dead.
func TestInspectAcrossNodesPartitionAndHeal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var nodes []*Node
	for i, name := range []string{"n1", "n2", "n3"} {
		cfg := Local(name)
		cfg.Logger = testLogger(t)
		if i > 0 {
			cfg.Seeds = []string{nodes[0].GossipAddress()}
		}
		nd := startNode(t, cfg)
		if err := nd.ServeInspection(InspectOptions{AllowControl: i != 2}); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, nd)
	}
	for _, nd := range nodes {
		waitMembers(t, nd, 3)
	}
	n1 := nodes[0]
	reports := n1.InspectAll(ctx)
	if len(reports) != 3 {
		t.Fatalf("%d reports", len(reports))
	}
	for i, r := range reports {
		if r.GetError() != "" || r.GetNode() != nodes[i].Name() || len(r.GetMembers()) != 3 {
			t.Fatalf("report %d: %v", i, r)
		}
	}

	// Kill an actor of n2 from n1; n3 refuses control.
	pid, err := nodes[1].System().Spawn(actor.PropsFromFunc(func(*actor.Context) {}))
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.KillActor(ctx, pid); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the actor on n2 died", 5*time.Second, func() bool { return !nodes[1].System().Alive(pid) })
	if err := n1.KillActor(ctx, pid); !errors.Is(err, ErrUnknownActor) {
		t.Fatalf("second kill: %v", err)
	}
	pid3, _ := nodes[2].System().Spawn(actor.PropsFromFunc(func(*actor.Context) {}))
	if err := n1.KillActor(ctx, pid3); !errors.Is(err, ErrControlDisabled) {
		t.Fatalf("kill on n3: %v", err)
	}

	// Partition n1 from n2 and n3. n3 refuses, so only n1 and n2 apply the
	// rule, which is enough: n1 drops what it sends and what it receives.
	part := &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Partition{Partition: &clusterpb.PartitionNodes{
		Groups: []*clusterpb.NodeGroup{{Nodes: []string{"n1"}}, {Nodes: []string{"n2", "n3"}}}}}}
	errs := n1.ControlAll(ctx, part)
	if len(errs) != 1 || !errors.Is(errs["n3"], ErrControlDisabled) {
		t.Fatalf("partition errors: %v", errs)
	}
	waitFor(t, "n1 sees n2 dead", 10*time.Second, func() bool {
		m, _ := n1.Member("n2")
		return m.State == Dead
	})
	heal := &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Heal{Heal: &clusterpb.HealPartition{}}}
	hctx, hcancel := context.WithTimeout(ctx, 3*time.Second)
	errs = n1.ControlAll(hctx, heal)
	hcancel()
	if len(errs) != 1 || errs["n3"] == nil {
		t.Fatalf("heal errors: %v", errs)
	}
	if nodes[1].Faults().Cut("n2", "n1") {
		t.Fatal("n2 did not heal although n1 saw it dead")
	}
	waitMembers(t, n1, 3)
	waitMembers(t, nodes[1], 3)
}
