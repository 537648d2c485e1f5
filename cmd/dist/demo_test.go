package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/distributed-go/distributed/observer"
)

// The tests of this file run the dist binary as separate OS processes:
// `dist demo` starts three `dist node` processes, and the CLI commands run
// in this process against the demo's observer.

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildOut  []byte
)

// distBinary builds the dist command once per test run.
func distBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH: cannot build dist")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dist-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "dist")
		buildOut, buildErr = exec.Command(goTool, "build", "-o", builtBin, ".").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/dist: %v\n%s", buildErr, buildOut)
	}
	return builtBin
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// demoProc is a running `dist demo`.
type demoProc struct {
	cmd    *exec.Cmd
	addr   string // the first node's observer host:port
	data   string
	out    *syncBuffer
	exited chan struct{}
}

// startDemo runs `dist demo` on free ports and waits for its tour.
func startDemo(t *testing.T, extra ...string) *demoProc {
	t.Helper()
	bin := distBinary(t)
	d := &demoProc{data: t.TempDir(), out: &syncBuffer{}, exited: make(chan struct{})}
	args := append([]string{"demo", "--http", "127.0.0.1:0", "--data", d.data, "--restart-after", "300ms"}, extra...)
	d.cmd = exec.Command(bin, args...)
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlRE := regexp.MustCompile(`observer\s+http://([0-9.]+:[0-9]+)/`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			d.out.Write([]byte(line + "\n"))
			if m := urlRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_ = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = d.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-d.exited:
			case <-time.After(20 * time.Second):
				_ = d.cmd.Process.Kill()
				<-d.exited
			}
		}
		if t.Failed() {
			t.Logf("dist demo output:\n%s", d.out)
			for _, n := range []string{"n1", "n2", "n3"} {
				if b, err := os.ReadFile(filepath.Join(d.data, n, "node.log")); err == nil {
					t.Logf("log of %s (last 3000 bytes):\n%s", n, tail(b, 3000))
				}
			}
		}
	})
	select {
	case d.addr = <-found:
	case <-d.exited:
		t.Fatalf("dist demo exited before it was ready:\n%s", d.out)
	case <-time.After(90 * time.Second):
		t.Fatalf("dist demo did not print its observer URL within 90 s:\n%s", d.out)
	}
	return d
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// dist runs a CLI command in this process and returns its exit code and
// output.
func dist(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func snapshot(t *testing.T, addr string) *observer.Snapshot {
	t.Helper()
	code, out, errOut := dist("tree", "--addr", addr, "--json")
	if code != exitOK {
		t.Fatalf("dist tree --json: exit %d: %s", code, errOut)
	}
	var nodes []observer.NodeView
	if err := json.Unmarshal([]byte(out), &nodes); err != nil {
		t.Fatalf("dist tree --json: %v\n%s", err, out)
	}
	code, out, errOut = dist("members", "--addr", addr, "--json")
	if code != exitOK {
		t.Fatalf("dist members --json: exit %d: %s", code, errOut)
	}
	var members []observer.Member
	if err := json.Unmarshal([]byte(out), &members); err != nil {
		t.Fatalf("dist members --json: %v\n%s", err, out)
	}
	return &observer.Snapshot{Members: members, Nodes: nodes}
}

func aliveMembers(s *observer.Snapshot) int {
	n := 0
	for _, m := range s.Members {
		if m.State == "alive" {
			n++
		}
	}
	return n
}

// child returns the live actor with the given child id on node.
func child(s *observer.Snapshot, node, id string) (observer.Process, bool) {
	for _, n := range s.Nodes {
		if n.Name != node {
			continue
		}
		for _, p := range n.Processes {
			if p.ChildID == id {
				return p, true
			}
		}
	}
	return observer.Process{}, false
}

func TestDemoAndCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-process cluster")
	}
	d := startDemo(t, "--workload", "services")
	a := d.addr
	waitFor(t, "three alive members, each with its services", 30*time.Second, func() bool {
		s := snapshot(t, a)
		_, ok := child(s, "n3", "counter")
		return aliveMembers(s) == 3 && len(s.Nodes) == 3 && ok
	})
	// The tour's commands.
	if !strings.Contains(d.out.String(), "dist kill") || !strings.Contains(d.out.String(), "Ctrl-C stops the cluster") {
		t.Fatalf("no tour in the demo's output:\n%s", d.out)
	}
	code, out, _ := dist("ps", "--addr", a)
	if code != exitOK || !strings.Contains(out, "pinger") || !strings.Contains(out, "MSG/S") {
		t.Fatalf("dist ps: %d\n%s", code, out)
	}

	// Kill n2's counter by name: its supervisor restarts it.
	before, _ := child(snapshot(t, a), "n2", "counter")
	code, out, errOut := dist("kill", "--addr", a, "n2:counter")
	if code != exitOK || !strings.Contains(out, "killed n2:") {
		t.Fatalf("dist kill: %d %s %s", code, out, errOut)
	}
	waitFor(t, "n2's counter restarted by its supervisor", 10*time.Second, func() bool {
		p, ok := child(snapshot(t, a), "n2", "counter")
		return ok && p.PID != before.PID && p.ChildRestarts == 1
	})
	// The old incarnation is gone: a clear error and exit code.
	code, _, errOut = dist("kill", "--addr", a, before.PID)
	if code != exitNotFound || !strings.Contains(errOut, "no live actor") {
		t.Fatalf("kill of a dead pid: %d %s", code, errOut)
	}
	code, _, errOut = dist("kill", "--addr", a, "n7:counter")
	if code != exitNotFound || !strings.Contains(errOut, "n7") {
		t.Fatalf("kill on an unknown node: %d %s", code, errOut)
	}

	// Partition n1 from the others, then heal.
	if code, out, errOut = dist("partition", "--addr", a, "n1"); code != exitOK {
		t.Fatalf("dist partition: %d %s %s", code, out, errOut)
	}
	waitFor(t, "n1 sees n2 and n3 dead", 10*time.Second, func() bool { return aliveMembers(snapshot(t, a)) == 1 })
	if code, out, _ = dist("tree", "--addr", a); code != exitOK || !strings.Contains(out, "n2: not inspected: dead as n1 sees it") {
		t.Fatalf("dist tree during the partition: %d\n%s", code, out)
	}
	code, _, errOut = dist("kill", "--addr", a, "n2:counter")
	if code != exitUnreachable || !strings.Contains(errOut, "partition") {
		t.Fatalf("kill across the partition: %d %s", code, errOut)
	}
	code, _, errOut = dist("crash", "--addr", a, "n3")
	if code != exitUnreachable || !strings.Contains(errOut, "n3 is dead") {
		t.Fatalf("crash across the partition: %d %s", code, errOut)
	}
	if code, out, errOut = dist("partition", "--addr", a, "--heal"); code != exitOK {
		t.Fatalf("dist partition --heal: %d %s %s", code, out, errOut)
	}
	waitFor(t, "n1 sees all three alive again", 20*time.Second, func() bool { return aliveMembers(snapshot(t, a)) == 3 })

	// Delay and drop rules show up on every node and go away.
	if code, _, errOut = dist("delay", "--addr", a, "n1", "*", "20ms"); code != exitOK {
		t.Fatalf("dist delay: %d %s", code, errOut)
	}
	s := snapshot(t, a)
	for _, n := range s.Nodes {
		if len(n.Faults) != 1 || !strings.Contains(n.Faults[0], "delay n1→*") {
			t.Fatalf("faults of %s after delay: %v", n.Name, n.Faults)
		}
	}
	if code, _, errOut = dist("delay", "--addr", a, "n1", "*", "0"); code != exitOK {
		t.Fatalf("dist delay 0: %d %s", code, errOut)
	}
	if code, _, _ = dist("drop", "--addr", a, "n2", "n3", "--p", "7"); code != exitUsage {
		t.Fatalf("drop with p=7: exit %d, want usage", code)
	}

	// Crash n3: the others see it dead, the demo restarts it.
	if code, out, errOut = dist("crash", "--addr", a, "n3"); code != exitOK {
		t.Fatalf("dist crash: %d %s %s", code, out, errOut)
	}
	waitFor(t, "the demo restarted n3", 15*time.Second, func() bool {
		return strings.Contains(d.out.String(), "n3 restarted")
	})
	waitFor(t, "n3 back with its services", 20*time.Second, func() bool {
		s := snapshot(t, a)
		_, ok := child(s, "n3", "counter")
		return aliveMembers(s) == 3 && ok
	})

	// Ctrl-C stops everything.
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("dist demo did not stop within 20 s of SIGINT")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("dist demo exited with %d", code)
	}
	if code, _, _ := dist("members", "--addr", a); code != exitUnreachable {
		t.Fatalf("members after the demo stopped: exit %d, want %d", code, exitUnreachable)
	}
}

func TestCLIErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, exitUsage, "Usage: dist"},
		{[]string{"frobnicate"}, exitUsage, "unknown command"},
		{[]string{"kill"}, exitUsage, "kill takes one actor"},
		{[]string{"partition"}, exitUsage, "name the nodes"},
		{[]string{"delay", "n1", "n2", "soon"}, exitUsage, "want e.g. 200ms"},
		{[]string{"members", "--addr", "127.0.0.1:1"}, exitUnreachable, "node unreachable"},
		{[]string{"kv"}, exitUsage, "which operation"},
		{[]string{"kv", "put", "x"}, exitUsage, "needs 2 argument"},
		{[]string{"kv", "get", "x", "--addr", "127.0.0.1:1"}, exitUnreachable, "unreachable"},
		{[]string{"check", "--addr", "127.0.0.1:1", "--d", "1s"}, exitUnreachable, "unreachable"},
		{[]string{"node"}, exitUsage, "--name is required"},
		{[]string{"node", "--name", "x", "--log-format", "xml"}, exitUsage, "--log-format"},
		{[]string{"demo", "--nodes", "0"}, exitUsage, "--nodes 0"},
	}
	for _, c := range cases {
		code, out, errOut := dist(c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("dist %v: exit %d, output %q; want exit %d and %q", c.args, code, out+errOut, c.code, c.want)
		}
	}
	code, _, errOut := dist("help", "kill")
	if code != exitOK || !strings.Contains(errOut, "Usage: dist kill") || !strings.Contains(errOut, "-addr") {
		t.Errorf("dist help kill: exit %d, %q", code, errOut)
	}
}

