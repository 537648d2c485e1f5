package supervision_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/supervision"
)

// echo is a worker that answers every string with its own name.
func echo(name string) *actor.Props {
	return actor.PropsFromFunc(func(c *actor.Context) {
		if _, ok := c.Message().(string); ok {
			c.Reply(name)
		}
	})
}

// waitFor polls cond; examples use it to wait for a restart to finish.
func waitFor(cond func() bool) {
	for deadline := time.Now().Add(5 * time.Second); !cond() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
}

// A rest_for_one supervisor: when "cache" is killed, the child started
// after it ("api") is restarted with it, and "db" is left alone.
func Example() {
	sys, _ := actor.NewSystem(actor.Config{Logger: zap.NewNop()})
	defer sys.Shutdown(context.Background())
	ctx := context.Background()

	sup, err := supervision.Start(sys, supervision.Spec{
		Strategy:    supervision.RestForOne,
		MaxRestarts: 3, Period: time.Minute,
		Children: []supervision.ChildSpec{
			{ID: "db", Props: echo("db")},
			{ID: "cache", Props: echo("cache")},
			{ID: "api", Props: echo("api")},
		},
	}, "backend")
	if err != nil {
		fmt.Println(err)
		return
	}
	before, _ := supervision.WhichChildren(ctx, sys, sup) // newest first: api, cache, db
	_ = sys.Kill(before[1].PID)
	waitFor(func() bool {
		now, _ := supervision.WhichChildren(ctx, sys, sup)
		return now[1].PID != nil && !now[1].PID.Equal(before[1].PID)
	})

	after, _ := supervision.WhichChildren(ctx, sys, sup)
	for i, c := range after {
		reply, _ := actor.Ask[string](ctx, sys, c.PID, "who?")
		fmt.Printf("%s: answers %q, new pid %v, restarts %d\n",
			c.ID, reply, !c.PID.Equal(before[i].PID), c.Restarts)
	}
	// Output:
	// api: answers "api", new pid true, restarts 1
	// cache: answers "cache", new pid true, restarts 1
	// db: answers "db", new pid false, restarts 0
}

// A simple_one_for_one supervisor is a pool of children made from one
// template; StartChildWith passes each its own argument.
func ExampleStartChildWith() {
	sys, _ := actor.NewSystem(actor.Config{Logger: zap.NewNop()})
	defer sys.Shutdown(context.Background())
	ctx := context.Background()

	pool, _ := supervision.Start(sys, supervision.Spec{
		Strategy: supervision.SimpleOneForOne,
		Children: []supervision.ChildSpec{{
			ID:      "conn",
			Restart: supervision.Transient,
			Factory: func(arg any) (*actor.Props, error) {
				return echo("conn to " + arg.(string)), nil
			},
		}},
	}, "pool")
	for _, host := range []string{"alpha", "beta"} {
		pid, err := supervision.StartChildWith(ctx, sys, pool, host)
		if err != nil {
			fmt.Println(err)
			return
		}
		reply, _ := actor.Ask[string](ctx, sys, pid, "who?")
		fmt.Println(reply)
	}
	n, _ := supervision.CountChildren(ctx, sys, pool)
	fmt.Printf("%+v\n", n)
	// Output:
	// conn to alpha
	// conn to beta
	// {Specs:1 Active:2 Supervisors:0 Workers:2}
}

// Tree walks a supervision tree, for observers and tools.
func ExampleTree() {
	sys, _ := actor.NewSystem(actor.Config{Logger: zap.NewNop()})
	defer sys.Shutdown(context.Background())

	backend, _ := supervision.Props(supervision.Spec{
		Strategy: supervision.OneForAll,
		Children: []supervision.ChildSpec{{ID: "db", Props: echo("db")}, {ID: "cache", Props: echo("cache")}},
	})
	root, _ := supervision.Start(sys, supervision.Spec{Children: []supervision.ChildSpec{
		{ID: "backend", Type: supervision.Supervisor, Props: backend},
		{ID: "jobs", Props: echo("jobs"), Restart: supervision.Transient},
	}}, "root")

	tree, _ := supervision.Tree(context.Background(), sys, root)
	tree.Walk(func(n *supervision.TreeNode, depth int) {
		line := strings.Repeat("  ", depth) + n.ID + " (" + n.Type.String()
		if n.Type == supervision.Supervisor {
			line += ", " + n.Strategy.String()
		} else {
			line += ", " + n.Restart.String()
		}
		fmt.Println(line + ")")
	})
	// Output:
	// root (supervisor, one_for_one)
	//   backend (supervisor, one_for_all)
	//     db (worker, permanent)
	//     cache (worker, permanent)
	//   jobs (worker, transient)
}

// Specs are validated before anything is spawned; errors name the field.
func ExampleProps() {
	_, err := supervision.Props(supervision.Spec{Children: []supervision.ChildSpec{
		{ID: "db", Props: echo("db")},
		{ID: "db", Props: echo("db")},
	}})
	fmt.Println(err)
	_, err = supervision.Props(supervision.Spec{MaxRestarts: 5})
	fmt.Println(err)
	// Output:
	// supervision: children[1].ID "db" is duplicated
	// supervision: Period must be > 0, got 0s
}
