// Command remote measures remote request/reply between two nodes on
// loopback: ours against Erlang/OTP distribution on the same machine in the
// same run, the systems taking turns.
//
//	cd bench && go run ./remote [-turns 5] [-d 3s]
//
// Each turn runs, for -d each:
//
//   - ours, in one process: two cluster nodes in this process; an actor on
//     one requests an echo actor on the other and waits for the reply before
//     the next request (cluster's BenchmarkRemotePingPong);
//   - ours, two processes: the echo actor's node is a child process (this
//     program with -echo-node), as nodes are deployed;
//   - Erlang: two nodes (erl -name, separate OS processes, connected by
//     Erlang distribution over TCP); a process on one sends {self(), N} to a
//     registered echo process on the other and waits for N back
//     (pingpong.erl). Skipped, with a note, when erl is not installed
//     (Debian: apt-get install erlang-base).
//
// It prints round trips per second per turn, the medians, and ours ÷ Erlang.
package main

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/cluster"
)

//go:embed pingpong.erl
var pingpongErl []byte

func main() {
	turns := flag.Int("turns", 5, "turns; each runs every system once")
	d := flag.Duration("d", 3*time.Second, "measured time per system per turn")
	only := flag.String("systems", "one,two,erlang", "systems to run: one (ours, one process), two (ours, two processes), one+poll and two+poll (the same with Config.BusyPoll = -poll), erlang")
	poll := flag.Duration("poll", 50*time.Microsecond, "Config.BusyPoll of the +poll systems")
	echoNode := flag.String("echo-node", "", "internal: run an echo node joining this gossip address")
	echoPoll := flag.Duration("echo-poll", 0, "internal: the echo node's Config.BusyPoll")
	flag.Parse()
	if *echoNode != "" {
		if err := serveEcho(*echoNode, *echoPoll); err != nil {
			fmt.Fprintln(os.Stderr, "echo node:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*turns, *d, *poll, strings.Split(*only, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "remote:", err)
		os.Exit(1)
	}
}

type system struct {
	name string
	run  func(d time.Duration) (float64, error)
	got  []float64
}

const (
	oneName    = "ours, nodes in one process"
	twoName    = "ours, nodes in two processes"
	erlangName = "Erlang/OTP, two nodes"
)

func run(turns int, d, poll time.Duration, only []string) error {
	var systems []*system
	for _, which := range only {
		switch which {
		case "one", "two", "one+poll", "two+poll":
			busy := time.Duration(0)
			if strings.HasSuffix(which, "+poll") {
				busy = poll
			}
			o, err := newOurs(strings.HasPrefix(which, "two"), busy)
			if err != nil {
				return err
			}
			defer o.stop()
			name := oneName
			if strings.HasPrefix(which, "two") {
				name = twoName
			}
			if busy > 0 {
				name += fmt.Sprintf(", busy-poll %v", busy)
			}
			systems = append(systems, &system{name: name, run: o.pingPong})
		case "erlang":
			erl, err := newErlang()
			switch {
			case errors.Is(err, exec.ErrNotFound):
				fmt.Println("Erlang: erl not found, skipped (Debian: apt-get install erlang-base)")
			case err != nil:
				return err
			default:
				defer erl.stop()
				systems = append(systems, &system{name: erlangName, run: erl.pingPong})
			}
		default:
			return fmt.Errorf("-systems: unknown system %q (one, two, erlang)", which)
		}
	}
	if out, err := exec.Command("uptime").Output(); err == nil {
		fmt.Printf("load: %s", out)
	}
	for turn := 1; turn <= turns; turn++ {
		for _, s := range systems {
			v, err := s.run(d)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			s.got = append(s.got, v)
			fmt.Printf("turn %d  %-46s %8.0f round trips/s\n", turn, s.name, v)
		}
	}
	fmt.Println()
	med := map[string]float64{}
	for _, s := range systems {
		m := median(s.got)
		med[s.name] = m
		fmt.Printf("median  %-46s %8.0f round trips/s\n", s.name, m)
	}
	if e, ok := med[erlangName]; ok && e > 0 {
		fmt.Println()
		for _, s := range systems {
			if s.name != erlangName {
				fmt.Printf("%s ÷ Erlang: %.2f×\n", s.name, med[s.name]/e)
			}
		}
	}
	if out, err := exec.Command("uptime").Output(); err == nil {
		fmt.Printf("load: %s", out)
	}
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// ---- ours ----

type ours struct {
	nodes []*cluster.Node
	child *exec.Cmd
	echo  *actor.PID
}

func quietLogger() *zap.Logger { return zap.NewNop() }

func startNode(name string, busyPoll time.Duration, seeds ...string) (*cluster.Node, error) {
	cfg := cluster.Local(name)
	cfg.Logger = quietLogger()
	cfg.BusyPoll = busyPoll
	cfg.Seeds = seeds
	nd, err := cluster.NewNode(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return nd, nd.Start(ctx)
}

func int64Echo([]byte) (*actor.Props, error) {
	return actor.PropsFromFunc(func(c *actor.Context) {
		if m, ok := c.Message().(*wrapperspb.Int64Value); ok {
			c.Reply(m)
		}
	}), nil
}

// newOurs starts node a in this process and the echo node b, in this
// process or a child process.
func newOurs(child bool, busyPoll time.Duration) (*ours, error) {
	o := &ours{}
	a, err := startNode("a", busyPoll)
	if err != nil {
		return nil, err
	}
	o.nodes = append(o.nodes, a)
	if child {
		self, err := os.Executable()
		if err != nil {
			o.stop()
			return nil, err
		}
		o.child = exec.Command(self, "-echo-node", a.GossipAddress(), "-echo-poll", busyPoll.String())
		o.child.Stderr = os.Stderr
		out, err := o.child.StdoutPipe()
		if err != nil {
			o.stop()
			return nil, err
		}
		if err := o.child.Start(); err != nil {
			o.stop()
			return nil, err
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "READY") {
			o.stop()
			return nil, fmt.Errorf("echo node did not start: %q %v", line, err)
		}
	} else {
		b, err := startNode("b", busyPoll, a.GossipAddress())
		if err != nil {
			o.stop()
			return nil, err
		}
		o.nodes = append(o.nodes, b)
		if err := b.RegisterKind("int64echo", int64Echo); err != nil {
			o.stop()
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if m, ok := a.Member("b"); ok && m.State == cluster.Alive {
			break
		}
		if ctx.Err() != nil {
			o.stop()
			return nil, errors.New("node b did not join")
		}
		time.Sleep(10 * time.Millisecond)
	}
	o.echo, err = a.SpawnOn(ctx, "b", "int64echo", "", nil)
	if err != nil {
		o.stop()
		return nil, err
	}
	return o, nil
}

func (o *ours) stop() {
	if o.child != nil && o.child.Process != nil {
		_ = o.child.Process.Kill()
		_ = o.child.Wait()
	}
	for _, nd := range o.nodes {
		nd.Stop()
	}
}

// pingPong runs round trips from an actor on node a for d (after a
// warm-up) and returns round trips per second.
func (o *ours) pingPong(d time.Duration) (float64, error) {
	type result struct {
		n       int64
		elapsed time.Duration
	}
	done := make(chan result, 1)
	var (
		n        int64
		start    time.Time
		deadline time.Time
		warm     atomic.Bool
	)
	const warmup = 2000
	client, err := o.nodes[0].System().Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started:
			c.Request(o.echo, wrapperspb.Int64(0))
		case *wrapperspb.Int64Value:
			n++
			if !warm.Load() && n == warmup {
				warm.Store(true)
				n = 0
				start = time.Now()
				deadline = start.Add(d)
			}
			if warm.Load() && n%1000 == 0 {
				if now := time.Now(); now.After(deadline) {
					done <- result{n, now.Sub(start)}
					c.Stop()
					return
				}
			}
			c.Request(o.echo, wrapperspb.Int64(m.Value+1))
		}
	}))
	if err != nil {
		return 0, err
	}
	select {
	case r := <-done:
		return float64(r.n) / r.elapsed.Seconds(), nil
	case <-time.After(d + 30*time.Second):
		_ = o.nodes[0].System().Kill(client)
		return 0, errors.New("ping-pong stalled (a message lost?)")
	}
}

// serveEcho is the child process: node b with the int64echo kind.
func serveEcho(seed string, busyPoll time.Duration) error {
	nd, err := startNode("b", busyPoll, seed)
	if err != nil {
		return err
	}
	if err := nd.RegisterKind("int64echo", int64Echo); err != nil {
		return err
	}
	fmt.Println("READY")
	// Until the parent kills this process.
	select {}
}

// ---- Erlang ----

type erlang struct {
	dir    string
	server *exec.Cmd
	cookie string
}

func newErlang() (*erlang, error) {
	if _, err := exec.LookPath("erl"); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pingpong-erl")
	if err != nil {
		return nil, err
	}
	e := &erlang{dir: dir, cookie: "bench" + strconv.Itoa(os.Getpid())}
	src := filepath.Join(dir, "pingpong.erl")
	if err := os.WriteFile(src, pingpongErl, 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.Command("erlc", "-o", dir, src).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("erlc: %v: %s", err, out)
	}
	e.server = exec.Command("erl", "-noshell", "-pa", dir, "-name", e.node("echo"), "-setcookie", e.cookie,
		"-s", "pingpong", "serve")
	e.server.Stderr = os.Stderr
	if err := e.server.Start(); err != nil {
		return nil, err
	}
	// The server is up when a client can connect; the first run retries.
	return e, nil
}

func (e *erlang) node(role string) string {
	return fmt.Sprintf("%s%d@127.0.0.1", role, os.Getpid())
}

func (e *erlang) stop() {
	if e.server.Process != nil {
		_ = e.server.Process.Kill()
		_ = e.server.Wait()
	}
	_ = os.RemoveAll(e.dir)
}

func (e *erlang) pingPong(d time.Duration) (float64, error) {
	var lastErr error
	for attempt := 0; attempt < 50; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
		out, err := exec.CommandContext(ctx, "erl", "-noshell", "-pa", e.dir, "-name", e.node("ping"), "-setcookie", e.cookie,
			"-s", "pingpong", "run", e.node("echo"), "2000", strconv.FormatInt(d.Milliseconds(), 10)).CombinedOutput()
		cancel()
		if err == nil {
			return strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		}
		lastErr = fmt.Errorf("%v: %s", err, out)
		time.Sleep(200 * time.Millisecond) // the echo node may still be starting
	}
	return 0, lastErr
}
