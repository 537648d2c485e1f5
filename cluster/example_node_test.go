package cluster_test

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/cluster"
)

// Two nodes: spawn an actor on the other node, ask it, then crash that node
// and see the monitor fire with reason noconnection.
func ExampleNode() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := func(name string, seeds ...string) *cluster.Node {
		cfg := cluster.Local(name)
		cfg.Logger, cfg.Secret, cfg.Seeds = zap.NewNop(), "cookie", seeds
		n, err := cluster.NewNode(cfg)
		if err != nil {
			panic(err)
		}
		if err := n.Start(ctx); err != nil {
			panic(err)
		}
		return n
	}
	n1 := start("n1")
	defer n1.Leave(ctx)
	n2 := start("n2", n1.GossipAddress())

	_ = n2.RegisterKind("greeter", func(args []byte) (*actor.Props, error) {
		return actor.PropsFromFunc(func(c *actor.Context) {
			if m, ok := c.Message().(*wrapperspb.StringValue); ok {
				c.Reply(wrapperspb.String("hello, " + m.Value))
			}
		}), nil
	})
	// n2's Start returns once it has joined; n1 learns of it by gossip.
	for {
		if m, ok := n1.Member("n2"); ok && m.State == cluster.Alive {
			break
		}
		time.Sleep(time.Millisecond)
	}
	pid, err := n1.SpawnOn(ctx, "n2", "greeter", "greeter", nil)
	if err != nil {
		panic(err)
	}
	reply, err := actor.Ask[*wrapperspb.StringValue](ctx, n1.System(), pid, wrapperspb.String("n1"))
	fmt.Println(reply.GetValue(), err)

	downs := make(chan *actor.Down, 1)
	watcher, _ := n1.System().Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.PID:
			c.Monitor(m)
			c.Reply(true)
		case *actor.Down:
			downs <- m
		}
	}))
	_, _ = actor.Ask[bool](ctx, n1.System(), watcher, pid)
	// Wait until n2 has recorded the monitor, then crash n2.
	for {
		if info, ok := n2.System().Info(pid); ok && info.Monitors == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	n2.Crash()
	d := <-downs
	fmt.Println("down:", d.PID.Name(), d.Reason)
	// Output:
	// hello, n1 <nil>
	// down: greeter noconnection
}
