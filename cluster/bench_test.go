// The peers of these benchmarks are raw protoactor remote transports, several
// in one process, which race inside protoactor-go (see actor/remote_test.go):
// run them without -race (go test -race runs no benchmarks unless asked).

package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
)

// The remote benchmarks come in pairs, as in package actor: our nodes and
// raw protoactor-go remote (two actor systems on loopback), in the same run.
//
//	go test ./cluster -run '^$' -bench 'Remote' -benchtime 3s
//	go test ./cluster -run '^$' -bench 'CrashDetection$|Gossip' -benchtime 5x
//
// bench/ratio.sh prints the ratios. BenchmarkCrashDetectionLAN takes about
// 5 s per iteration and runs only with CLUSTER_BENCH_LAN=1:
//
//	CLUSTER_BENCH_LAN=1 go test ./cluster -run '^$' -bench CrashDetectionLAN -benchtime 3x

// benchCluster starts n nodes b1..bN (Local preset, silent) joining the first
// and waits until each sees n alive members. stop crashes them all.
func benchCluster(tb testing.TB, n int, mutate func(*Config)) (nodes []*Node, stop func()) {
	tb.Helper()
	stop = func() { stopNodes(nodes) }
	for i := 1; i <= n; i++ {
		cfg := Local("b" + strconv.Itoa(i))
		cfg.Logger = zap.NewNop()
		cfg.JoinTimeout = 10 * time.Second
		if i > 1 {
			cfg.Seeds = []string{nodes[0].GossipAddress()}
		}
		if mutate != nil {
			mutate(&cfg)
		}
		nd, err := NewNode(cfg)
		if err != nil {
			stop()
			tb.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err = nd.Start(ctx)
		cancel()
		if err != nil {
			stop()
			tb.Fatal(err)
		}
		nodes = append(nodes, nd)
	}
	for _, nd := range nodes {
		if !benchWait(30*time.Second, func() bool { return aliveCount(nd) == n }) {
			stop()
			tb.Fatalf("%s sees %d alive members, want %d", nd.Name(), aliveCount(nd), n)
		}
	}
	return nodes, stop
}

func stopNodes(nodes []*Node) {
	for _, nd := range slices.Backward(nodes) {
		nd.Stop()
	}
}

func aliveCount(nd *Node) int {
	c := 0
	for _, m := range nd.Members() {
		if m.State == Alive {
			c++
		}
	}
	return c
}

// benchWait polls cond every millisecond until it holds or d passes.
func benchWait(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

func benchSpawn(tb testing.TB, nd *Node, f actor.ReceiveFunc) *actor.PID {
	tb.Helper()
	pid, err := nd.System().Spawn(actor.PropsFromFunc(f))
	if err != nil {
		tb.Fatal(err)
	}
	return pid
}

// int64Echo answers every *wrapperspb.Int64Value with itself.
func int64Echo(c *actor.Context) {
	if m, ok := c.Message().(*wrapperspb.Int64Value); ok {
		c.Reply(m)
	}
}

// counter counts replies or deliveries until it reaches want.
type counter struct {
	want int64
	got  atomic.Int64
	done chan struct{}
}

func newCounter(want int64) *counter { return &counter{want: want, done: make(chan struct{})} }

// add counts one and reports whether that reached want.
func (c *counter) add() bool {
	if c.got.Add(1) == c.want {
		close(c.done)
		return true
	}
	return false
}

// wait waits until want is reached. It fails when the count stops moving
// for 10 s (a lost message: remote delivery is at most once).
func (c *counter) wait(tb testing.TB) {
	tb.Helper()
	last := int64(-1)
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
			got := c.got.Load()
			if got == last {
				tb.Fatalf("stalled at %d of %d (a message lost?)", got, c.want)
			}
			last = got
		}
	}
}

// pingClient returns a client that, on a *counter, requests echo with 0,
// 1, ... until the counter is full, one request at a time.
func pingClient(echo *actor.PID) actor.ReceiveFunc {
	var run *counter
	return func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *counter:
			run = m
			c.Request(echo, wrapperspb.Int64(0))
		case *wrapperspb.Int64Value:
			if !run.add() {
				c.Request(echo, wrapperspb.Int64(m.Value+1))
			}
		}
	}
}

