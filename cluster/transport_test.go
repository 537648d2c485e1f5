package cluster

import (
	"errors"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// faultsWaitFor polls cond until it holds or the deadline passes.
func faultsWaitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

type faultFakeSend struct {
	buf  string
	addr string
	at   time.Time
}

type faultFakeDial struct {
	addr    string
	timeout time.Duration
}

// faultFakeTransport is an in-memory memberlist.NodeAwareTransport. Like
// NetTransport, its Shutdown waits for its "listener" goroutines, which may
// be blocked handing traffic to PacketCh/StreamCh, and it panics if asked to
// send after Shutdown.
type faultFakeTransport struct {
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	stop     chan struct{}
	wg       sync.WaitGroup
	shut     atomic.Bool

	mu    sync.Mutex
	sends []faultFakeSend
	dials []faultFakeDial
}

func newFaultFakeTransport() *faultFakeTransport {
	return &faultFakeTransport{
		packetCh: make(chan *memberlist.Packet),
		streamCh: make(chan net.Conn),
		stop:     make(chan struct{}),
	}
}

func (ft *faultFakeTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return net.IPv4(127, 0, 0, 1), 7946, nil
}

func (ft *faultFakeTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return ft.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (ft *faultFakeTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if ft.shut.Load() {
		panic("faultFakeTransport: write after Shutdown")
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.sends = append(ft.sends, faultFakeSend{string(b), a.Addr, time.Now()})
	return time.Now(), nil
}

func (ft *faultFakeTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return ft.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (ft *faultFakeTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.dials = append(ft.dials, faultFakeDial{a.Addr, timeout})
	return nil, errors.New("faultFakeTransport: dialled")
}

func (ft *faultFakeTransport) PacketCh() <-chan *memberlist.Packet { return ft.packetCh }
func (ft *faultFakeTransport) StreamCh() <-chan net.Conn           { return ft.streamCh }

func (ft *faultFakeTransport) Shutdown() error {
	ft.shut.Store(true)
	close(ft.stop)
	ft.wg.Wait()
	return nil
}

// deliver hands p to whoever reads PacketCh, from a listener goroutine.
func (ft *faultFakeTransport) deliver(p *memberlist.Packet) {
	ft.wg.Go(func() {
		select {
		case ft.packetCh <- p:
		case <-ft.stop:
			// NetTransport has no such escape: its listener blocks
			// until the packet is taken. Model that by still
			// insisting, since the wrapper must keep draining.
			ft.packetCh <- p
		}
	})
}

func (ft *faultFakeTransport) accept(c net.Conn) {
	ft.wg.Go(func() { ft.streamCh <- c })
}

func (ft *faultFakeTransport) sent() []faultFakeSend {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return append([]faultFakeSend(nil), ft.sends...)
}

func (ft *faultFakeTransport) dialled() []faultFakeDial {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return append([]faultFakeDial(nil), ft.dials...)
}

// faultFakeConn is a net.Conn with a chosen remote address.
type faultFakeConn struct {
	net.Conn
	remote net.Addr
	closed atomic.Bool
}

func (c *faultFakeConn) RemoteAddr() net.Addr { return c.remote }
func (c *faultFakeConn) Close() error         { c.closed.Store(true); return nil }

var faultTestAddrs = map[string]string{
	"10.0.0.1:7946": "n1",
	"10.0.0.2:7946": "n2",
	"10.0.0.3:7946": "n3",
}

func faultTestNameOf(addr string) (string, bool) {
	n, ok := faultTestAddrs[addr]
	return n, ok
}

func faultUDPAddr(s string) net.Addr {
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		panic(err)
	}
	return a
}

func TestTransportOutboundPackets(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(f *Faults) error
		write     func(tr memberlist.NodeAwareTransport) (time.Time, error)
		wantSends int
	}{
		{
			name:  "no rules",
			setup: func(*Faults) error { return nil },
			write: func(tr memberlist.NodeAwareTransport) (time.Time, error) {
				return tr.WriteTo([]byte("x"), "10.0.0.2:7946")
			},
			wantSends: 1,
		},
		{
			name:  "partition drops WriteTo",
			setup: func(f *Faults) error { return f.Partition([]string{"n1"}, []string{"n2"}) },
			write: func(tr memberlist.NodeAwareTransport) (time.Time, error) {
				return tr.WriteTo([]byte("x"), "10.0.0.2:7946")
			},
		},
		{
			name:  "one-way drop drops WriteToAddress",
			setup: func(f *Faults) error { return f.DropOneWay("n1", "n2") },
			write: func(tr memberlist.NodeAwareTransport) (time.Time, error) {
				return tr.WriteToAddress([]byte("x"), memberlist.Address{Addr: "10.0.0.2:7946", Name: "n2"})
			},
		},
		{
			name:  "the reverse one-way drop does not affect sending",
			setup: func(f *Faults) error { return f.DropOneWay("n2", "n1") },
			write: func(tr memberlist.NodeAwareTransport) (time.Time, error) {
				return tr.WriteToAddress([]byte("x"), memberlist.Address{Addr: "10.0.0.2:7946"})
			},
			wantSends: 1,
		},
		{
			name:  "duplicate sends twice",
			setup: func(f *Faults) error { return f.SetDuplicate("n1", "n3", 1) },
			write: func(tr memberlist.NodeAwareTransport) (time.Time, error) {
				return tr.WriteToAddress([]byte("x"), memberlist.Address{Addr: "10.0.0.3:7946"})
			},
			wantSends: 2,
		},
		{
			name:  "unknown addresses are not faulted",
			setup: func(f *Faults) error { return f.DropOneWay(AnyNode, AnyNode) },
			write: func(tr memberlist.NodeAwareTransport) (time.Time, error) {
				return tr.WriteTo([]byte("x"), "10.9.9.9:7946")
			},
			wantSends: 1,
		},
		{
			name:  "memberlist's node name is used when the address is unknown",
			setup: func(f *Faults) error { return f.DropOneWay("n1", "n9") },
			write: func(tr memberlist.NodeAwareTransport) (time.Time, error) {
				return tr.WriteToAddress([]byte("x"), memberlist.Address{Addr: "10.9.9.9:7946", Name: "n9"})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := newFaultFakeTransport()
			f := NewFaults(1)
			if err := tt.setup(f); err != nil {
				t.Fatal(err)
			}
			tr := WrapTransport(ft, "n1", f, faultTestNameOf)
			defer tr.Shutdown()
			ts, err := tt.write(tr)
			if err != nil || ts.IsZero() {
				t.Fatalf("write = %v, %v; a faulted packet must look sent", ts, err)
			}
			if got := len(ft.sent()); got != tt.wantSends {
				t.Errorf("%d packets reached the inner transport, want %d", got, tt.wantSends)
			}
		})
	}
}

func TestTransportDelayedPacket(t *testing.T) {
	const delay = 30 * time.Millisecond
	ft := newFaultFakeTransport()
	f := NewFaults(1)
	faultsMust(t, f.SetDelay("n1", "n2", delay, 0))
	faultsMust(t, f.SetDuplicate("n1", "n2", 1))
	tr := WrapTransport(ft, "n1", f, faultTestNameOf)
	defer tr.Shutdown()

	buf := []byte("hello")
	start := time.Now()
	if _, err := tr.WriteToAddress(buf, memberlist.Address{Addr: "10.0.0.2:7946"}); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX") // the caller may reuse its buffer once WriteTo returns
	if n := len(ft.sent()); n != 0 {
		t.Fatalf("%d packets sent before the delay", n)
	}
	faultsWaitFor(t, 5*time.Second, "both delayed copies are sent", func() bool { return len(ft.sent()) == 2 })
	for _, s := range ft.sent() {
		if s.buf != "hello" {
			t.Errorf("sent %q, want the buffer as it was at WriteTo", s.buf)
		}
		if d := s.at.Sub(start); d < delay {
			t.Errorf("sent after %v, want at least %v", d, delay)
		}
	}
	if got := f.Stats(); got.Delayed != 1 || got.Duplicated != 1 {
		t.Errorf("Stats() = %+v, want one delayed and one duplicated", got)
	}
}

// A packet delayed past Shutdown must not reach the inner transport (the fake
// panics if it does; NetTransport would write to a closed socket).
func TestTransportDelayedPacketAfterShutdown(t *testing.T) {
	t.Run("long delay is cancelled", func(t *testing.T) {
		ft := newFaultFakeTransport()
		f := NewFaults(1)
		faultsMust(t, f.SetDelay("n1", AnyNode, time.Hour, 0))
		tr := WrapTransport(ft, "n1", f, faultTestNameOf)
		for range 10 {
			_, _ = tr.WriteTo([]byte("x"), "10.0.0.2:7946")
		}
		start := time.Now()
		faultsMust(t, tr.Shutdown())
		if d := time.Since(start); d > time.Second {
			t.Errorf("Shutdown took %v with packets pending", d)
		}
		if _, err := tr.WriteTo([]byte("x"), "10.0.0.2:7946"); err != nil {
			t.Errorf("delayed write after Shutdown: %v", err)
		}
		faultsMust(t, tr.Shutdown()) // idempotent
		if n := len(ft.sent()); n != 0 {
			t.Errorf("%d delayed packets were sent", n)
		}
	})
	t.Run("short delays racing Shutdown", func(t *testing.T) {
		for range 20 {
			ft := newFaultFakeTransport()
			f := NewFaults(1)
			faultsMust(t, f.SetDelay("n1", AnyNode, 0, 200*time.Microsecond))
			tr := WrapTransport(ft, "n1", f, faultTestNameOf)
			var wg sync.WaitGroup
			wg.Go(func() {
				for range 200 {
					_, _ = tr.WriteTo([]byte("x"), "10.0.0.2:7946")
				}
			})
			faultsMust(t, tr.Shutdown())
			wg.Wait()
		}
	})
	t.Run("real NetTransport", func(t *testing.T) {
		nt := newFaultLoopbackTransport(t)
		f := NewFaults(1)
		faultsMust(t, f.SetDelay("n1", AnyNode, time.Millisecond, time.Millisecond))
		const peer = "127.0.0.1:9" // discard; nobody needs to listen
		tr := WrapTransport(nt, "n1", f, func(a string) (string, bool) { return "n2", a == peer })
		for range 50 {
			_, _ = tr.WriteTo([]byte("x"), peer)
		}
		faultsMust(t, tr.Shutdown())
		_, _ = tr.WriteTo([]byte("x"), peer)
	})
}

func TestTransportDial(t *testing.T) {
	t.Run("cut link", func(t *testing.T) {
		ft := newFaultFakeTransport()
		f := NewFaults(1)
		faultsMust(t, f.Partition([]string{"n1"}, []string{"n2"}))
		tr := WrapTransport(ft, "n1", f, faultTestNameOf)
		defer tr.Shutdown()
		for _, dial := range []func() (net.Conn, error){
			func() (net.Conn, error) { return tr.DialTimeout("10.0.0.2:7946", time.Second) },
			func() (net.Conn, error) {
				return tr.DialAddressTimeout(memberlist.Address{Addr: "10.0.0.2:7946", Name: "n2"}, time.Second)
			},
		} {
			_, err := dial()
			if !errors.Is(err, ErrLinkCut) || err.Error() != "cluster: fault injection: link n1→n2 is cut" {
				t.Errorf("dial over a cut link: %v", err)
			}
		}
		if d := ft.dialled(); len(d) != 0 {
			t.Errorf("inner transport dialled %v", d)
		}
	})
	t.Run("delay shorter than the timeout", func(t *testing.T) {
		const delay, timeout = 30 * time.Millisecond, time.Second
		ft := newFaultFakeTransport()
		f := NewFaults(1)
		faultsMust(t, f.SetDelay("n1", "n2", delay, 0))
		tr := WrapTransport(ft, "n1", f, faultTestNameOf)
		defer tr.Shutdown()
		start := time.Now()
		_, _ = tr.DialTimeout("10.0.0.2:7946", timeout)
		if el := time.Since(start); el < delay {
			t.Errorf("dial returned after %v, want at least %v", el, delay)
		}
		d := ft.dialled()
		if len(d) != 1 || d[0].timeout > timeout-delay {
			t.Errorf("inner dials %v, want one with at most %v left", d, timeout-delay)
		}
	})
	t.Run("delay reaching the timeout", func(t *testing.T) {
		const timeout = 20 * time.Millisecond
		ft := newFaultFakeTransport()
		f := NewFaults(1)
		faultsMust(t, f.SetDelay("n1", "n2", time.Hour, 0))
		tr := WrapTransport(ft, "n1", f, faultTestNameOf)
		defer tr.Shutdown()
		start := time.Now()
		_, err := tr.DialAddressTimeout(memberlist.Address{Addr: "10.0.0.2:7946"}, timeout)
		if el := time.Since(start); err == nil || !strings.Contains(err.Error(), "timed out") || el < timeout || el > 10*time.Second {
			t.Errorf("dial = %v after %v, want a timeout after %v", err, el, timeout)
		}
		if d := ft.dialled(); len(d) != 0 {
			t.Errorf("inner transport dialled %v", d)
		}
	})
	t.Run("Shutdown interrupts a delayed dial", func(t *testing.T) {
		ft := newFaultFakeTransport()
		f := NewFaults(1)
		faultsMust(t, f.SetDelay("n1", "n2", time.Hour, 0))
		tr := WrapTransport(ft, "n1", f, faultTestNameOf)
		errc := make(chan error, 1)
		go func() {
			_, err := tr.DialTimeout("10.0.0.2:7946", 0)
			errc <- err
		}()
		faultsWaitFor(t, 5*time.Second, "the dial is delayed", func() bool { return f.Stats().Delayed == 1 })
		faultsMust(t, tr.Shutdown())
		select {
		case err := <-errc:
			if !errors.Is(err, errFaultTransportShutdown) {
				t.Errorf("dial = %v, want %v", err, errFaultTransportShutdown)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a delayed dial outlived Shutdown")
		}
	})
}

func TestTransportInbound(t *testing.T) {
	ft := newFaultFakeTransport()
	f := NewFaults(1)
	// Configured on this process only: n2 → n1 is cut where n1 receives.
	faultsMust(t, f.DropOneWay("n2", "n1"))
	tr := WrapTransport(ft, "n1", f, faultTestNameOf)
	defer tr.Shutdown()

	recvPacket := func() *memberlist.Packet {
		t.Helper()
		select {
		case p := <-tr.PacketCh():
			return p
		case <-time.After(5 * time.Second):
			t.Fatal("no packet")
			return nil
		}
	}
	// Packets are forwarded in order, so if the one from n2 got through it
	// would arrive before the one from n3.
	ft.deliver(&memberlist.Packet{Buf: []byte("from n2"), From: faultUDPAddr("10.0.0.2:7946")})
	faultsWaitFor(t, 5*time.Second, "the packet from n2 is taken", func() bool { return f.Stats().Dropped == 1 })
	ft.deliver(&memberlist.Packet{Buf: []byte("from n3"), From: faultUDPAddr("10.0.0.3:7946")})
	if p := recvPacket(); string(p.Buf) != "from n3" {
		t.Fatalf("received %q, want the packet from n3", p.Buf)
	}
	ft.deliver(&memberlist.Packet{Buf: []byte("from unknown"), From: faultUDPAddr("10.9.9.9:7946")})
	if p := recvPacket(); string(p.Buf) != "from unknown" {
		t.Fatalf("received %q, want the packet from the unknown address", p.Buf)
	}

	cut := &faultFakeConn{remote: faultUDPAddr("10.0.0.2:7946")}
	ok := &faultFakeConn{remote: faultUDPAddr("10.0.0.3:7946")}
	ft.accept(cut)
	faultsWaitFor(t, 5*time.Second, "the stream from n2 is closed", cut.closed.Load)
	ft.accept(ok)
	select {
	case c := <-tr.StreamCh():
		if c != ok {
			t.Fatalf("received stream from %v, want n3's", c.RemoteAddr())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no stream")
	}

	// Healing on receive: n2's traffic flows again.
	f.UndropOneWay("n2", "n1")
	ft.deliver(&memberlist.Packet{Buf: []byte("from n2 again"), From: faultUDPAddr("10.0.0.2:7946")})
	if p := recvPacket(); string(p.Buf) != "from n2 again" {
		t.Fatalf("received %q after undrop", p.Buf)
	}
	if got := f.Stats().Dropped; got != 2 {
		t.Errorf("Stats().Dropped = %d, want 2 (a packet and a stream)", got)
	}
}

// Shutdown must complete while the inner transport's listeners are blocked
// handing over traffic that nobody reads any more.
func TestTransportShutdownDrainsInner(t *testing.T) {
	ft := newFaultFakeTransport()
	tr := WrapTransport(ft, "n1", NewFaults(1), faultTestNameOf)
	for range 3 {
		ft.deliver(&memberlist.Packet{Buf: []byte("late"), From: faultUDPAddr("10.0.0.2:7946")})
		ft.accept(&faultFakeConn{remote: faultUDPAddr("10.0.0.3:7946")})
	}
	done := make(chan error, 1)
	go func() { done <- tr.Shutdown() }()
	select {
	case err := <-done:
		faultsMust(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown is stuck")
	}
}

func TestTransportNilFaults(t *testing.T) {
	ft := newFaultFakeTransport()
	if tr := WrapTransport(ft, "n1", nil, faultTestNameOf); tr != memberlist.NodeAwareTransport(ft) {
		t.Error("a nil *Faults should leave the transport unwrapped")
	}
}

func newFaultLoopbackTransport(t *testing.T) *memberlist.NetTransport {
	t.Helper()
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"},
		BindPort:  0, // the kernel picks; GetAutoBindPort reads it back
		Logger:    log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	return nt
}

// faultAliveTracker records, from memberlist's events, which nodes one member
// currently considers alive (suspect nodes produce no event and stay).
type faultAliveTracker struct {
	mu    sync.Mutex
	alive map[string]bool
}

func (a *faultAliveTracker) NotifyJoin(n *memberlist.Node)   { a.set(n.Name, true) }
func (a *faultAliveTracker) NotifyLeave(n *memberlist.Node)  { a.set(n.Name, false) }
func (a *faultAliveTracker) NotifyUpdate(n *memberlist.Node) {}

func (a *faultAliveTracker) set(name string, alive bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.alive == nil {
		a.alive = make(map[string]bool)
	}
	a.alive[name] = alive
}

// sees reports whether exactly the nodes in want are alive.
func (a *faultAliveTracker) sees(want ...string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, alive := range a.alive {
		if alive {
			n++
		}
	}
	for _, w := range want {
		if !a.alive[w] {
			return false
		}
	}
	return n == len(want)
}

// TestTransportPartitionHealMemberlist runs three real memberlist instances on
// loopback whose transports share one Faults, partitions {n1} from {n2, n3},
// waits for both sides to declare the other dead, heals, rejoins and waits
// for all three to be alive everywhere again.
func TestTransportPartitionHealMemberlist(t *testing.T) {
	names := []string{"n1", "n2", "n3"}
	f := NewFaults(1)
	f.OnChange(func(change string) { t.Logf("faults: %s", change) })

	transports := make([]*memberlist.NetTransport, len(names))
	addrs := make([]string, len(names))
	byAddr := make(map[string]string)
	for i, name := range names {
		transports[i] = newFaultLoopbackTransport(t)
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(transports[i].GetAutoBindPort()))
		byAddr[addrs[i]] = name
	}
	nameOf := func(addr string) (string, bool) { n, ok := byAddr[addr]; return n, ok }

	members := make([]*memberlist.Memberlist, len(names))
	trackers := make([]*faultAliveTracker, len(names))
	for i, name := range names {
		conf := memberlist.DefaultLocalConfig()
		conf.Name = name
		conf.BindAddr = "127.0.0.1"
		conf.BindPort = transports[i].GetAutoBindPort()
		conf.AdvertiseAddr = "127.0.0.1"
		conf.AdvertisePort = conf.BindPort
		conf.Transport = WrapTransport(transports[i], name, f, nameOf)
		conf.ProbeInterval = 100 * time.Millisecond
		conf.ProbeTimeout = 50 * time.Millisecond
		conf.SuspicionMult = 2
		conf.GossipInterval = 20 * time.Millisecond
		conf.PushPullInterval = 0
		conf.TCPTimeout = 200 * time.Millisecond
		conf.LogOutput = io.Discard
		trackers[i] = &faultAliveTracker{}
		conf.Events = trackers[i]
		m, err := memberlist.Create(conf)
		if err != nil {
			_ = conf.Transport.Shutdown()
			t.Fatalf("create %s: %v", name, err)
		}
		members[i] = m
		// memberlist.Shutdown shuts the (wrapped) transport down.
		t.Cleanup(func() { _ = m.Shutdown() })
	}

	if _, err := members[1].Join([]string{addrs[0]}); err != nil {
		t.Fatal(err)
	}
	if _, err := members[2].Join([]string{addrs[0]}); err != nil {
		t.Fatal(err)
	}
	d := faultsWaitFor(t, 10*time.Second, "all three see three alive members", func() bool {
		for _, tr := range trackers {
			if !tr.sees(names...) {
				return false
			}
		}
		return true
	})
	t.Logf("converged on 3 alive members in %v", d)

	faultsMust(t, f.Partition([]string{"n1"}, []string{"n2", "n3"}))
	d = faultsWaitFor(t, 20*time.Second, "n1 sees only itself and n2, n3 see only each other", func() bool {
		return trackers[0].sees("n1") && trackers[1].sees("n2", "n3") && trackers[2].sees("n2", "n3")
	})
	t.Logf("partition detected on both sides in %v (faults: %+v)", d, f.Stats())

	f.Heal()
	// memberlist never probes dead nodes, so it does not rejoin by itself.
	if _, err := members[0].Join([]string{addrs[1]}); err != nil {
		t.Fatal(err)
	}
	d = faultsWaitFor(t, 20*time.Second, "all three see three alive members after healing", func() bool {
		for _, tr := range trackers {
			if !tr.sees(names...) {
				return false
			}
		}
		return true
	})
	t.Logf("healed and rejoined in %v", d)
}

// ExampleWrapTransport shows how a node puts fault injection under
// memberlist: *memberlist.NetTransport already implements
// memberlist.NodeAwareTransport, so it is wrapped directly and handed to
// memberlist as its Transport.
func ExampleWrapTransport() {
	faults := NewFaults(42)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"},
		BindPort:  0, // let the kernel pick
	})
	if err != nil {
		log.Fatal(err)
	}
	self := net.JoinHostPort("127.0.0.1", strconv.Itoa(nt.GetAutoBindPort()))
	// gossip address → node name; a node that updates it as members come
	// and go guards it with a lock.
	peers := map[string]string{self: "n1"}
	conf := memberlist.DefaultLANConfig()
	conf.Name = "n1"
	conf.Transport = WrapTransport(nt, "n1", faults, func(addr string) (string, bool) {
		name, ok := peers[addr]
		return name, ok
	})
	m, err := memberlist.Create(conf)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Shutdown() // also shuts down the wrapped transport

	// At run time, for example from the CLI or the observer:
	_ = faults.Partition([]string{"n1"}, []string{"n2", "n3"})
	faults.Heal()
}
