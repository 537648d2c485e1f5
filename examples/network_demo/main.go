// Command network_demo runs a three-node cluster in one process and walks
// through what happens on the network: remote spawn and messages, links,
// monitors and node events across nodes, a remote kill, a crashed node, a
// network partition and its healing, and a graceful departure.
//
//	go run ./examples/network_demo
//
// The nodes listen on 127.0.0.1 with ports picked by the system, use the
// Local gossip preset (failures are detected in well under a second), share
// a cluster secret and share one set of fault rules, so a partition applies
// to all of them. Every duration printed is measured while the demo runs.
// After a heal, each node's reconnect loop joins again the members it still
// sees dead, as Serf's does, so the views agree again by themselves.
// The nodes' own log reports (zap, Warn and above) go to stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/cluster"
)

// secret is the cluster secret (Erlang's cookie) shared by the nodes.
const secret = "network-demo-cookie"

// waitLimit bounds every wait for something the cluster should do by itself
// (a failure detected, a node joining): far more than the Local preset needs.
const waitLimit = 5 * time.Second

// convergeLimit bounds the wait for the members to agree that all are
// alive, after a start or a heal.
const convergeLimit = 15 * time.Second

func main() {
	// A last resort: whatever happens, the demo does not hang.
	watchdog := time.AfterFunc(60*time.Second, func() {
		fmt.Fprintln(os.Stderr, "error: the demo did not finish within 60s")
		os.Exit(2)
	})
	err := run()
	watchdog.Stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// demo holds the cluster and what the actors report.
type demo struct {
	ctx    context.Context
	log    *zap.Logger
	faults *cluster.Faults
	nodes  map[string]*cluster.Node
	events journal

	mu    sync.Mutex        // guards names: actors read it while nodes start
	names map[string]string // actor transport address → node name
}

func run() error {
	start := time.Now()
	cfg := zap.NewDevelopmentConfig()
	cfg.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	cfg.DisableStacktrace = true
	cfg.EncoderConfig.TimeKey = ""
	cfg.EncoderConfig.StacktraceKey = ""
	log, err := cfg.Build()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := &demo{
		ctx: ctx, log: log, faults: cluster.NewFaults(1),
		nodes: map[string]*cluster.Node{}, names: map[string]string{},
	}
	// On failure, stop whatever still runs (a no-op for nodes that left).
	defer func() {
		for _, nd := range d.nodes {
			nd.Stop()
		}
	}()

	section("1. Start three nodes: n1, then n2 and n3 joining n1")
	fmt.Println("   Each node is an actor system, a TCP actor transport and memberlist gossip.")
	fmt.Println("   They listen on 127.0.0.1 with free ports and share the cluster secret:")
	fmt.Println("   gossip is encrypted with it, and the transport rejects connections without it.")
	started := time.Now()
	n1, err := d.start("n1")
	if err != nil {
		return err
	}
	n2, err := d.start("n2", n1.GossipAddress())
	if err != nil {
		return err
	}
	n3, err := d.start("n3", n1.GossipAddress())
	if err != nil {
		return err
	}
	if _, err := d.converge(started, "start", n1, n2, n3); err != nil {
		return err
	}
	fmt.Println("\n   The members as each node sees them:")
	if err := d.printMembers(n1, n2, n3); err != nil {
		return err
	}

	section("2. Remote spawn, Ask and one-way messages")
	fmt.Println("   Every node registers the kind \"greeter\"; n3 also registers \"counter\".")
	fmt.Println("   Messages that cross nodes are protobuf messages (wrapperspb here).")
	for _, nd := range []*cluster.Node{n1, n2, n3} {
		if err := nd.RegisterKind("greeter", greeterKind(nd.Name())); err != nil {
			return err
		}
	}
	if err := n3.RegisterKind("counter", counterKind); err != nil {
		return err
	}
	g2, err := d.spawnOn(n1, "n2", "greeter")
	if err != nil {
		return err
	}
	g3, err := d.spawnOn(n1, "n3", "greeter")
	if err != nil {
		return err
	}
	for _, g := range []*actor.PID{g2, g3} {
		if err := d.showAsk(n1, g); err != nil {
			return err
		}
	}
	fmt.Println("   The PID is location transparent: n2 uses the PID that n1 got back.")
	if err := d.showAsk(n2, g3); err != nil {
		return err
	}
	counter, err := d.spawnOn(n1, "n3", "counter")
	if err != nil {
		return err
	}
	const pings = 3
	fmt.Printf("   n1 sends %d pings to %s with Send: one-way, nobody waits for an answer.\n", pings, d.where(counter))
	for range pings {
		n1.System().Send(counter, wrapperspb.String("ping"))
	}
	count, err := d.count(n1, counter, pings)
	if err != nil {
		return err
	}
	fmt.Printf("   n1 asks the counter how many pings it got: %d.\n", count)

	section("3. Links, monitors and node events across nodes")
	watcher, err := n1.System().Spawn(d.watcherProps("n1"))
	if err != nil {
		return err
	}
	fmt.Printf("   %s on n1 traps exits, links to %s and monitors it.\n", short(watcher), d.where(g3))
	if err := d.watch(n1, watcher, g3, true); err != nil {
		return err
	}
	if err := d.waitWatched(n3, g3, watcher, true); err != nil {
		return err
	}
	fmt.Printf("   n3 has recorded both on its greeter (System.Info on n3): linked to %s, 1 monitor.\n", d.where(watcher))
	fmt.Println("   Observers on n1 and n2 subscribe with Node.MonitorNodes. They first get")
	fmt.Println("   nodeup for every member alive now, then events as they happen:")
	subscribed := time.Now()
	for _, nd := range []*cluster.Node{n1, n2} {
		pid, err := nd.System().Spawn(d.observerProps(nd.Name()))
		if err != nil {
			return err
		}
		nd.MonitorNodes(pid)
	}
	for _, obs := range []string{"n1", "n2"} {
		for _, m := range []string{"n1", "n2", "n3"} {
			if _, err := d.events.waitNode(d.ctx, subscribed, obs, "nodeup", m); err != nil {
				return err
			}
		}
	}

	section("4. Kill an actor on another node")
	fmt.Printf("   %s monitors %s; then n1 calls System.Kill on that PID.\n", short(watcher), d.where(g2))
	if err := d.watch(n1, watcher, g2, false); err != nil {
		return err
	}
	if err := d.waitWatched(n2, g2, watcher, false); err != nil {
		return err
	}
	killed := time.Now()
	if err := n1.System().Kill(g2); err != nil {
		return fmt.Errorf("kill %s: %w", d.where(g2), err)
	}
	down, err := d.events.wait(d.ctx, killed, "the watcher to get Down for "+d.where(g2), func(e event) bool {
		return e.who == "watcher" && e.kind == "Down" && e.pid.Equal(g2)
	})
	if err != nil {
		return err
	}
	if down.reason.Kind != actor.KindKilled {
		return fmt.Errorf("Down for %s has reason %s, want killed", d.where(g2), down.reason)
	}
	fmt.Printf("   The kill crossed to n2 and the Down came back to n1 %s after the kill.\n", since(killed, down.at))
	if err := d.showDeadAsk(n1, g2); err != nil {
		return err
	}

	section("5. Crash n3")
	fmt.Println("   n3.Crash(): its transport and gossip stop without a goodbye, its actors die.")
	fmt.Println("   n1 and n2 notice through gossip: probes to n3 go unanswered. (In one process")
	fmt.Println("   n3's sockets close at once and the actor connections to it end; links,")
	fmt.Println("   monitors and Asks follow the gossip verdict, not the sockets.)")
	crashed := time.Now()
	n3.Crash()
	downN1, err := d.events.waitNode(d.ctx, crashed, "n1", "nodedown", "n3")
	if err != nil {
		return err
	}
	downN2, err := d.events.waitNode(d.ctx, crashed, "n2", "nodedown", "n3")
	if err != nil {
		return err
	}
	exit, err := d.events.wait(d.ctx, crashed, "the watcher's link to fire for "+d.where(g3), func(e event) bool {
		return e.who == "watcher" && e.kind == "Exit" && e.pid.Equal(g3)
	})
	if err != nil {
		return err
	}
	down, err = d.events.wait(d.ctx, crashed, "the watcher to get Down for "+d.where(g3), func(e event) bool {
		return e.who == "watcher" && e.kind == "Down" && e.pid.Equal(g3)
	})
	if err != nil {
		return err
	}
	if exit.reason.Kind != actor.KindNoConnection || down.reason.Kind != actor.KindNoConnection {
		return fmt.Errorf("after the crash: Exit reason %s, Down reason %s; want noconnection for both", exit.reason, down.reason)
	}
	fmt.Printf("   n1 declared n3 down %s after the crash, n2 %s after it.\n", since(crashed, downN1.at), since(crashed, downN2.at))
	fmt.Printf("   The link fired (Exit, reason %s) %s after the crash,\n", exit.reason, since(crashed, exit.at))
	fmt.Printf("   and the monitor (Down, reason %s) %s after it.\n", down.reason, since(crashed, down.at))
	if err := d.showDeadAsk(n1, g3); err != nil {
		return err
	}

	section("6. A fresh node, a partition, and healing")
	fmt.Println("   A new node, n3b, starts with new ports and joins n1. (The name n3 stays")
	fmt.Println("   with the dead member: gossip does not let a new address claim it.)")
	joined := time.Now()
	n3b, err := d.start("n3b", n1.GossipAddress())
	if err != nil {
		return err
	}
	if err := n3b.RegisterKind("greeter", greeterKind("n3b")); err != nil {
		return err
	}
	if _, err := d.converge(joined, "join", n1, n2, n3b); err != nil {
		return err
	}
	for _, obs := range []string{"n1", "n2"} {
		if _, err := d.events.waitNode(d.ctx, joined, obs, "nodeup", "n3b"); err != nil {
			return err
		}
	}
	if err := d.printMembers(n1, n2, n3b); err != nil {
		return err
	}
	g2, err = d.spawnOn(n1, "n2", "greeter")
	if err != nil {
		return err
	}
	if err := d.showAsk(n1, g2); err != nil {
		return err
	}
	fmt.Println("\n   Partition {n1} | {n2, n3b}: actor messages and gossip between the two sides")
	fmt.Println("   are dropped from now on, in both directions.")
	cut := time.Now()
	if err := d.faults.Partition([]string{"n1"}, []string{"n2", "n3b"}); err != nil {
		return err
	}
	fmt.Printf("   Right away, n1 asks %s with a 300ms budget:\n", d.where(g2))
	askCtx, askCancel := context.WithTimeout(d.ctx, 300*time.Millisecond)
	t0 := time.Now()
	_, err = actor.Ask[*wrapperspb.StringValue](askCtx, n1.System(), g2, wrapperspb.String("n1"))
	took := time.Since(t0)
	askCancel()
	switch {
	case err == nil:
		return fmt.Errorf("an Ask crossed the partition")
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Printf("   it failed after %s: %v\n", roundDur(took), err)
		fmt.Println("   (the request was dropped, and nobody had declared n2 down yet)")
	default:
		fmt.Printf("   it failed after %s: %v\n", roundDur(took), err)
		fmt.Println("   (n1 declared n2 down while the Ask was waiting)")
	}
	var sides []string
	for _, w := range [][2]string{{"n1", "n2"}, {"n1", "n3b"}, {"n2", "n1"}} {
		e, err := d.events.waitNode(d.ctx, cut, w[0], "nodedown", w[1])
		if err != nil {
			return err
		}
		sides = append(sides, fmt.Sprintf("      %s declared %s down %s after the cut\n", w[0], w[1], since(cut, e.at)))
	}
	fmt.Printf("   Each side declared the other down:\n%s", strings.Join(sides, ""))
	if err := d.showDeadAsk(n1, g2); err != nil {
		return err
	}
	fmt.Println("\n   Heal the partition. Gossip does not probe members it has declared dead; every")
	fmt.Println("   node's reconnect loop joins them again within 500 ms (Local preset). Here n1")
	fmt.Println("   does it at once: n1.Join(ctx, n2.GossipAddress()). Gossip spreads the news.")
	healed := time.Now()
	d.faults.Heal()
	if err := n1.Join(d.ctx, n2.GossipAddress()); err != nil {
		return err
	}
	fmt.Printf("   n1.Join returned after %s.\n", since(healed, time.Now()))
	agreed, err := d.converge(healed, "heal", n1, n2, n3b)
	if err != nil {
		return err
	}
	var seen []string
	for _, e := range d.events.since(healed) {
		seen = append(seen, fmt.Sprintf("      %s saw %s %s after the heal\n", e.who, e.kind+" "+e.member, since(healed, e.at)))
	}
	fmt.Printf("   What the observers saw:\n%s", strings.Join(seen, ""))
	fmt.Printf("   All three see each other alive again %s after the heal (the last: %s saw %s alive).\n",
		since(healed, agreed.at), agreed.viewer, agreed.member)
	for _, e := range d.events.since(healed) {
		if e.kind == "nodedown" {
			fmt.Printf("   (%s declared %s down once more after the heal: news of its death from the\n", e.who, e.member)
			fmt.Println("   partition was still going around. The nodeup after it set that right.)")
		}
	}
	if err := d.showAsk(n1, g2); err != nil {
		return err
	}

	section("7. Leave gracefully")
	fmt.Println("   n3b leaves, then n2, then n1: each stops its actors and tells the others")
	fmt.Println("   it is leaving, so they report nodeleft rather than nodedown.")
	for _, step := range []struct {
		node      *cluster.Node
		observers []string
	}{{n3b, []string{"n1", "n2"}}, {n2, []string{"n1"}}, {n1, nil}} {
		left := time.Now()
		lctx, lcancel := context.WithTimeout(d.ctx, 3*time.Second)
		err := step.node.Leave(lctx)
		lcancel()
		if err != nil {
			return fmt.Errorf("%s leave: %w", step.node.Name(), err)
		}
		fmt.Printf("   %s left (%s).\n", step.node.Name(), since(left, time.Now()))
		for _, obs := range step.observers {
			if _, err := d.events.wait(d.ctx, left, obs+" to see "+step.node.Name()+" go", func(e event) bool {
				return e.who == obs && (e.kind == "nodeleft" || e.kind == "nodedown") && e.member == step.node.Name()
			}); err != nil {
				return err
			}
		}
	}
	fmt.Printf("\n   All nodes have left. The whole story took %s.\n", roundDur(time.Since(start)))
	return nil
}

// start starts a node joining seeds (none for the first node).
func (d *demo) start(name string, seeds ...string) (*cluster.Node, error) {
	cfg := cluster.Local(name)
	cfg.RemoteBind = "127.0.0.1:0"
	cfg.GossipBind = "127.0.0.1:0"
	cfg.Seeds = seeds
	cfg.Secret = secret
	cfg.Faults = d.faults
	cfg.Logger = d.log
	cfg.JoinTimeout = waitLimit
	nd, err := cluster.NewNode(cfg)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := nd.Start(d.ctx); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d.nodes[name] = nd
	d.mu.Lock()
	d.names[nd.Address()] = name
	d.mu.Unlock()
	how := "as the first node"
	if len(seeds) > 0 {
		how = "joined " + d.nameOfGossip(seeds[0])
	}
	fmt.Printf("   %-3s started in %-7s %-18s actors at %s, gossip at %s\n",
		name, roundDur(time.Since(t0)), how+";", nd.Address(), nd.GossipAddress())
	return nd, nil
}

func (d *demo) nameOfGossip(addr string) string {
	for name, nd := range d.nodes {
		if nd.GossipAddress() == addr {
			return name
		}
	}
	return addr
}

// converge waits until nodes agree that all of them are alive, and reports
// when the last of them became alive in another's view. Gossip does not
// probe members it has declared dead; each node's reconnect loop joins them
// again (every 500 ms with the Local preset), which heals a split view.
func (d *demo) converge(from time.Time, after string, nodes ...*cluster.Node) (agreement, error) {
	agreed, err := d.settle(convergeLimit-time.Since(from), nodes...)
	if err != nil {
		return agreed, fmt.Errorf("%w (after the %s); the views are:\n%s", err, after, views(nodes...))
	}
	return agreed, nil
}

// agreement is the moment the members last changed their minds: viewer
// then saw member alive.
type agreement struct {
	at             time.Time
	viewer, member string
}

// settle waits, for at most limit, until each of nodes has seen each of
// them alive for a while, so that gossip has stopped changing its mind
// before the story goes on. It reports when the last of them became alive
// in another's view.
func (d *demo) settle(limit time.Duration, nodes ...*cluster.Node) (agreement, error) {
	const quiet = 500 * time.Millisecond
	var last agreement
	err := waitFor(d.ctx, limit, "the members to agree that all are alive", func() bool {
		last = agreement{}
		for _, nd := range nodes {
			for _, other := range nodes {
				m, ok := nd.Member(other.Name())
				if !ok || m.State != cluster.Alive || time.Since(m.Since) < quiet {
					return false
				}
				if nd != other && m.Since.After(last.at) {
					last = agreement{at: m.Since, viewer: nd.Name(), member: m.Name}
				}
			}
		}
		return true
	})
	return last, err
}

// views describes how each node sees the members, for error messages.
func views(nodes ...*cluster.Node) string {
	var out []string
	for _, nd := range nodes {
		var seen []string
		for _, m := range nd.Members() {
			seen = append(seen, fmt.Sprintf("%s %s for %s", m.Name, m.State, roundDur(time.Since(m.Since))))
		}
		out = append(out, "   "+nd.Name()+" sees "+strings.Join(seen, ", "))
	}
	return strings.Join(out, "\n")
}

func (d *demo) printMembers(nodes ...*cluster.Node) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "   NODE\tSEES")
	for _, nd := range nodes {
		var seen []string
		for _, m := range nd.Members() {
			seen = append(seen, m.Name+" "+m.State.String())
		}
		fmt.Fprintf(w, "   %s\t%s\n", nd.Name(), strings.Join(seen, ", "))
	}
	return w.Flush()
}