// warmup is how many round trips connect both directions and warm the
// caches before the timer starts.
const warmup = 2000

// BenchmarkRemotePingPong: an actor on node A requests an echo actor on node
// B and waits for the reply before the next request; b.N round trips.
func BenchmarkRemotePingPong(b *testing.B) {
	nodes, stop := benchCluster(b, 2, nil)
	defer stop()
	pingPong(b, nodes[0], benchSpawn(b, nodes[1], int64Echo))
}

// pingPong runs b.N round trips from a ping client on nd to echo, after a
// warm-up, and reports round trips per second.
func pingPong(b *testing.B, nd *Node, echo *actor.PID) {
	client := benchSpawn(b, nd, pingClient(echo))
	sys := nd.System()
	w := newCounter(warmup)
	sys.Send(client, w)
	w.wait(b)
	run := newCounter(int64(b.N))
	b.ResetTimer()
	sys.Send(client, run)
	run.wait(b)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
}

// BenchmarkRemotePingPongProcess is BenchmarkRemotePingPong with the echo
// actor's node in a process of its own, as nodes are deployed. Each
// message then has to wake a thread of the other process (in one process,
// the writer's own thread usually finds the reader ready in the poller),
// so it is slower than the in-process figure on the same machine.
func BenchmarkRemotePingPongProcess(b *testing.B) {
	bin := buildTestnode(b)
	nodes, stop := benchCluster(b, 1, nil)
	defer stop()
	startOSNode(b, bin, "b2", "", nodes[0].GossipAddress())
	if !benchWait(10*time.Second, func() bool { m, ok := nodes[0].Member("b2"); return ok && m.State == Alive }) {
		b.Fatal("the node process did not join")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	echo, err := nodes[0].SpawnOn(ctx, "b2", "int64echo", "", nil)
	if err != nil {
		b.Fatal(err)
	}
	pingPong(b, nodes[0], echo)
}

// rawPair is two raw protoactor actor systems with remote on loopback.
type rawPair struct {
	a, b   *pa.ActorSystem
	ra, rb *remote.Remote
}

func nopSlog(*pa.ActorSystem) *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startRawPair starts two protoactor systems with remote, configured as our
// nodes configure theirs (queue and batch sizes), without our layers.
func startRawPair(tb testing.TB) *rawPair {
	tb.Helper()
	start := func() (*pa.ActorSystem, *remote.Remote) {
		// A short dead-letter throttle period: its timer goroutine must end
		// before the leak check at the end of the run.
		sys := pa.NewActorSystem(pa.WithLoggerFactory(nopSlog), pa.WithDeadLetterThrottleInterval(10*time.Millisecond))
		r := remote.NewRemote(sys, remote.Configure("127.0.0.1", 0,
			remote.WithEndpointWriterQueueSize(8192), remote.WithEndpointWriterBatchSize(1000)))
		r.Start()
		return sys, r
	}
	p := &rawPair{}
	p.a, p.ra = start()
	p.b, p.rb = start()
	return p
}

func (p *rawPair) stop() {
	p.ra.Shutdown(true)
	// protoactor's graceful shutdown sends on the channel of every inbound
	// connection, and panics ("send on closed channel") on one whose stream
	// has just ended and is not yet deregistered, as b's streams from a are
	// now. Give them time to deregister.
	time.Sleep(100 * time.Millisecond)
	p.rb.Shutdown(true)
	p.a.Shutdown()
	p.b.Shutdown()
}

func rawInt64Echo(c pa.Context) {
	if m, ok := c.Message().(*wrapperspb.Int64Value); ok {
		c.Respond(m)
	}
}

// rawSpawn spawns a named actor (so the other system can address it) and
// returns its PID as the other system sees it.
func rawSpawn(tb testing.TB, sys *pa.ActorSystem, name string, f pa.ReceiveFunc) *pa.PID {
	tb.Helper()
	pid, err := sys.Root.SpawnNamed(pa.PropsFromFunc(f), name)
	if err != nil {
		tb.Fatal(err)
	}
	return pa.NewPID(sys.Address(), pid.Id)
}

func rawPingClient(echo *pa.PID) pa.ReceiveFunc {
	var run *counter
	return func(c pa.Context) {
		switch m := c.Message().(type) {
		case *counter:
			run = m
			c.Request(echo, wrapperspb.Int64(0))
		case *wrapperspb.Int64Value:
			if !run.add() {
				c.Request(echo, wrapperspb.Int64(m.Value+1))
			}
		}
	}
}

func BenchmarkRemotePingPongProtoactor(b *testing.B) {
	p := startRawPair(b)
	defer p.stop()
	echo := rawSpawn(b, p.b, "echo", rawInt64Echo)
	client := p.a.Root.Spawn(pa.PropsFromFunc(rawPingClient(echo)))
	defer func() { _ = p.a.Root.StopFuture(client).Wait() }()

	w := newCounter(warmup)
	p.a.Root.Send(client, w)
	w.wait(b)
	run := newCounter(int64(b.N))
	b.ResetTimer()
	p.a.Root.Send(client, run)
	run.wait(b)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
}

// BenchmarkRemoteAsk: a goroutine on node A asks an echo actor on node B and
// waits for the answer, b.N times.
func BenchmarkRemoteAsk(b *testing.B) {
	nodes, stop := benchCluster(b, 2, nil)
	defer stop()
	echo := benchSpawn(b, nodes[1], int64Echo)
	sys := nodes[0].System()
	// A timeout per Ask, as RequestFuture has in the twin: a lost message
	// fails the benchmark instead of hanging it.
	ask := func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := actor.Ask[*wrapperspb.Int64Value](ctx, sys, echo, wrapperspb.Int64(int64(i)))
		if err != nil || r.Value != int64(i) {
			b.Fatalf("Ask %d: %v, %v", i, r, err)
		}
	}
	for i := 0; i < warmup; i++ {
		ask(i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ask(i)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
}

func BenchmarkRemoteAskProtoactor(b *testing.B) {
	p := startRawPair(b)
	defer p.stop()
	echo := rawSpawn(b, p.b, "echo", rawInt64Echo)
	ask := func(i int) {
		r, err := p.a.Root.RequestFuture(echo, wrapperspb.Int64(int64(i)), 5*time.Second).Result()
		if v, ok := r.(*wrapperspb.Int64Value); err != nil || !ok || v.Value != int64(i) {
			b.Fatalf("RequestFuture %d: %v, %v", i, r, err)
		}
	}
	for i := 0; i < warmup; i++ {
		ask(i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ask(i)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
}

// BenchmarkRemoteStream: b.N one-way sends from node A to an actor on node
// B, counted at the receiver.
func BenchmarkRemoteStream(b *testing.B) {
	nodes, stop := benchCluster(b, 2, nil)
	defer stop()
	var sink atomic.Pointer[counter]
	sink.Store(newCounter(warmup))
	pid := benchSpawn(b, nodes[1], func(c *actor.Context) {
		if _, ok := c.Message().(*wrapperspb.Int64Value); ok {
			sink.Load().add()
		}
	})
	sys := nodes[0].System()
	m := wrapperspb.Int64(42)
	for i := 0; i < warmup; i++ {
		sys.Send(pid, m)
	}
	sink.Load().wait(b)
	run := newCounter(int64(b.N))
	sink.Store(run) // the sink is idle now
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sys.Send(pid, m)
	}
	run.wait(b)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

func BenchmarkRemoteStreamProtoactor(b *testing.B) {
	p := startRawPair(b)
	defer p.stop()
	var sink atomic.Pointer[counter]
	sink.Store(newCounter(warmup))
	pid := rawSpawn(b, p.b, "sink", func(c pa.Context) {
		if _, ok := c.Message().(*wrapperspb.Int64Value); ok {
			sink.Load().add()
		}
	})
	m := wrapperspb.Int64(42)
	for i := 0; i < warmup; i++ {
		p.a.Root.Send(pid, m)
	}
	sink.Load().wait(b)
	run := newCounter(int64(b.N))
	sink.Store(run)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.a.Root.Send(pid, m)
	}
	run.wait(b)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// nodeDownSink subscribes an actor on nd to node events and returns a
// channel that receives the name of every member it sees go down.
func nodeDownSink(tb testing.TB, nd *Node) <-chan string {
	ch := make(chan string, 16)
	pid := benchSpawn(tb, nd, func(c *actor.Context) {
		if e, ok := c.Message().(*NodeEvent); ok && e.Kind == NodeDown {
			select {
			case ch <- e.Member.Name:
			default:
			}
		}
	})
	nd.MonitorNodes(pid)
	return ch
}

// benchCrashDetection: each iteration starts a fresh 3-node cluster, crashes
// one member, and times until both survivors have delivered NodeDown to a
// subscriber. Only the detection is timed.
func benchCrashDetection(b *testing.B, preset func(string) Config) {
	var took []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		nodes, stop := benchCluster(b, 3, func(c *Config) {
			p := preset(c.Name)
			c.Gossip = p.Gossip
		})
		s1, s2 := nodeDownSink(b, nodes[0]), nodeDownSink(b, nodes[1])
		victim := nodes[2].Name()
		b.StartTimer()
		t0 := time.Now()
		nodes[2].Crash()
		for _, ch := range []<-chan string{s1, s2} {
			select {
			case name := <-ch:
				if name != victim {
					stop()
					b.Fatalf("NodeDown for %s, want %s", name, victim)
				}
			case <-time.After(60 * time.Second):
				stop()
				b.Fatalf("no NodeDown for %s within a minute", victim)
			}
		}
		took = append(took, time.Since(t0))
		b.StopTimer()
		stop()
	}
	reportLatency(b, took, "detect")
	// memberlist's Shutdown does not wait for a probe in flight, which
	// runs for up to a probe interval (1 s with LAN timing): let it end
	// before the leak check at the end of the run.
	time.Sleep(2 * preset("").Gossip.ProbeInterval)
}

// reportLatency reports the mean, p50 and p99 of took in milliseconds.
func reportLatency(b *testing.B, took []time.Duration, what string) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	var sum time.Duration
	for _, d := range took {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	pct := func(p float64) time.Duration { return took[min(len(took)-1, int(p*float64(len(took))))] }
	b.ReportMetric(ms(sum/time.Duration(len(took))), "ms/"+what)
	b.ReportMetric(ms(pct(0.50)), "p50-ms")
	b.ReportMetric(ms(pct(0.99)), "p99-ms")
}

// BenchmarkCrashDetection: from Node.Crash of one member of a 3-node Local
// preset cluster until both survivors have delivered NodeDown. Each
// iteration builds a new cluster; run it with -benchtime 5x or so.
func BenchmarkCrashDetection(b *testing.B) { benchCrashDetection(b, Local) }

// BenchmarkCrashDetectionLAN is BenchmarkCrashDetection with memberlist's
// LAN timing (about 5 s per iteration). It runs only with
// CLUSTER_BENCH_LAN=1, and never under -short.
func BenchmarkCrashDetectionLAN(b *testing.B) {
	if testing.Short() || os.Getenv("CLUSTER_BENCH_LAN") == "" {
		b.Skip("about 5 s per iteration: set CLUSTER_BENCH_LAN=1 to run it")
	}
	benchCrashDetection(b, LAN)
}

// BenchmarkGossipConvergence20: each iteration starts 20 nodes on their
// own, then all but the first join the first at once; timed from the joins
// until every node sees 20 alive members. Node start-up is not timed. Run
// it with -benchtime 5x or so.
//
// With the Local preset most iterations converge in about 0.1 s, but when
// all join at once some gossip about new members is lost (memberlist
// retransmits each broadcast only 2*ceil(log10(n+1)) times under its local
// configuration), and the last members learn of the others only at the next
// push-pull sync: 5 s in the Local preset. The second variant shows the
// effect of a 1 s push-pull interval.
func BenchmarkGossipConvergence20(b *testing.B) {
	b.Run("preset=Local", func(b *testing.B) { benchConvergence(b, 20, nil) })
	b.Run("pushpull=1s", func(b *testing.B) {
		benchConvergence(b, 20, func(c *Config) { c.Gossip.PushPullInterval = time.Second })
	})
}

func benchConvergence(b *testing.B, n int, mutate func(*Config)) {
	var took []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var nodes []*Node
		stop := func() { stopNodes(nodes) }
		for j := 1; j <= n; j++ {
			cfg := Local("g" + strconv.Itoa(j))
			cfg.Logger = zap.NewNop()
			cfg.SendQueueSize = 64 // no actor traffic here
			if mutate != nil {
				mutate(&cfg)
			}
			nd, err := NewNode(cfg)
			if err == nil {
				err = nd.Start(context.Background())
			}
			if err != nil {
				stop()
				b.Fatal(err)
			}
			nodes = append(nodes, nd)
		}
		seed := nodes[0].GossipAddress()
		b.StartTimer()
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, nd := range nodes[1:] {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := nd.Join(ctx, seed); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			stop()
			b.Fatal(err)
		}
		converged := benchWait(60*time.Second, func() bool {
			for _, nd := range nodes {
				if aliveCount(nd) != n {
					return false
				}
			}
			return true
		})
		d := time.Since(t0)
		b.StopTimer()
		if !converged {
			counts := make([]int, len(nodes))
			for j, nd := range nodes {
				counts[j] = aliveCount(nd)
			}
			stop()
			b.Fatalf("no convergence within a minute: alive counts %v", counts)
		}
		took = append(took, d)
		stop()
	}
	reportLatency(b, took, "converge")
}

// BenchmarkRemotePingPongTCPFloor is the floor under any Go transport on
// this machine: two goroutines exchange 12-byte frames over two loopback
// TCP connections (one per direction, as the actor transport uses), each
// side reading on one goroutine and answering from another, with no
// encoding, actors or mailboxes. Our round trips per second divided by this
// figure says how much of the machine's limit the actor layer leaves.
func BenchmarkRemotePingPongTCPFloor(b *testing.B) {
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		return ln
	}
	pair := func(ln net.Listener) (out, in net.Conn) {
		out, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		if in, err = ln.Accept(); err != nil {
			b.Fatal(err)
		}
		return out, in
	}
	la, lb := listen(), listen()
	defer la.Close()
	defer lb.Close()
	ab, abIn := pair(lb) // a → b
	ba, baIn := pair(la) // b → a
	for _, c := range []net.Conn{ab, abIn, ba, baIn} {
		defer c.Close()
	}
	// serve reads frames from in and hands them to a goroutine that
	// answers each on out with its value + 1; stop is the value at which the
	// answering side stops answering and reports.
	serve := func(in, out net.Conn, stop uint64, done chan<- struct{}) {
		ch := make(chan uint64, 1024)
		go func() {
			var f [12]byte
			binary.LittleEndian.PutUint32(f[:], 8)
			for v := range ch {
				if v >= stop {
					close(done)
					return
				}
				binary.LittleEndian.PutUint64(f[4:], v+1)
				if _, err := out.Write(f[:]); err != nil {
					return
				}
			}
		}()
		go func() {
			defer close(ch)
			r := bufio.NewReaderSize(in, 64<<10)
			var f [12]byte
			for {
				if _, err := io.ReadFull(r, f[:]); err != nil {
					return
				}
				ch <- binary.LittleEndian.Uint64(f[4:])
			}
		}()
	}
	run := func(n int) {
		done := make(chan struct{})
		never := make(chan struct{})
		serve(abIn, ba, ^uint64(0), never) // b answers everything
		serve(baIn, ab, uint64(2*n), done) // a stops after n round trips
		var f [12]byte
		binary.LittleEndian.PutUint32(f[:], 8)
		if _, err := ab.Write(f[:]); err != nil {
			b.Fatal(err)
		}
		<-done
	}
	run(warmup) // the goroutines of the warm-up end with their connections
	b.ResetTimer()
	// A fresh pair of connections for the timed run.
	ab2, abIn2 := pair(lb)
	ba2, baIn2 := pair(la)
	for _, c := range []net.Conn{ab2, abIn2, ba2, baIn2} {
		defer c.Close()
	}
	ab, abIn, ba, baIn = ab2, abIn2, ba2, baIn2
	run(b.N)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
}
