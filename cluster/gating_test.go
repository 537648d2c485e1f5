package cluster

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
)

// Sends to PIDs of nodes that are not alive members are dead letters: no
// connection is dialled, so no goroutine is left behind per unreachable
// peer (protoactor leaks ~16 per dialled dead address), and an Ask fails at
// once instead of after protoactor's 5 × 2 s retries.
func TestSendsToUnknownNodesAreGated(t *testing.T) {
	cfg := Local("solo")
	cfg.Logger = zap.NewNop()
	nd := startNode(t, cfg)
	sys := nd.System()
	before := runtime.NumGoroutine()
	for i := 0; i < 100; i++ {
		raw := &pa.PID{Address: fmt.Sprintf("127.0.0.1:%d", 1+i), Id: "ghost#1"}
		pid, err := actor.PIDFromProtoactor(raw)
		if err != nil {
			t.Fatal(err)
		}
		sys.Send(pid, wrapperspb.String("hello"))
		start := time.Now()
		_, err = actor.Ask[*wrapperspb.StringValue](context.Background(), sys, pid, wrapperspb.String("x"))
		var dead *actor.DeadActorError
		if !errors.As(err, &dead) || dead.Reason != actor.NoConnection {
			t.Fatalf("Ask to an unknown node: %v", err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("Ask to an unknown node took %v", d)
		}
	}
	if after := runtime.NumGoroutine(); after > before+5 {
		t.Fatalf("goroutines grew from %d to %d after sending to 100 unknown nodes", before, after)
	}
}
