package cluster

// A cluster across real OS processes: this process runs one node (so one
// protoactor remote, and the test can run under -race), two more run
// cmd internal/testnode. One is killed with SIGKILL, the other stopped with
// SIGTERM.

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
)

// osNode is a testnode child process.
type osNode struct {
	name   string
	cmd    *exec.Cmd
	remote string // its actor transport address
	gossip string
	stderr *syncBuffer
	exited chan struct{} // closed when Wait returned
	err    error         // Wait's result, once exited is closed
}

// buildTestnode builds cmd internal/testnode into a temporary directory.
func buildTestnode(t testing.TB) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH: cannot build the test node binary")
	}
	bin := filepath.Join(t.TempDir(), "testnode")
	cmd := exec.Command(goTool, "build", "-o", bin, "./internal/testnode")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cluster/internal/testnode: %v\n%s", err, out)
	}
	return bin
}

// startOSNode starts a testnode process and waits for its READY line. The
// process is killed at the end of the test if it is still running.
func startOSNode(t testing.TB, bin, name, secret string, seeds ...string) *osNode {
	t.Helper()
	n := &osNode{name: name, stderr: &syncBuffer{}, exited: make(chan struct{})}
	n.cmd = exec.Command(bin, "--name", name, "--secret", secret, "--join", strings.Join(seeds, ","))
	n.cmd.Stderr = n.stderr
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "READY" {
				ready <- f[1:]
			}
		}
		n.err = n.cmd.Wait() // after stdout is drained, as Wait requires
		close(n.exited)
	}()
	t.Cleanup(func() {
		_ = n.cmd.Process.Kill()
		<-n.exited
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, n.stderr)
		}
	})
	select {
	case addrs := <-ready:
		n.remote, n.gossip = addrs[0], addrs[1]
	case <-n.exited:
		t.Fatalf("%s exited before it was ready: %v\n%s", name, n.err, n.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not print READY within 30 s\n%s", name, n.stderr)
	}
	return n
}

// nodeEvents subscribes an actor on nd to node events.
func nodeEvents(t *testing.T, nd *Node) <-chan *NodeEvent {
	t.Helper()
	ch := make(chan *NodeEvent, 64)
	pid, err := nd.System().Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		if e, ok := c.Message().(*NodeEvent); ok {
			select {
			case ch <- e:
			default:
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	nd.MonitorNodes(pid)
	return ch
}

// awaitNodeEvent waits up to d for an event of kind about member, and
// returns how long it took.
func awaitNodeEvent(t *testing.T, ch <-chan *NodeEvent, kind NodeEventKind, member string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	timeout := time.After(d)
	for {
		select {
		case e := <-ch:
			if e.Kind == kind && e.Member.Name == member {
				return time.Since(start)
			}
		case <-timeout:
			t.Fatalf("no %s event for %s within %v", kind, member, d)
		}
	}
}

func TestProcessClusterKillAndTerm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts node processes")
	}
	bin := buildTestnode(t)
	out, err := exec.Command(bin).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "--name is required") {
		t.Fatalf("testnode without --name: %v\n%s", err, out)
	}
	const secret = "process-test-secret"

	cfg := Local("n1")
	cfg.Secret = secret
	cfg.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	n1, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n1.Stop)
	events := nodeEvents(t, n1)

	n2 := startOSNode(t, bin, "n2", secret, n1.GossipAddress())
	n3 := startOSNode(t, bin, "n3", secret, n1.GossipAddress())
	awaitNodeEvent(t, events, NodeUp, "n2", 10*time.Second)
	awaitNodeEvent(t, events, NodeUp, "n3", 10*time.Second)
	for _, o := range []*osNode{n2, n3} {
		if m, ok := n1.Member(o.name); !ok || m.RemoteAddress != o.remote || m.State != Alive {
			t.Fatalf("n1 sees %s as %+v, want alive at %s", o.name, m, o.remote)
		}
	}

	// Remote spawn on n2's process, and an Ask across processes.
	echo, err := n1.SpawnOn(ctx, "n2", "echo", "greeter", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := actor.Ask[*wrapperspb.StringValue](ctx, n1.System(), echo, wrapperspb.String("hi"))
	if err != nil || got.GetValue() != "echo hi from n2" {
		t.Fatalf("Ask = %v, %v", got, err)
	}

	// An actor on n1 monitors the echo actor on n2.
	downs := make(chan *actor.Down, 1)
	watcher, err := n1.System().Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.PID:
			c.Monitor(m)
			c.Reply(true)
		case *actor.Down:
			downs <- m
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := actor.Ask[bool](ctx, n1.System(), watcher, echo); err != nil {
		t.Fatal(err)
	}
	// The monitor request and this Ask travel in order on one connection:
	// once it is answered, n2 has recorded the monitor.
	if _, err := actor.Ask[*wrapperspb.StringValue](ctx, n1.System(), echo, wrapperspb.String("again")); err != nil {
		t.Fatal(err)
	}

	// kill -9 n2: a crash, detected by gossip.
	if err := n2.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	took := awaitNodeEvent(t, events, NodeDown, "n2", 10*time.Second)
	t.Logf("n2 killed: NodeDown on n1 after %v", took)
	select {
	case d := <-downs:
		if d.Reason != actor.NoConnection || !d.PID.Equal(echo) {
			t.Fatalf("Down = %+v, want noconnection for %v", d, echo)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the monitor of the actor on the killed node did not fire")
	}
	start := time.Now()
	_, err = actor.Ask[*wrapperspb.StringValue](ctx, n1.System(), echo, wrapperspb.String("anyone?"))
	var dead *actor.DeadActorError
	if !errors.As(err, &dead) || dead.Reason != actor.NoConnection {
		t.Fatalf("Ask to an actor on the killed node: %v, want a dead-actor error with reason noconnection", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Ask to an actor on the killed node took %v, want a fast failure", d)
	}
	if m, _ := n1.Member("n2"); m.State != Dead {
		t.Fatalf("n1 sees n2 as %v, want dead", m.State)
	}

	// SIGTERM n3: it leaves gracefully.
	if err := n3.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	awaitNodeEvent(t, events, NodeLeft, "n3", 10*time.Second)
	if m, _ := n1.Member("n3"); m.State != Left {
		t.Fatalf("n1 sees n3 as %v, want left", m.State)
	}
	select {
	case <-n3.exited:
		if n3.err != nil {
			t.Fatalf("n3 exited with %v after SIGTERM\n%s", n3.err, n3.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("n3 did not exit within 10 s of SIGTERM")
	}
	if !strings.Contains(n3.stderr.String(), `"msg":"leaving"`) {
		t.Fatalf("n3 did not log its leave:\n%s", n3.stderr)
	}
}
