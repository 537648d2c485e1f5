// Command supervision shows OTP supervision in action: it builds a small
// supervision tree, kills children to show that they are restarted, kills
// one child until its supervisor gives up and escalates, and shuts down.
//
//	go run ./examples/supervision
//
// The supervisors' own log reports (zap, Warn and above) go to stderr.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/supervision"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// service is a worker that says when it starts and stops, and answers pings.
func service(name string, verbose bool) *actor.Props {
	return actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started:
			if verbose {
				fmt.Printf("      [%s] started as %s\n", name, short(c.Self()))
			}
		case *actor.Stopping:
			if verbose {
				fmt.Printf("      [%s] stopping (reason: %s)\n", name, m.Reason)
			}
		case string:
			c.Reply(name + " ok")
		}
	}, actor.WithKind(name))
}

func run() error {
	cfg := zap.NewDevelopmentConfig()
	cfg.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	cfg.DisableStacktrace = true
	cfg.EncoderConfig.TimeKey = ""
	log, err := cfg.Build()
	if err != nil {
		return err
	}
	sys, err := actor.NewSystem(actor.Config{Name: "demo", Logger: log})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// backend: db, then cache (which needs db), then api (which needs
	// both). rest_for_one: if one of them dies, the ones started after it
	// are restarted too. It tolerates 2 restarts in 10 seconds.
	backend, err := supervision.Props(supervision.Spec{
		Strategy:    supervision.RestForOne,
		MaxRestarts: 2, Period: 10 * time.Second,
		Children: []supervision.ChildSpec{
			{ID: "db", Name: "db", Props: service("db", true)},
			{ID: "cache", Name: "cache", Props: service("cache", true)},
			{ID: "api", Name: "api", Props: service("api", true)},
		},
	})
	if err != nil {
		return err
	}
	// pool: a simple_one_for_one pool of identical workers, added at run time.
	pool, err := supervision.Props(supervision.Spec{
		Strategy: supervision.SimpleOneForOne,
		Children: []supervision.ChildSpec{{
			ID: "worker",
			Factory: func(arg any) (*actor.Props, error) {
				return service(fmt.Sprintf("worker-%d", arg), false), nil
			},
		}},
	})
	if err != nil {
		return err
	}

	section("1. Start a supervision tree")
	fmt.Println("   root (one_for_one) starts its children in order: pool, then backend;")
	fmt.Println("   backend (rest_for_one) starts db, cache and api, each after the previous one is up.")
	root, err := supervision.Start(sys, supervision.Spec{
		Strategy:    supervision.OneForOne,
		MaxRestarts: 3, Period: 10 * time.Second,
		Children: []supervision.ChildSpec{
			{ID: "pool", Name: "pool", Type: supervision.Supervisor, Props: pool},
			{ID: "backend", Name: "backend", Type: supervision.Supervisor, Props: backend},
		},
	}, "root")
	if err != nil {
		return err
	}
	poolPID, _ := sys.WhereIs("pool")
	for i := 1; i <= 3; i++ {
		if _, err := supervision.StartChildWith(ctx, sys, poolPID, i); err != nil {
			return err
		}
	}
	fmt.Println("   three workers were added to the pool with StartChildWith.")
	before, err := printTree(ctx, sys, root, nil)
	if err != nil {
		return err
	}

	section("2. Kill a pool worker and the cache (System.Kill, as a crash would)")
	workers, err := supervision.WhichChildren(ctx, sys, poolPID)
	if err != nil {
		return err
	}
	victim := workers[1].PID
	fmt.Printf("   kill %s: the pool (simple_one_for_one) restarts only that worker.\n", short(victim))
	if err := killAndWait(ctx, sys, poolPID, victim); err != nil {
		return err
	}
	cache, _ := sys.WhereIs("cache")
	fmt.Printf("   kill %s: backend (rest_for_one) stops api, which was started after cache,\n", short(cache))
	fmt.Println("   then starts cache and api again; db keeps running.")
	backendPID, _ := sys.WhereIs("backend")
	if err := killAndWait(ctx, sys, backendPID, cache); err != nil {
		return err
	}
	fmt.Println("   New PIDs are marked with *; the restart counts are kept by the supervisors.")
	if before, err = printTree(ctx, sys, root, before); err != nil {
		return err
	}

	section("3. Kill db until backend gives up")
	bt, err := supervision.Tree(ctx, sys, backendPID)
	if err != nil {
		return err
	}
	fmt.Printf("   backend's restart intensity allows 2 restarts within 10s; it has done %d.\n", bt.ChildRestarts)
	fmt.Printf("   So %d more restart(s) will be allowed; the next one will not.\n", 2-int(bt.ChildRestarts))
	for i := 1; ; i++ {
		db, _ := sys.WhereIs("db")
		fmt.Printf("   kill #%d of %s\n", i, short(db))
		if err := sys.Kill(db); err != nil {
			return err
		}
		if _, err := sys.WaitExit(ctx, db); err != nil {
			return err
		}
		if err := waitUntil(ctx, func() bool { return !sys.Alive(backendPID) || running(sys, "db", db) }); err != nil {
			return err
		}
		if sys.Alive(backendPID) {
			fmt.Println("   backend restarted db, and cache and api with it (rest_for_one).")
			continue
		}
		reason, _ := sys.WaitExit(ctx, backendPID)
		fmt.Printf("   backend exceeded its restart intensity: it stopped its children and exited with reason %q.\n", reason)
		fmt.Println("   Its own supervisor, root, decides what happens next: backend is a permanent child")
		fmt.Println("   of a one_for_one supervisor, so root started a new backend, with fresh children")
		fmt.Println("   (the last three \"started\" lines above).")
		break
	}
	if err := waitUntil(ctx, func() bool { return running(sys, "backend", backendPID) }); err != nil {
		return err
	}
	if _, err = printTree(ctx, sys, root, before); err != nil {
		return err
	}

	section("4. Shut down")
	fmt.Println("   System.Shutdown stops root, which stops its children in reverse start order:")
	fmt.Println("   backend first (api, cache, db), then the pool (all its workers at once).")
	if err := sys.Shutdown(ctx); err != nil {
		return err
	}
	fmt.Println("   done.")
	return nil
}