// where renders a PID as "name#incarnation on node".
func (d *demo) where(pid *actor.PID) string {
	d.mu.Lock()
	node, ok := d.names[pid.Address()]
	d.mu.Unlock()
	if !ok {
		node = pid.Address()
	}
	return short(pid) + " on " + node
}

func (d *demo) spawnOn(from *cluster.Node, node, kind string) (*actor.PID, error) {
	ctx, cancel := context.WithTimeout(d.ctx, waitLimit)
	defer cancel()
	t0 := time.Now()
	pid, err := from.SpawnOn(ctx, node, kind, kind, nil)
	if err != nil {
		return nil, err
	}
	fmt.Printf("   %s spawns a %s on %s: %s (%s)\n", from.Name(), kind, node, d.where(pid), roundDur(time.Since(t0)))
	return pid, nil
}

// showAsk asks a greeter and prints the answer.
func (d *demo) showAsk(from *cluster.Node, pid *actor.PID) error {
	ctx, cancel := context.WithTimeout(d.ctx, waitLimit)
	defer cancel()
	t0 := time.Now()
	reply, err := actor.Ask[*wrapperspb.StringValue](ctx, from.System(), pid, wrapperspb.String(from.Name()))
	if err != nil {
		return fmt.Errorf("%s asks %s: %w", from.Name(), d.where(pid), err)
	}
	fmt.Printf("   %s asks %s: %q (%s)\n", from.Name(), d.where(pid), reply.GetValue(), roundDur(time.Since(t0)))
	return nil
}

