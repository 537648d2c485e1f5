// The cluster tests of global names and process groups; registry_test.go
// tests the replicated table alone.

package cluster

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
)

// spawnEcho starts an actor that answers a StringValue with its own prefix
// and forwards every *NameConflict it gets to conflicts (if not nil).
func spawnEcho(t *testing.T, nd *Node, prefix string, conflicts chan<- *NameConflict) *actor.PID {
	t.Helper()
	pid, err := nd.System().Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *wrapperspb.StringValue:
			c.Reply(wrapperspb.String(prefix + m.Value))
		case *NameConflict:
			if conflicts != nil {
				conflicts <- m
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// whereIs reports whether every node resolves name to want (absent, if want
// is nil).
func whereIs(nodes []*Node, name string, want *actor.PID) bool {
	for _, nd := range nodes {
		got, ok := nd.WhereIsGlobal(name)
		if want == nil && ok || want != nil && (!ok || !got.Equal(want)) {
			return false
		}
	}
	return true
}

// members reports whether every node sees exactly want in group.
func members(nodes []*Node, group string, want ...*actor.PID) bool {
	want = slices.Clone(want)
	slices.SortFunc(want, cmpPID)
	for _, nd := range nodes {
		if !slices.EqualFunc(nd.GroupMembers(group), want, (*actor.PID).Equal) {
			return false
		}
	}
	return true
}

func TestGlobalNamesAcrossNodes(t *testing.T) {
	nodes, _ := testCluster(t, 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	greeter := spawnEcho(t, n1, "hello ", nil)
	start := time.Now()
	if err := n1.RegisterGlobal(ctx, "greeter", greeter); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "greeter visible on every node", 5*time.Second, func() bool { return whereIs(nodes, "greeter", greeter) })
	t.Logf("registration visible on all 3 nodes after %v", time.Since(start))

	pid, _ := n3.WhereIsGlobal("greeter")
	got, err := actor.Ask[*wrapperspb.StringValue](ctx, n3.System(), pid, wrapperspb.String("from n3"))
	if err != nil || got.Value != "hello from n3" {
		t.Fatalf("Ask through WhereIsGlobal: %v, %v", got, err)
	}
	if names := n2.GlobalNames(); !slices.Equal(names, []string{"greeter"}) {
		t.Fatalf("n2 GlobalNames = %v", names)
	}

	// The name is taken everywhere, and only its owner may remove it.
	other := spawnEcho(t, n2, "other ", nil)
	if err := n2.RegisterGlobal(ctx, "greeter", other); !errors.Is(err, ErrGlobalNameTaken) {
		t.Fatalf("duplicate name on n2: %v", err)
	}
	if err := n2.RegisterGlobal(ctx, "stolen", greeter); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("registering an actor of n1 on n2: %v", err)
	}
	if err := n2.UnregisterGlobal("greeter"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("unregistering n1's name on n2: %v", err)
	}

	// Unregister.
	if err := n2.RegisterGlobal(ctx, "other", other); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "other visible", 5*time.Second, func() bool { return whereIs(nodes, "other", other) })
	start = time.Now()
	if err := n2.UnregisterGlobal("other"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "other gone everywhere", 5*time.Second, func() bool { return whereIs(nodes, "other", nil) })
	t.Logf("unregistration visible on all 3 nodes after %v", time.Since(start))

	// The actor dies: its name goes everywhere, and is free again.
	start = time.Now()
	if err := n3.System().Kill(greeter); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "greeter gone everywhere", 5*time.Second, func() bool { return whereIs(nodes, "greeter", nil) })
	t.Logf("death of a registered actor visible on all 3 nodes after %v", time.Since(start))
	if err := n2.RegisterGlobal(ctx, "greeter", other); err != nil {
		t.Fatalf("the name of a dead actor is free: %v", err)
	}
	waitFor(t, "greeter on n2 visible", 5*time.Second, func() bool { return whereIs(nodes, "greeter", other) })
}

func TestGlobalNamesAndGroupsOfACrashedNode(t *testing.T) {
	nodes, _ := testCluster(t, 3)
	n1, n3 := nodes[0], nodes[2]
	ctx := context.Background()
	a := spawnEcho(t, n3, "", nil)
	b := spawnEcho(t, n1, "", nil)
	if err := n3.RegisterGlobal(ctx, "on-n3", a); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		nd  *Node
		pid *actor.PID
	}{{n3, a}, {n1, b}} {
		if err := m.nd.JoinGroup("workers", m.pid); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "n3's records visible", 5*time.Second, func() bool {
		return whereIs(nodes, "on-n3", a) && members(nodes, "workers", a, b)
	})
	start := time.Now()
	n3.Crash()
	rest := nodes[:2]
	waitFor(t, "n3's records gone", 10*time.Second, func() bool {
		return whereIs(rest, "on-n3", nil) && members(rest, "workers", b)
	})
	t.Logf("crash to records gone on the other nodes: %v", time.Since(start))
}

