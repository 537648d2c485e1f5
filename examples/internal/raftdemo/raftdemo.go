// Package raftdemo starts the small Raft key-value clusters the examples
// tell stories with: n nodes in this process on loopback, each running one
// member of the group "kv", plus a member-less node that clients send from.
package raftdemo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/raft"
	"github.com/distributed-go/distributed/behaviors/raft/rpcpb"
	"github.com/distributed-go/distributed/behaviors/replog"
	"github.com/distributed-go/distributed/cluster"
	"github.com/distributed-go/distributed/internal/freeport"
)

// Group is the Raft group the members form.
const Group = "kv"

// Cluster is n nodes, each with a member, sharing one set of fault rules.
type Cluster struct {
	Nodes  []*cluster.Node
	Client *cluster.Node // sends client requests; runs no member
	Peers  map[uint64]string
	Faults *cluster.Faults
	dir    string
	level  zap.AtomicLevel
}

// Start starts n nodes and their members, with data under a new temporary
// directory. Logs at Warn and above go to stderr.
func Start(ctx context.Context, n int) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "raftdemo-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Peers: map[uint64]string{}, Faults: cluster.NewFaults(1), dir: dir,
		level: zap.NewAtomicLevelAt(zap.WarnLevel)}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.TimeKey = ""
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), c.level))
	addrs := make([]string, n)
	taken := map[string]bool{}
	for i := range n {
		// Below the ephemeral port range: the nodes started first dial
		// their peers, and an outbound connection must not be given a
		// port reserved for a node that binds it later.
		if addrs[i], err = freeport.Pick("127.0.0.1", false, taken); err != nil {
			return nil, err
		}
		c.Peers[uint64(i+1)] = addrs[i]
	}
	start := func(name, remote string) (*cluster.Node, error) {
		cfg := cluster.Local(name)
		cfg.Logger, cfg.Faults = log.With(zap.String("node", name)), c.Faults
		if remote != "" {
			cfg.RemoteBind = remote
			cfg.DataDir = filepath.Join(dir, name)
		}
		for _, nd := range c.Nodes {
			cfg.Seeds = append(cfg.Seeds, nd.GossipAddress())
		}
		nd, err := cluster.NewNode(cfg)
		if err != nil {
			return nil, err
		}
		return nd, nd.Start(ctx)
	}
	for i := range n {
		nd, err := start(NodeName(i+1), addrs[i])
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Nodes = append(c.Nodes, nd)
		if _, err := raft.Start(nd.System(), raft.Config{
			Group: Group, ID: uint64(i + 1), Peers: c.Peers,
			Dir:             filepath.Join(nd.DataDir(), "raft", Group),
			NewStateMachine: func() replog.StateMachine { return kv.NewStore() },
		}); err != nil {
			c.Close()
			return nil, err
		}
	}
	if c.Client, err = start("client", ""); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// NodeName is the name of the node running member id.
func NodeName(id int) string { return "n" + strconv.Itoa(id) }

// RaftClient returns a client of the group, sending from the client node.
func (c *Cluster) RaftClient(opts raft.ClientOptions) *raft.Client {
	return raft.NewClient(c.Client.System(), Group, c.Peers, opts)
}

// Status asks member id for its status.
func (c *Cluster) Status(ctx context.Context, id uint64) (*rpcpb.Status, error) {
	return c.RaftClient(raft.ClientOptions{}).Status(ctx, id)
}

// Leader waits until a member reports itself leader and returns its status.
func (c *Cluster) Leader(ctx context.Context) (*rpcpb.Status, error) {
	for {
		for id := range c.Peers {
			sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			st, err := c.Status(sctx, id)
			cancel()
			if err == nil && st.Role == "leader" {
				return st, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no leader: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// KillMember kills the Raft actor of member id; its supervisor restarts it.
func (c *Cluster) KillMember(id uint64) error {
	sys := c.Nodes[id-1].System()
	pid, ok := sys.WhereIs(raft.ActorName(Group, id))
	if !ok {
		return fmt.Errorf("member %d is not running", id)
	}
	return sys.Kill(pid)
}

// Close makes every node leave the cluster and removes the data.
func (c *Cluster) Close() {
	// Connections closing one after the other make the transport complain;
	// that is expected now and not worth showing.
	c.level.SetLevel(zap.FatalLevel)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c.Client != nil {
		c.Client.Leave(ctx)
	}
	for _, nd := range c.Nodes {
		nd.Leave(ctx)
	}
	os.RemoveAll(c.dir)
}
