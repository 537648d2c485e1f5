//go:build !race

// Several nodes (protoactor remote transports) in one process: see the
// Makefile's norace target for why these tests run without -race.

package raft_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/raft"
	"github.com/distributed-go/distributed/behaviors/replog"
	"github.com/distributed-go/distributed/cluster"
)

// testCluster is n nodes on loopback, each running member i+1 of group
// "kv", with fixed actor-transport ports so that a crashed node can be
// restarted at the same address from its data directory.
type testCluster struct {
	t      testing.TB
	faults *cluster.Faults
	dir    string
	mu     sync.Mutex
	nodes  []*cluster.Node // nil while crashed
	addrs  []string
	peers  map[uint64]string
	client *cluster.Node // a member-less node the clients send from
	// snapEvery and keep set Config.SnapshotEntries and CompactKeep.
	snapEvery, keep int
	// logs records the nodes' logs at Info and above.
	logs *observer.ObservedLogs
	core zapcore.Core
}

func newTestCluster(t testing.TB, n int, opts ...func(*testCluster)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, faults: cluster.NewFaults(1), dir: t.TempDir(), nodes: make([]*cluster.Node, n),
		peers: map[uint64]string{}}
	c.core, c.logs = observer.New(zap.InfoLevel)
	for _, o := range opts {
		o(c)
	}
	for i := range n {
		addr := freePort(t)
		c.addrs = append(c.addrs, addr)
		c.peers[uint64(i+1)] = addr
	}
	for i := range n {
		c.start(i)
	}
	c.client = c.newNode("client", "", "")
	t.Cleanup(func() {
		c.client.Stop()
		for i := range c.nodes {
			c.crash(i)
		}
	})
	return c
}

// snapshots makes members snapshot every n entries and keep keep entries.
func snapshots(n, keep int) func(*testCluster) {
	return func(c *testCluster) { c.snapEvery, c.keep = n, keep }
}

func nodeName(i int) string { return "n" + strconv.Itoa(i+1) }

func (c *testCluster) seeds(except int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s []string
	for i, nd := range c.nodes {
		if nd != nil && i != except {
			s = append(s, nd.GossipAddress())
		}
	}
	if c.client != nil {
		s = append(s, c.client.GossipAddress())
	}
	return s
}

func (c *testCluster) newNode(name, remote, dataDir string) *cluster.Node {
	c.t.Helper()
	cfg := cluster.Local(name)
	cfg.Logger = zap.New(c.core)
	cfg.Faults = c.faults
	cfg.Seeds = c.seeds(-1)
	cfg.DataDir = dataDir
	if remote != "" {
		cfg.RemoteBind = remote
	}
	nd, err := cluster.NewNode(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := nd.Start(ctx); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	return nd
}

// start starts node i (again) from its data directory, with its member.
func (c *testCluster) start(i int) {
	c.t.Helper()
	nd := c.newNode(nodeName(i), c.addrs[i], filepath.Join(c.dir, nodeName(i)))
	_, err := raft.Start(nd.System(), raft.Config{
		Group:           "kv",
		ID:              uint64(i + 1),
		Peers:           c.peers,
		Dir:             filepath.Join(nd.DataDir(), "raft", "kv"),
		NewStateMachine: func() replog.StateMachine { return kv.NewStore() },
		SnapshotEntries: c.snapEvery,
		CompactKeep:     c.keep,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.nodes[i] = nd
	c.mu.Unlock()
}

// crash stops node i without a goodbye.
func (c *testCluster) crash(i int) {
	c.mu.Lock()
	nd := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if nd != nil {
		nd.Crash()
	}
}

func (c *testCluster) node(i int) *cluster.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

func (c *testCluster) raftClient(opts raft.ClientOptions) *raft.Client {
	return raft.NewClient(c.client.System(), "kv", c.peers, opts)
}

// leader waits until a live member reports itself leader and returns its
// index.
func (c *testCluster) leader(timeout time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	rc := c.raftClient(raft.ClientOptions{})
	for time.Now().Before(deadline) {
		for i := range c.nodes {
			if c.node(i) == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			st, err := rc.Status(ctx, uint64(i+1))
			cancel()
			if err == nil && st.Role == "leader" {
				return i
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("no leader within %v", timeout)
	return -1
}

// killMember kills the Raft actor of node i (its supervisor restarts it).
func (c *testCluster) killMember(i int) error {
	nd := c.node(i)
	if nd == nil {
		return fmt.Errorf("node %d is down", i)
	}
	pid, ok := nd.System().WhereIs(raft.ActorName("kv", uint64(i+1)))
	if !ok {
		return fmt.Errorf("no member on node %d", i)
	}
	return nd.System().Kill(pid)
}

// waitApplied waits until every live member has applied at least index.
func (c *testCluster) waitApplied(index uint64, timeout time.Duration) {
	c.t.Helper()
	rc := c.raftClient(raft.ClientOptions{})
	deadline := time.Now().Add(timeout)
	for i := range c.nodes {
		for {
			if c.node(i) == nil {
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			st, err := rc.Status(ctx, uint64(i+1))
			cancel()
			if err == nil && st.Applied >= index {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("member %d has not applied %d within %v (status %v, %v)", i+1, index, timeout, st, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