// startSoloNode runs one `dist node` with a secret and the services
// workload, without actions, and waits until it is ready.
func startSoloNode(t *testing.T) (addr string) {
	t.Helper()
	bin := distBinary(t)
	addr = freeAddr(t)
	out := &syncBuffer{}
	cmd := exec.Command(bin, "node", "--name", "solo", "--listen", "127.0.0.1:0", "--gossip", freeAddr(t),
		"--http", addr, "--secret", "cookie", "--workload", "services")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("node output:\n%s", out)
		}
	})
	cl := observer.NewClient(addr, "")
	waitFor(t, "the node is ready", 30*time.Second, func() bool {
		return cl.Health(context.Background()) == nil
	})
	// JSON logs by default.
	if first, _, _ := strings.Cut(out.String(), "\n"); !strings.HasPrefix(first, "{") {
		t.Fatalf("dist node does not log JSON: %q", first)
	}
	return addr
}

// A node without --actions is read-only, and a cluster with a secret
// rejects a client without it or with a wrong one.
func TestNodeSecretAndReadOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node process")
	}
	addr := startSoloNode(t)
	code, _, errOut := dist("ps", "--addr", addr)
	if code != exitUnauthorized || !strings.Contains(errOut, "secret") {
		t.Fatalf("ps without the secret: %d %s", code, errOut)
	}
	code, _, errOut = dist("ps", "--addr", addr, "--secret", "biscuit")
	if code != exitUnauthorized || !strings.Contains(errOut, "wrong cluster secret") {
		t.Fatalf("ps with a wrong secret: %d %s", code, errOut)
	}
	code, psOut, errOut := dist("ps", "--addr", addr, "--secret", "cookie")
	if code != exitOK || !strings.Contains(psOut, "counter") {
		t.Fatalf("ps with the secret: %d %s %s", code, psOut, errOut)
	}
	code, _, errOut = dist("kill", "--addr", addr, "--secret", "cookie", "solo:counter")
	if code != exitDisabled || !strings.Contains(errOut, "--actions") {
		t.Fatalf("kill on a read-only node: %d %s", code, errOut)
	}
}

// freeAddr returns a 127.0.0.1 address with a port that was free for TCP
// and UDP a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	a, err := pickPort("127.0.0.1", 0, map[string]bool{}, true)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
