package cluster

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/distributed-go/distributed/actor"
)

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	nd, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nd.Stop)
	return nd
}

func alive(nd *Node) int {
	c := 0
	for _, m := range nd.Members() {
		if m.State == Alive {
			c++
		}
	}
	return c
}

func waitMembers(t *testing.T, nd *Node, want int) {
	t.Helper()
	waitFor(t, nd.Name()+" sees "+string(rune('0'+want))+" alive", 10*time.Second, func() bool { return alive(nd) == want })
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// eventSink subscribes an actor to node events and forwards them.
func eventSink(t *testing.T, nd *Node) <-chan *NodeEvent {
	ch := make(chan *NodeEvent, 64)
	pid, err := nd.System().Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if e, ok := c.Message().(*NodeEvent); ok {
			ch <- e
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	nd.MonitorNodes(pid)
	return ch
}

func nextEvent(t *testing.T, ch <-chan *NodeEvent, kind NodeEventKind, member string) *NodeEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-ch:
			if e.Kind == kind && e.Member.Name == member {
				return e
			}
			t.Logf("skipping event %s %s", e.Kind, e.Member.Name)
		case <-timeout:
			t.Fatalf("no %s event for %s", kind, member)
		}
	}
}

// expectEvents waits for one event of kind for each member, in any order.
func expectEvents(t *testing.T, ch <-chan *NodeEvent, kind NodeEventKind, members ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, m := range members {
		want[m] = true
	}
	timeout := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case e := <-ch:
			if e.Kind == kind {
				delete(want, e.Member.Name)
			}
		case <-timeout:
			t.Fatalf("no %s event for %v", kind, want)
		}
	}
}

// testLogger logs at Warn into a buffer that the test prints if it fails.
// protoactor's transport goroutines may log after a test has ended (a
// connection closing, a retry), which a zaptest logger would turn into a
// panic; a buffer does not mind.
func testLogger(t *testing.T) *zap.Logger {
	buf := &syncBuffer{}
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	core := zapcore.NewCore(enc, zapcore.AddSync(buf), zap.WarnLevel)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", buf.String())
		}
	})
	return zap.New(core)
}
