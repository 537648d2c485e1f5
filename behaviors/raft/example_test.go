package raft_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/raft"
	"github.com/distributed-go/distributed/behaviors/replog"
)

// A group of one member on one actor system: write, kill the member, read
// the write back from the restarted member. A real group has members on
// several cluster nodes (see examples/raft_demo); the calls are the same.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sys, _ := actor.NewSystem(actor.Config{Name: "example", Logger: zap.NewNop()})
	defer sys.Shutdown(ctx)
	dir, _ := os.MkdirTemp("", "raft-example-")
	defer os.RemoveAll(dir)

	peers := map[uint64]string{1: sys.Address()}
	if _, err := raft.Start(sys, raft.Config{
		Group: "kv", ID: 1, Peers: peers, Dir: dir,
		NewStateMachine: func() replog.StateMachine { return kv.NewStore() },
	}); err != nil {
		panic(err)
	}
	store := kv.NewClient(raft.NewClient(sys, "kv", peers, raft.ClientOptions{}))
	if err := store.Put(ctx, "greeting", []byte("hello")); err != nil {
		panic(err)
	}

	member, _ := sys.WhereIs(raft.ActorName("kv", 1))
	_ = sys.Kill(member) // the supervisor restarts it from its log

	v, found, err := store.Get(ctx, "greeting")
	fmt.Println(string(v), found, err)
	// Output: hello true <nil>
}