// showDeadAsk asks an actor that is gone, or on a node that is gone, and
// prints how fast and how it fails.
func (d *demo) showDeadAsk(from *cluster.Node, pid *actor.PID) error {
	ctx, cancel := context.WithTimeout(d.ctx, waitLimit)
	defer cancel()
	t0 := time.Now()
	_, err := actor.Ask[*wrapperspb.StringValue](ctx, from.System(), pid, wrapperspb.String(from.Name()))
	took := time.Since(t0)
	if err == nil {
		return fmt.Errorf("%s asks %s: it answered, but it should be unreachable", from.Name(), d.where(pid))
	}
	if !errors.Is(err, actor.ErrDeadActor) {
		return fmt.Errorf("%s asks %s: %w (want an error matching actor.ErrDeadActor)", from.Name(), d.where(pid), err)
	}
	fmt.Printf("   %s asks %s: it fails at once, in %s, without a timeout:\n", from.Name(), d.where(pid), roundDur(took))
	fmt.Printf("      %v\n", err)
	return nil
}

// count asks the counter for its count until it has counted want pings.
// Messages between two actors arrive in the order they were sent, so the
// first answer should already be want.
func (d *demo) count(from *cluster.Node, counter *actor.PID, want int64) (int64, error) {
	var got int64
	err := waitUntil(d.ctx, fmt.Sprintf("the counter to count %d pings", want), func() bool {
		ctx, cancel := context.WithTimeout(d.ctx, time.Second)
		defer cancel()
		r, err := actor.Ask[*wrapperspb.Int64Value](ctx, from.System(), counter, wrapperspb.String("count?"))
		got = r.GetValue()
		return err == nil && got >= want
	})
	return got, err
}

