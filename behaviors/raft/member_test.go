package raft_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/raft"
	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"github.com/distributed-go/distributed/behaviors/raft/rpcpb"
)

func singleMember(t *testing.T, dir string, mutate ...func(*raft.Config)) (*actor.System, raft.Config) {
	t.Helper()
	var cfg raft.Config
	sys, _ := localGroup(t, 1, append([]func(*raft.Config){func(c *raft.Config) {
		c.Group, c.Dir, c.SnapshotEntries, c.CompactKeep = "solo", dir, 0, 0
	}}, mutate...)...)
	cfg = raft.Config{Group: "solo", ID: 1, Peers: map[uint64]string{1: sys.Address()}}
	for _, m := range mutate {
		m(&cfg)
	}
	return sys, cfg
}

// TestSingleMember: a group of one elects itself, serves writes and
// linearizable reads, and after its actor is killed the supervisor restarts
// it and the log gives back every acknowledged write.
func TestSingleMember(t *testing.T) {
	sys, cfg := singleMember(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kc := kv.NewClient(raft.NewClient(sys, cfg.Group, cfg.Peers, raft.ClientOptions{}))
	for i := range 50 {
		if err := kc.Put(ctx, "k", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		pid, ok := sys.WhereIs(raft.ActorName(cfg.Group, cfg.ID))
		if !ok {
			t.Fatal("member not registered")
		}
		if err := sys.Kill(pid); err != nil {
			t.Fatal(err)
		}
		v, ok, err := kc.Get(ctx, "k")
		if err != nil || !ok || len(v) != 1 || v[0] != 49 {
			t.Fatalf("round %d: get after restart = %v %v %v", round, v, ok, err)
		}
		if newPID, _ := sys.WhereIs(raft.ActorName(cfg.Group, cfg.ID)); newPID.String() == pid.String() {
			t.Fatal("member was not restarted")
		}
	}
	if sw, _, _, err := kc.CompareAndSwap(ctx, "k", []byte{49}, []byte("x")); err != nil || !sw {
		t.Fatalf("cas after restarts: %v %v", sw, err)
	}
}

// TestSnapshotAndRestart: the member snapshots and compacts its log as it
// goes; killed, it restarts from the snapshot plus the log after it.
func TestSnapshotAndRestart(t *testing.T) {
	sys, cfg := singleMember(t, t.TempDir(), func(c *raft.Config) { c.SnapshotEntries, c.CompactKeep = 50, 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rc := raft.NewClient(sys, cfg.Group, cfg.Peers, raft.ClientOptions{})
	kc := kv.NewClient(rc)
	for i := range 300 {
		if err := kc.Put(ctx, fmt.Sprintf("k%d", i%30), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	st, err := rc.Status(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if st.SnapshotIndex < 250 || st.FirstIndex < 200 {
		t.Fatalf("no snapshot or compaction: %v", st)
	}
	pid, _ := sys.WhereIs(raft.ActorName(cfg.Group, cfg.ID))
	if err := sys.Kill(pid); err != nil {
		t.Fatal(err)
	}
	for i := 270; i < 300; i++ {
		v, _, err := kc.Get(ctx, fmt.Sprintf("k%d", i%30))
		if err != nil || string(v) != fmt.Sprint(i) {
			t.Fatalf("after restart k%d = %q, %v", i%30, v, err)
		}
	}
	// Sessions came back with the snapshot: the client's next commands are
	// still accepted (its acknowledged seqs are known).
	if err := kc.Put(ctx, "more", nil); err != nil {
		t.Fatal(err)
	}
}

// TestMalformedInput: garbage from the network is refused, never crashes
// the member.
func TestMalformedInput(t *testing.T) {
	sys, cfg := singleMember(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pid, _ := sys.WhereIs(raft.ActorName(cfg.Group, cfg.ID))
	for _, m := range []*raftpb.Message{
		{}, {Type: raftpb.MessageType_MESSAGE_TYPE_APP}, {Type: 99, From: 7, To: 1},
		{Type: raftpb.MessageType_MESSAGE_TYPE_APP, From: 9, To: 1, Term: 1 << 62, Entries: []*raftpb.Entry{nil}},
	} {
		sys.Send(pid, m)
	}
	if _, err := actor.Ask[*rpcpb.Status](ctx, sys, pid, &rpcpb.StatusRequest{}); err != nil {
		t.Fatalf("member died on malformed input: %v", err)
	}
	kc := kv.NewClient(raft.NewClient(sys, cfg.Group, cfg.Peers, raft.ClientOptions{}))
	if err := kc.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := kc.Put(ctx, "", []byte("v")); !errors.Is(err, kv.ErrRejected) {
		t.Fatalf("empty key: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := raft.Props(raft.Config{Group: "a b", Peers: map[uint64]string{2: ""}})
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"Group", "ID must not be 0", "Dir is required", "NewStateMachine"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestMetrics: the seed's series are exported on the system's registry.
func TestMetrics(t *testing.T) {
	sys, cfg := singleMember(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kc := kv.NewClient(raft.NewClient(sys, cfg.Group, cfg.Peers, raft.ClientOptions{}))
	// Inspection (the observer) reads the member's summary from another
	// goroutine while it works.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			for _, p := range sys.Processes() {
				_ = p.Info
			}
		}
	}()
	for range 10 {
		if err := kc.Put(ctx, "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	pid, _ := sys.WhereIs(raft.ActorName(cfg.Group, cfg.ID))
	if pi, ok := sys.Info(pid); !ok || !strings.Contains(pi.Info, "role=leader") {
		t.Fatalf("member summary %q", pi.Info)
	}
	mfs, err := sys.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "node_id" && l.GetValue() == "1" {
					switch {
					case m.GetCounter() != nil:
						got[mf.GetName()] = m.GetCounter().GetValue()
					case m.GetGauge() != nil:
						got[mf.GetName()] = m.GetGauge().GetValue()
					case m.GetHistogram() != nil:
						got[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
					}
				}
			}
		}
	}
	for name, min := range map[string]float64{
		"raft_log_entries_total": 11, "consensus_round_duration_seconds": 10, "raft_fsync_duration_seconds": 1,
		"raft_term": 1, "raft_commit_index": 11, "raft_applied_index": 11, "raft_is_leader": 1,
		"raft_leader_changes_total": 1,
	} {
		if got[name] < min {
			t.Errorf("%s = %v, want at least %v", name, got[name], min)
		}
	}
}