// A partition lets both sides register "leader"; after it heals every node
// settles on the earlier registration and the other actor is told.
func TestGlobalNameConflictAfterPartition(t *testing.T) {
	nodes, faults := testCluster(t, 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := faults.Partition([]string{"n1"}, []string{"n2", "n3"}); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, n1, 1)
	waitMembers(t, n2, 2)
	waitMembers(t, n3, 2)

	lost1 := make(chan *NameConflict, 1)
	lost2 := make(chan *NameConflict, 1)
	l1 := spawnEcho(t, n1, "n1 ", lost1)
	l2 := spawnEcho(t, n2, "n2 ", lost2)
	if err := n1.RegisterGlobal(ctx, "leader", l1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond) // n1's registration is the earlier one
	if err := n2.RegisterGlobal(ctx, "leader", l2); err != nil {
		t.Fatalf("the other side of the partition: %v", err)
	}
	// Group members on both sides are merged, not in conflict.
	g1 := spawnEcho(t, n1, "", nil)
	g3 := spawnEcho(t, n3, "", nil)
	if err := n1.JoinGroup("pool", g1); err != nil {
		t.Fatal(err)
	}
	if err := n3.JoinGroup("pool", g3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n3 sees n2's leader", 5*time.Second, func() bool { return whereIs(nodes[1:], "leader", l2) })

	faults.Heal()
	start := time.Now()
	if err := n1.Join(ctx, n2.GossipAddress()); err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodes {
		waitMembers(t, nd, 3)
	}
	waitFor(t, "every node agrees on n1's leader", 10*time.Second, func() bool {
		return whereIs(nodes, "leader", l1) && members(nodes, "pool", g1, g3)
	})
	t.Logf("heal to agreement: %v", time.Since(start))
	select {
	case c := <-lost2:
		if c.Name != "leader" || !c.Winner.Equal(l1) {
			t.Fatalf("NameConflict %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the losing actor was not told")
	}
	select {
	case c := <-lost1:
		t.Fatalf("the winner was told it lost: %+v", c)
	default:
	}
	// The loser's owner removed its registration; nothing changes later.
	time.Sleep(200 * time.Millisecond)
	if !whereIs(nodes, "leader", l1) {
		t.Fatal("the agreement did not last")
	}
	for _, nd := range nodes {
		if names := nd.GlobalNames(); !slices.Equal(names, []string{"leader"}) {
			t.Fatalf("%s: GlobalNames = %v", nd.Name(), names)
		}
	}
	got, err := actor.Ask[*wrapperspb.StringValue](ctx, n3.System(), mustWhereIs(t, n3, "leader"), wrapperspb.String("hi"))
	if err != nil || got.Value != "n1 hi" {
		t.Fatalf("Ask the leader from n3: %v, %v", got, err)
	}
}

func mustWhereIs(t *testing.T, nd *Node, name string) *actor.PID {
	t.Helper()
	pid, ok := nd.WhereIsGlobal(name)
	if !ok {
		t.Fatalf("%s: no %q", nd.Name(), name)
	}
	return pid
}

func TestProcessGroupsAcrossNodes(t *testing.T) {
	nodes, _ := testCluster(t, 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	a1 := spawnEcho(t, n1, "", nil)
	a2 := spawnEcho(t, n1, "", nil)
	b1 := spawnEcho(t, n2, "", nil)
	start := time.Now()
	for _, m := range []struct {
		nd  *Node
		pid *actor.PID
	}{{n1, a1}, {n1, a2}, {n2, b1}} {
		if err := m.nd.JoinGroup("workers", m.pid); err != nil {
			t.Fatal(err)
		}
	}
	if err := n2.JoinGroup("readers", b1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "workers visible everywhere", 5*time.Second, func() bool {
		return members(nodes, "workers", a1, a2, b1) && members(nodes, "readers", b1)
	})
	t.Logf("3 joins on 2 nodes visible on all 3 nodes after %v", time.Since(start))
	for _, nd := range nodes {
		if got := nd.Groups(); !slices.Equal(got, []string{"readers", "workers"}) {
			t.Fatalf("%s: Groups = %v", nd.Name(), got)
		}
	}
	if got := n1.LocalGroupMembers("workers"); len(got) != 2 {
		t.Fatalf("n1 local members %v", got)
	}
	if got := n3.LocalGroupMembers("workers"); len(got) != 0 {
		t.Fatalf("n3 local members %v", got)
	}
	if err := n3.JoinGroup("workers", a1); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("joining an actor of n1 on n3: %v", err)
	}

	// Leave.
	if err := n1.LeaveGroup("workers", a2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a2 left everywhere", 5*time.Second, func() bool { return members(nodes, "workers", a1, b1) })

	// A member dies.
	start = time.Now()
	if err := n3.System().Kill(b1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b1 gone everywhere", 5*time.Second, func() bool {
		return members(nodes, "workers", a1) && members(nodes, "readers")
	})
	t.Logf("death of a member visible on all 3 nodes after %v", time.Since(start))
	for _, nd := range nodes {
		if got := nd.Groups(); !slices.Equal(got, []string{"workers"}) {
			t.Fatalf("%s: Groups = %v", nd.Name(), got)
		}
	}
}

// A node that joins later learns the existing names and groups at once.
func TestGlobalStateOfALateJoiner(t *testing.T) {
	nodes, _ := testCluster(t, 2)
	n1 := nodes[0]
	ctx := context.Background()
	a := spawnEcho(t, n1, "", nil)
	if err := n1.RegisterGlobal(ctx, "early", a); err != nil {
		t.Fatal(err)
	}
	if err := n1.JoinGroup("g", a); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n2 sees it", 5*time.Second, func() bool { return whereIs(nodes, "early", a) })
	cfg := Local("n3")
	cfg.Logger = testLogger(t)
	cfg.Faults = n1.Faults()
	cfg.Seeds = []string{nodes[1].GossipAddress()}
	n3 := startNode(t, cfg)
	// Start returns after the join's push/pull with n2, which carries n1's
	// records.
	if pid, ok := n3.WhereIsGlobal("early"); !ok || !pid.Equal(a) {
		t.Fatalf("late joiner: WhereIsGlobal = %v, %v", pid, ok)
	}
	if got := n3.GroupMembers("g"); len(got) != 1 || !got[0].Equal(a) {
		t.Fatalf("late joiner: GroupMembers = %v", got)
	}
}