// watchRequest asks the watcher to monitor an actor, and to link to it too.
type watchRequest struct {
	pid  *actor.PID
	link bool
}

func (d *demo) watch(from *cluster.Node, watcher, target *actor.PID, link bool) error {
	ctx, cancel := context.WithTimeout(d.ctx, waitLimit)
	defer cancel()
	_, err := actor.Ask[bool](ctx, from.System(), watcher, &watchRequest{pid: target, link: link})
	return err
}

// waitWatched waits until the node hosting target has recorded the
// watcher's monitor (and link), so that what follows cannot overtake them.
func (d *demo) waitWatched(host *cluster.Node, target, watcher *actor.PID, link bool) error {
	return waitUntil(d.ctx, host.Name()+" to record the monitor on "+d.where(target), func() bool {
		info, ok := host.System().Info(target)
		if !ok || info.Monitors < 1 {
			return false
		}
		return !link || slices.ContainsFunc(info.Links, watcher.Equal)
	})
}

// greeterKind makes greeters that answer a name with a greeting.
func greeterKind(node string) cluster.KindFunc {
	return func([]byte) (*actor.Props, error) {
		return actor.PropsFromFunc(func(c *actor.Context) {
			if m, ok := c.Message().(*wrapperspb.StringValue); ok {
				c.Reply(wrapperspb.String(fmt.Sprintf("hello %s, this is %s on %s", m.GetValue(), short(c.Self()), node)))
			}
		}, actor.WithKind("greeter")), nil
	}
}

