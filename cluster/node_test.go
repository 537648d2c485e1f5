package cluster

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/internal/freeport"
)

// testCluster starts n nodes named n1..nN with the Local preset, sharing
// one Faults, each joining the first.
func testCluster(t *testing.T, n int, mutate ...func(*Config)) ([]*Node, *Faults) {
	t.Helper()
	faults := NewFaults(7)
	var nodes []*Node
	for i := 1; i <= n; i++ {
		cfg := Local("n" + string(rune('0'+i)))
		cfg.Logger = testLogger(t)
		cfg.Faults = faults
		cfg.JoinTimeout = 5 * time.Second
		if i > 1 {
			cfg.Seeds = []string{nodes[0].GossipAddress()}
		}
		for _, m := range mutate {
			m(&cfg)
		}
		nodes = append(nodes, startNode(t, cfg))
	}
	for _, nd := range nodes {
		waitMembers(t, nd, n)
	}
	return nodes, faults
}

func echoKind(args []byte) (*actor.Props, error) {
	return actor.PropsFromFunc(func(c *actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			c.Reply(wrapperspb.String(string(args) + m.Value))
		}
	}, actor.WithKind("echo")), nil
}

func TestClusterRemoteSpawnAskAndCrash(t *testing.T) {
	nodes, _ := testCluster(t, 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	for _, nd := range nodes {
		if err := nd.RegisterKind("echo", echoKind); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Remote spawn and ask.
	pid, err := n1.SpawnOn(ctx, "n3", "echo", "greeter", []byte("hello "))
	if err != nil {
		t.Fatal(err)
	}
	if pid.Address() != n3.Address() || pid.Name() != "greeter" {
		t.Fatalf("spawned %v, want greeter on %s", pid, n3.Address())
	}
	got, err := actor.Ask[*wrapperspb.StringValue](ctx, n1.System(), pid, wrapperspb.String("world"))
	if err != nil || got.Value != "hello world" {
		t.Fatalf("Ask = %v, %v", got, err)
	}
	if _, err := n1.SpawnOn(ctx, "n3", "nope", "", nil); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := n1.SpawnOn(ctx, "n9", "echo", "", nil); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("unknown node: %v", err)
	}

	// An actor on n1 monitors the greeter on n3; n2 watches node events.
	downs := make(chan *actor.Down, 1)
	w, _ := n1.System().Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.PID:
			c.Monitor(m)
			c.Reply(true)
		case *actor.Down:
			downs <- m
		}
	}))
	if _, err := actor.Ask[bool](ctx, n1.System(), w, pid); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "monitor recorded on n3", 5*time.Second, func() bool {
		i, ok := n3.System().Info(pid)
		return ok && i.Monitors == 1
	})
	ev2 := eventSink(t, n2)
	nextEvent(t, ev2, NodeUp, "n3") // the subscription starts with the alive members

	start := time.Now()
	n3.Crash()
	nextEvent(t, ev2, NodeDown, "n3")
	select {
	case d := <-downs:
		if d.Reason != actor.NoConnection || !d.PID.Equal(pid) {
			t.Fatalf("Down = %+v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("remote monitor did not fire")
	}
	t.Logf("crash to nodedown and remote Down: %v", time.Since(start))
	// Sends to the dead node fail fast.
	t0 := time.Now()
	if _, err := actor.Ask[*wrapperspb.StringValue](context.Background(), n1.System(), pid, wrapperspb.String("x")); !errors.Is(err, actor.ErrDeadActor) {
		t.Fatalf("Ask to a crashed node: %v", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("Ask to a crashed node took %v", d)
	}
	if m, _ := n1.Member("n3"); m.State != Dead {
		t.Fatalf("n1 sees n3 as %v", m.State)
	}
}

func TestClusterPartitionAndHeal(t *testing.T) {
	nodes, faults := testCluster(t, 3)
	n1, n2 := nodes[0], nodes[1]
	ev1 := eventSink(t, n1)
	ev2 := eventSink(t, n2)
	if err := faults.Partition([]string{"n1"}, []string{"n2", "n3"}); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ev1, NodeDown, "n2", "n3")
	expectEvents(t, ev2, NodeDown, "n1")
	// Actor messages across the partition are dropped too.
	echo, _ := n2.System().Spawn(actor.PropsFromFunc(func(c *actor.Context) { c.Reply(c.Message()) }))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := actor.Ask[*wrapperspb.StringValue](ctx, n1.System(), echo, wrapperspb.String("x")); err == nil {
		t.Fatal("an Ask crossed the partition")
	}
	faults.Heal()
	jctx, jcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer jcancel()
	if err := n1.Join(jctx, n2.GossipAddress()); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, ev1, NodeUp, "n2")
	nextEvent(t, ev2, NodeUp, "n1")
	for _, nd := range nodes {
		waitMembers(t, nd, 3)
	}
	got, err := actor.Ask[*wrapperspb.StringValue](jctx, n1.System(), echo, wrapperspb.String("healed"))
	if err != nil || got.Value != "healed" {
		t.Fatalf("after heal: %v, %v", got, err)
	}
}

func TestClusterLeaveIsNotACrash(t *testing.T) {
	nodes, _ := testCluster(t, 2)
	ev := eventSink(t, nodes[0])
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nodes[1].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	e := nextEvent(t, ev, NodeLeft, "n2")
	if e.Member.State != Left {
		t.Fatalf("event %+v", e)
	}
}

