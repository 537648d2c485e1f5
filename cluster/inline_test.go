package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
)

// A message from another node runs its actor on the connection's reader
// (actor.System.DeliverRemote). These tests cover what that must not
// break: an actor that blocks, even on a message behind it on the same
// connection, and ordering.

func detachedCount(t *testing.T, nd *Node) float64 {
	t.Helper()
	var m dto.Metric
	if err := nd.metrics.detached.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// An actor activated by a message from n1 asks an actor on n1 from inside
// its handler and waits. The reply comes back on the connection whose
// reader is running that handler: without the watchdog handing the
// connection to a new reader, the inner ask could only time out.
func TestInlineHandlerCallsBackToSenderNode(t *testing.T) {
	nodes, _ := testCluster(t, 2)
	n1, n2 := nodes[0], nodes[1]
	echo := benchSpawn(t, n1, func(c *actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			c.Reply(wrapperspb.String("echo:" + m.Value))
		}
	})
	caller := benchSpawn(t, n2, func(c *actor.Context) {
		m, ok := c.Message().(*wrapperspb.StringValue)
		if !ok {
			return
		}
		got, err := actor.AskTimeout[*wrapperspb.StringValue](context.Background(), c.System(), echo, m, 20*time.Second)
		if err != nil {
			c.Reply(wrapperspb.String("error: " + err.Error()))
			return
		}
		c.Reply(wrapperspb.String("via n2 " + got.Value))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		want := fmt.Sprintf("via n2 echo:%d", i)
		got, err := actor.Ask[*wrapperspb.StringValue](ctx, n1.System(), caller, wrapperspb.String(fmt.Sprint(i)))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if got.Value != want {
			t.Fatalf("call %d: got %q, want %q", i, got.Value, want)
		}
	}
	if detachedCount(t, n2) < 1 {
		t.Fatal("the reader running the blocked handler was never detached")
	}
}

// While an actor run on the reader is blocked, the connection's later
// frames reach other actors (no head-of-line blocking beyond the watchdog's
// check), and the blocked actor's own later messages arrive in order.
func TestInlineBlockedActorKeepsOrderAndFreesConnection(t *testing.T) {
	nodes, _ := testCluster(t, 2)
	n1, n2 := nodes[0], nodes[1]
	release := make(chan struct{})
	blocked := make(chan struct{})
	got := make(chan int64, 2000)
	slow := benchSpawn(t, n2, func(c *actor.Context) {
		m, ok := c.Message().(*wrapperspb.Int64Value)
		if !ok {
			return
		}
		if m.Value == 0 {
			close(blocked)
			<-release // blocks the reader it runs on
		}
		got <- m.Value
	})
	other := make(chan string, 1)
	bystander := benchSpawn(t, n2, func(c *actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			other <- m.Value
		}
	})
	const n = 1000
	sys := n1.System()
	// The first message arrives alone, so the reader runs the actor itself
	// (with frames waiting behind it, a worker would).
	sys.Send(slow, wrapperspb.Int64(0))
	select {
	case <-blocked:
	case <-time.After(20 * time.Second):
		t.Fatal("the first message never arrived")
	}
	for i := int64(1); i < n; i++ {
		sys.Send(slow, wrapperspb.Int64(i))
		if i == n/2 {
			sys.Send(bystander, wrapperspb.String("through"))
		}
	}
	select {
	case v := <-other:
		if v != "through" {
			t.Fatalf("bystander got %q", v)
		}
	case <-time.After(20 * time.Second):
		close(release)
		t.Fatal("a message behind the blocked actor's never arrived")
	}
	close(release)
	for want := range int64(n) {
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("slow actor: got %d, want %d", v, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("slow actor: message %d never arrived", want)
		}
	}
	if detachedCount(t, n2) < 1 {
		t.Fatal("no reader was detached")
	}
}