// counterKind makes counters: "ping" counts (no answer), "count?" answers
// the count so far.
func counterKind([]byte) (*actor.Props, error) {
	var n int64
	return actor.PropsFromFunc(func(c *actor.Context) {
		m, ok := c.Message().(*wrapperspb.StringValue)
		if !ok {
			return
		}
		switch m.GetValue() {
		case "ping":
			n++
			fmt.Printf("      [%s on n3] ping %d\n", short(c.Self()), n)
		case "count?":
			c.Reply(wrapperspb.Int64(n))
		}
	}, actor.WithKind("counter")), nil
}

// watcherProps makes the actor that links to and monitors other actors and
// prints the Exit and Down messages it gets.
func (d *demo) watcherProps(node string) *actor.Props {
	return actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *watchRequest:
			if m.link {
				c.Link(m.pid)
			}
			c.Monitor(m.pid)
			c.Reply(true)
		case *actor.Exit:
			at := time.Now()
			fmt.Printf("      [%s on %s] Exit from %s, reason %s\n", short(c.Self()), node, d.where(m.From), m.Reason)
			d.events.add(event{at: at, who: "watcher", kind: "Exit", pid: m.From, reason: m.Reason})
		case *actor.Down:
			at := time.Now()
			fmt.Printf("      [%s on %s] Down for %s, reason %s\n", short(c.Self()), node, d.where(m.PID), m.Reason)
			d.events.add(event{at: at, who: "watcher", kind: "Down", pid: m.PID, reason: m.Reason})
		}
	}, actor.WithKind("watcher"), actor.WithTrapExit())
}

