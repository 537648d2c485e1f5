package raft_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/kv/kvcheck"
	"github.com/distributed-go/distributed/behaviors/raft"
	"github.com/distributed-go/distributed/behaviors/replog"
)

// localGroup runs n members of group "kv" on one actor system, without a
// network transport: members reach each other by name on the same node.
// mutate adjusts each member's Config (its Group too: a group of one can be
// renamed).
func localGroup(t *testing.T, n int, mutate ...func(*raft.Config)) (*actor.System, map[uint64]string) {
	t.Helper()
	sys, err := actor.NewSystem(actor.Config{Name: "local", Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Shutdown(ctx)
	})
	peers := map[uint64]string{}
	for id := uint64(1); id <= uint64(n); id++ {
		peers[id] = sys.Address()
	}
	dir := t.TempDir()
	for id := range peers {
		cfg := raft.Config{Group: "kv", ID: id, Peers: peers, Dir: filepath.Join(dir, fmt.Sprint(id)),
			NewStateMachine: func() replog.StateMachine { return kv.NewStore() }, SnapshotEntries: 200, CompactKeep: 20}
		for _, m := range mutate {
			m(&cfg)
		}
		cfg.Peers = peers
		if _, err := raft.Start(sys, cfg); err != nil {
			t.Fatal(err)
		}
	}
	return sys, peers
}

// TestLinearizabilityLocalKills: three members on one node (so the race
// detector sees the whole member, client and storage path), clients
// recording a history while member actors are killed at random and
// restarted by their supervisors.
func TestLinearizabilityLocalKills(t *testing.T) {
	t.Run("wal", func(t *testing.T) { localKills(t) })
	// The in-memory log survives a member's kill: the restarted member
	// finds its votes and entries again.
	t.Run("in-memory", func(t *testing.T) { localKills(t, func(c *raft.Config) { c.InMemory, c.Dir = true, "" }) })
}

func localKills(t *testing.T, mutate ...func(*raft.Config)) {
	sys, peers := localGroup(t, 3, mutate...)
	linearizable(t, 3*time.Second, rand.Uint64(), kvcheck.Workload{Clients: 4, Keys: 3, OpTimeout: time.Second},
		func() *kv.Client {
			return kv.NewClient(raft.NewClient(sys, "kv", peers, raft.ClientOptions{AttemptTimeout: 300 * time.Millisecond}))
		},
		func(ctx context.Context, rng *rand.Rand) (faults []string) {
			for ctx.Err() == nil {
				id := uint64(rng.IntN(3) + 1)
				if pid, ok := sys.WhereIs(raft.ActorName("kv", id)); ok && sys.Kill(pid) == nil {
					faults = append(faults, fmt.Sprintf("kill member %d", id))
				}
				sleepCtx(ctx, 400*time.Millisecond)
			}
			return faults
		})
}