func TestClusterWrongSecretCannotJoin(t *testing.T) {
	a := Local("a")
	a.Secret = "right"
	a.Logger = zap.NewNop()
	na := startNode(t, a)
	b := Local("b")
	b.Secret = "wrong"
	b.Logger = zap.NewNop()
	b.Seeds = []string{na.GossipAddress()}
	b.JoinTimeout = 500 * time.Millisecond
	nb, err := NewNode(b)
	if err != nil {
		t.Fatal(err)
	}
	err = nb.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cluster secret") {
		t.Fatalf("join with a wrong secret: %v", err)
	}
	if alive(na) != 1 {
		t.Fatalf("a sees %d members", alive(na))
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Name is required"},
		{Config{Name: "x", RemoteBind: "nope"}, "RemoteBind"},
		{Config{Name: "x", RemoteBind: "0.0.0.0:0"}, "RemoteAdvertise is required"},
		{Config{Name: "x", GossipBind: "1.2.3.4:99999"}, "GossipBind"},
	} {
		if _, err := NewNode(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// Nodes configured with mutual TLS talk; a node whose certificate comes from
// another CA joins gossip (gossip is protected by the secret, not TLS) but
// cannot reach actors over the transport.
func TestClusterMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	other := newTestCA(t, dir, "other-ca")
	tlsFor := map[string]TLSConfig{
		"n1": ca.issue(t, dir, "n1"),
		"n2": ca.issue(t, dir, "n2"),
		"n3": other.issue(t, dir, "n3"),
	}
	nodes, _ := testCluster(t, 3, func(c *Config) { c.TLS = tlsFor[c.Name] })
	for _, nd := range nodes {
		if err := nd.RegisterKind("echo", echoKind); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pid, err := nodes[0].SpawnOn(ctx, "n2", "echo", "", []byte("tls "))
	if err != nil {
		t.Fatal(err)
	}
	got, err := actor.Ask[*wrapperspb.StringValue](ctx, nodes[0].System(), pid, wrapperspb.String("ok"))
	if err != nil || got.Value != "tls ok" {
		t.Fatalf("Ask over mTLS = %v, %v", got, err)
	}
	short, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel2()
	if _, err := nodes[2].SpawnOn(short, "n1", "echo", "", nil); err == nil {
		t.Fatal("a node with a certificate from another CA reached n1")
	}
}

func TestClusterMetrics(t *testing.T) {
	nodes, _ := testCluster(t, 2)
	for _, nd := range nodes {
		_ = nd.RegisterKind("echo", echoKind)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pid, err := nodes[0].SpawnOn(ctx, "n2", "echo", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := actor.Ask[*wrapperspb.StringValue](ctx, nodes[0].System(), pid, wrapperspb.String("x")); err != nil {
			t.Fatal(err)
		}
	}
	value := func(nd *Node, name, label string) float64 {
		mfs, err := nd.Gatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetValue() == label {
						if c := m.GetCounter(); c != nil {
							return c.GetValue()
						}
						return m.GetGauge().GetValue()
					}
				}
			}
		}
		return 0
	}
	// The spawn request plus five asks went n1 → n2, and their replies back.
	if v := value(nodes[0], "cluster_messages_sent_total", "n2"); v < 6 {
		t.Errorf("n1 sent %v messages to n2, want >= 6", v)
	}
	if v := value(nodes[1], "cluster_messages_received_total", "n1"); v < 6 {
		t.Errorf("n2 received %v messages from n1, want >= 6", v)
	}
	if v := value(nodes[0], "cluster_members", "alive"); v != 2 {
		t.Errorf("cluster_members{state=alive} = %v on n1", v)
	}
}

// TestClusterRestartUnderSameName: a crashed node restarted under its name,
// at a new gossip port, is taken back at once (not after the dead entry is
// forgotten, 15 s with memberlist's local defaults).
func TestClusterRestartUnderSameName(t *testing.T) {
	nodes, faults := testCluster(t, 3)
	ev1 := eventSink(t, nodes[0])
	nodes[2].Stop()
	expectEvents(t, ev1, NodeDown, "n3")
	cfg := Local("n3")
	cfg.Logger = testLogger(t)
	cfg.Faults = faults
	cfg.Seeds = []string{nodes[0].GossipAddress()}
	start := time.Now()
	n3 := startNode(t, cfg)
	nextEvent(t, ev1, NodeUp, "n3")
	waitFor(t, "n3 sees 3 alive", 5*time.Second, func() bool { return alive(n3) == 3 })
	t.Logf("restarted node taken back after %v", time.Since(start))
}

// A node may advertise its actor transport under a DNS name (a pod's stable
// name in Kubernetes) while gossip advertises an IP: PIDs carry the name,
// and other nodes dial it.
func TestRemoteAdvertiseDNSName(t *testing.T) {
	addr, err := freeport.Pick("127.0.0.1", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	cfg := Local("dns")
	cfg.Logger = zap.NewNop()
	cfg.RemoteBind = "127.0.0.1:" + port
	cfg.RemoteAdvertise = "localhost:" + port
	named := startNode(t, cfg)
	if named.Address() != "localhost:"+port {
		t.Fatalf("address %q, want localhost:%s", named.Address(), port)
	}
	other := Local("other")
	other.Logger = zap.NewNop()
	other.Seeds = []string{named.GossipAddress()}
	n2 := startNode(t, other)
	waitMembers(t, n2, 2)
	echo, err := named.System().Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			c.Reply(wrapperspb.String("echo " + m.GetValue()))
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if echo.Address() != "localhost:"+port {
		t.Fatalf("pid address %q", echo.Address())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := actor.Ask[*wrapperspb.StringValue](ctx, n2.System(), echo, wrapperspb.String("hi"))
	if err != nil || got.GetValue() != "echo hi" {
		t.Fatalf("Ask through a DNS name = %v, %v", got, err)
	}
}
