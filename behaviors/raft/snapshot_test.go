//go:build !race

package raft_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/raft"
	"github.com/distributed-go/distributed/behaviors/replog"
)

// TestLaggingFollowerCatchesUpFromSnapshot: a follower that was down while
// the others compacted their logs past its last entry is brought back by an
// InstallSnapshot, then by the log, and serves the same data.
func TestLaggingFollowerCatchesUpFromSnapshot(t *testing.T) {
	c := newTestCluster(t, 3, snapshots(50, 5))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kc := kv.NewClient(c.raftClient(raft.ClientOptions{}))
	l := c.leader(5 * time.Second)
	lagging := (l + 1) % 3
	c.crash(lagging)
	for i := range 300 {
		if err := kc.Put(ctx, fmt.Sprintf("k%d", i%40), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	rc := c.raftClient(raft.ClientOptions{})
	st, err := rc.Status(ctx, uint64(l+1))
	if err != nil {
		t.Fatal(err)
	}
	if st.FirstIndex < 100 || st.SnapshotIndex == 0 {
		t.Fatalf("leader did not compact: %v", st)
	}
	c.start(lagging)
	c.waitApplied(st.Commit, 20*time.Second)
	fst, err := rc.Status(ctx, uint64(lagging+1))
	if err != nil {
		t.Fatal(err)
	}
	if fst.SnapshotIndex == 0 {
		t.Fatalf("the lagging member caught up without a snapshot: %v", fst)
	}
	// Make the caught-up member needed for a quorum and read everything.
	c.crash(l)
	for i := 260; i < 300; i++ {
		v, _, err := kc.Get(ctx, fmt.Sprintf("k%d", i%40))
		if err != nil || string(v) != fmt.Sprint(i) {
			t.Fatalf("k%d = %q, %v", i%40, v, err)
		}
	}
}

// TestMembershipChange: a fourth member joins as a learner, catches up, is
// promoted to voter; an original member is removed; the group keeps serving.
func TestMembershipChange(t *testing.T) {
	c := newTestCluster(t, 3, snapshots(40, 5))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rc := c.raftClient(raft.ClientOptions{})
	kc := kv.NewClient(rc)
	for i := range 100 {
		if err := kc.Put(ctx, fmt.Sprintf("k%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	// Node 4 starts a member that joins.
	addr := freePort(t)
	n4 := c.newNode("n4", addr, filepath.Join(c.dir, "n4"))
	t.Cleanup(n4.Stop)
	if _, err := raft.Start(n4.System(), raft.Config{Group: "kv", ID: 4, Peers: c.peers, Join: true,
		Dir:             filepath.Join(n4.DataDir(), "raft", "kv"),
		NewStateMachine: func() replog.StateMachine { return kv.NewStore() },
		SnapshotEntries: 40, CompactKeep: 5,
	}); err != nil {
		t.Fatal(err)
	}
	cs, err := rc.AddLearner(ctx, 4, addr)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cs.Learners, 4) {
		t.Fatalf("after AddLearner: %v", cs)
	}
	lst, _ := rc.Status(ctx, uint64(c.leader(5*time.Second)+1))
	waitFor(t, "member 4 catches up", 20*time.Second, func() bool {
		st, err := rc.Status(ctx, 4)
		return err == nil && st.Applied >= lst.Commit
	})
	if cs, err = rc.AddVoter(ctx, 4, addr); err != nil || !slices.Contains(cs.Voters, 4) {
		t.Fatalf("promote: %v %v", cs, err)
	}
	if cs, err = rc.RemoveMember(ctx, 1); err != nil || slices.Contains(cs.Voters, 1) {
		t.Fatalf("remove: %v %v", cs, err)
	}
	// Member 1 is out of the group; voters are 2, 3 and 4. With member 3
	// down too, only 2 and 4 remain: a quorum only if 4 really votes.
	c.crash(0)
	c.crash(2)
	if err := kc.Put(ctx, "after", []byte("change")); err != nil {
		t.Fatalf("write with voters 2 and 4: %v", err)
	}
	for i := range 100 {
		if _, ok, err := kc.Get(ctx, fmt.Sprintf("k%d", i)); err != nil || !ok {
			t.Fatalf("k%d lost: %v %v", i, ok, err)
		}
	}
}