// observerProps makes the actor that prints the node events of one node.
func (d *demo) observerProps(node string) *actor.Props {
	return actor.PropsFromFunc(func(c *actor.Context) {
		e, ok := c.Message().(*cluster.NodeEvent)
		if !ok {
			return
		}
		at := time.Now()
		line := fmt.Sprintf("      [observer on %s] %s %s", node, e.Kind, e.Member.Name)
		if e.Reason != "" {
			line += ": " + e.Reason
		}
		fmt.Println(line)
		d.events.add(event{at: at, who: node, kind: e.Kind.String(), member: e.Member.Name})
	}, actor.WithKind("observer"))
}

// event is something an actor reported: a node event seen by the observer
// of node who, or an Exit or Down received by the watcher.
type event struct {
	at     time.Time
	who    string // observer's node name, or "watcher"
	kind   string // nodeup, nodedown, nodeleft, Exit, Down
	member string // node events: the member
	pid    *actor.PID
	reason actor.Reason
}

// journal collects events so that the story can wait for them and measure
// when they happened.
type journal struct {
	mu     sync.Mutex
	events []event
}

func (j *journal) add(e event) {
	j.mu.Lock()
	j.events = append(j.events, e)
	j.mu.Unlock()
}

// wait waits until an event at or after from matches, for at most waitLimit.
func (j *journal) wait(ctx context.Context, from time.Time, what string, match func(event) bool) (event, error) {
	var found event
	err := waitUntil(ctx, what, func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		for _, e := range j.events {
			if !e.at.Before(from) && match(e) {
				found = e
				return true
			}
		}
		return false
	})
	return found, err
}

