package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/raft"
	"github.com/distributed-go/distributed/behaviors/replog"
	"github.com/distributed-go/distributed/cluster"
)

// ours is three nodes of this project on loopback, each with a Raft
// member, plus a member-less node the clients send from.
type ours struct {
	nodes   []*cluster.Node
	clients []*kv.Client
}

func startOurs(ctx context.Context, dir string, disk bool, clients int) (system, error) {
	s := &ours{}
	peers := map[uint64]string{}
	for i := 1; i <= 3; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		peers[uint64(i)] = l.Addr().String()
		l.Close()
	}
	start := func(name, remote string) (*cluster.Node, error) {
		cfg := cluster.Local(name)
		cfg.Logger = zap.NewNop()
		if remote != "" {
			cfg.RemoteBind, cfg.DataDir = remote, filepath.Join(dir, name)
		}
		for _, nd := range s.nodes {
			cfg.Seeds = append(cfg.Seeds, nd.GossipAddress())
		}
		nd, err := cluster.NewNode(cfg)
		if err != nil {
			return nil, err
		}
		if err := nd.Start(ctx); err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, nd)
		return nd, nil
	}
	for i := 1; i <= 3; i++ {
		nd, err := start("n"+strconv.Itoa(i), peers[uint64(i)])
		if err != nil {
			s.close()
			return nil, err
		}
		if _, err := raft.Start(nd.System(), raft.Config{Group: "kv", ID: uint64(i), Peers: peers,
			Dir:             filepath.Join(nd.DataDir(), "raft"),
			NewStateMachine: func() replog.StateMachine { return kv.NewStore() },
			InMemory:        !disk,
		}); err != nil {
			s.close()
			return nil, err
		}
	}
	cn, err := start("client", "")
	if err != nil {
		s.close()
		return nil, err
	}
	for range clients {
		s.clients = append(s.clients, kv.NewClient(raft.NewClient(cn.System(), "kv", peers, raft.ClientOptions{})))
	}
	if err := waitLeader(ctx, s.clients[0]); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// waitLeader returns once a write through c succeeds (a leader exists).
func waitLeader(ctx context.Context, c *kv.Client) error {
	for {
		err := c.Put(ctx, "warm", []byte("up"))
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("no leader: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *ours) put(ctx context.Context, c int, key string, value []byte) error {
	return s.clients[c].Put(ctx, key, value)
}

func (s *ours) close() {
	for _, nd := range s.nodes {
		nd.Stop()
	}
}

// oursLocal is three members of this project on one actor system: messages
// between members are passed in memory (no serialization, no network), as
// hashicorp/raft's in-memory transport does.
type oursLocal struct {
	sys     *actor.System
	clients []*kv.Client
}

func startOursLocal(ctx context.Context, dir string, disk bool, clients int) (system, error) {
	sys, err := actor.NewSystem(actor.Config{Name: "local", Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	s := &oursLocal{sys: sys}
	peers := map[uint64]string{1: sys.Address(), 2: sys.Address(), 3: sys.Address()}
	for id := range peers {
		if _, err := raft.Start(sys, raft.Config{Group: "kv", ID: id, Peers: peers,
			Dir:             filepath.Join(dir, strconv.FormatUint(id, 10)),
			NewStateMachine: func() replog.StateMachine { return kv.NewStore() },
			InMemory:        !disk,
		}); err != nil {
			s.close()
			return nil, err
		}
	}
	for range clients {
		s.clients = append(s.clients, kv.NewClient(raft.NewClient(sys, "kv", peers, raft.ClientOptions{})))
	}
	if err := waitLeader(ctx, s.clients[0]); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *oursLocal) put(ctx context.Context, c int, key string, value []byte) error {
	return s.clients[c].Put(ctx, key, value)
}

func (s *oursLocal) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.sys.Shutdown(ctx)
}