func section(title string) {
	fmt.Printf("\n== %s\n", title)
}

// killAndWait kills child and waits until sup has replaced it.
func killAndWait(ctx context.Context, sys *actor.System, sup, child *actor.PID) error {
	if err := sys.Kill(child); err != nil {
		return err
	}
	return waitUntil(ctx, func() bool {
		list, err := supervision.WhichChildren(ctx, sys, sup)
		if err != nil {
			return false
		}
		for _, c := range list {
			if c.PID.Equal(child) {
				return false
			}
		}
		return true
	})
}

// running reports whether name is registered to an actor other than old.
func running(sys *actor.System, name string, old *actor.PID) bool {
	pid, ok := sys.WhereIs(name)
	return ok && !pid.Equal(old)
}

func waitUntil(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// short renders a PID as name#incarnation, without its parents' path.
func short(pid *actor.PID) string {
	id := pid.ID()
	return id[strings.LastIndexByte(id, '/')+1:]
}

// printTree prints the tree under root and returns the PIDs it showed, by
// position, so that the next print can mark the PIDs that changed.
func printTree(ctx context.Context, sys *actor.System, root *actor.PID, before map[string]string) (map[string]string, error) {
	tree, err := supervision.Tree(ctx, sys, root)
	if err != nil {
		return nil, err
	}
	seen := map[string]string{}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\n   CHILD\tKIND\tPID\tRESTARTED\tRESTARTS DONE")
	var walk func(n *supervision.TreeNode, path, prefix, branch string)
	walk = func(n *supervision.TreeNode, path, prefix, branch string) {
		kind := n.Type.String()
		done := ""
		if n.Type == supervision.Supervisor {
			kind = n.Strategy.String() + " supervisor"
			done = fmt.Sprint(n.ChildRestarts)
		}
		pid := "-"
		if n.PID != nil {
			pid = short(n.PID)
			seen[path] = pid
			if old, ok := before[path]; ok && old != pid {
				pid += " *"
			}
		}
		restarted := ""
		if path != "0" {
			restarted = fmt.Sprint(n.Restarts)
		}
		fmt.Fprintf(w, "   %s%s\t%s\t%s\t%s\t%s\n", prefix+branch, n.ID, kind, pid, restarted, done)
		next := prefix
		switch branch {
		case "├─ ":
			next += "│  "
		case "└─ ":
			next += "   "
		}
		for i, c := range n.Children {
			b := "├─ "
			if i == len(n.Children)-1 {
				b = "└─ "
			}
			walk(c, fmt.Sprintf("%s/%d", path, i), next, b)
		}
	}
	walk(tree, "0", "", "")
	return seen, w.Flush()
}