// since returns the events at or after from, in the order they were added.
func (j *journal) since(from time.Time) []event {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []event
	for _, e := range j.events {
		if !e.at.Before(from) {
			out = append(out, e)
		}
	}
	return out
}

// waitNode waits for the observer on node who to report kind for member.
func (j *journal) waitNode(ctx context.Context, from time.Time, who, kind, member string) (event, error) {
	return j.wait(ctx, from, fmt.Sprintf("%s to report %s %s", who, kind, member), func(e event) bool {
		return e.who == who && e.kind == kind && e.member == member
	})
}

// waitUntil polls cond until it holds, for at most waitLimit.
func waitUntil(ctx context.Context, what string, cond func() bool) error {
	return waitFor(ctx, waitLimit, what, cond)
}

// waitFor polls cond until it holds, for at most limit.
func waitFor(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %s waiting for %s", limit, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

func section(title string) {
	fmt.Printf("\n== %s\n", title)
}

// short renders a PID as name#incarnation, without its parents' path.
func short(pid *actor.PID) string {
	id := pid.ID()
	return id[strings.LastIndexByte(id, '/')+1:]
}

func since(t0, t time.Time) string { return roundDur(t.Sub(t0)) }

// roundDur keeps two or three significant digits.
func roundDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= 10*time.Microsecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.String()
}
