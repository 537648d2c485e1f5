package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// This file applies Faults to gossip. WrapTransport sits between memberlist
// and its real transport (normally *memberlist.NetTransport, which already
// implements memberlist.NodeAwareTransport; memberlist would otherwise wrap a
// plain Transport in a private shim that forwards WriteToAddress to WriteTo
// and DialAddressTimeout to DialTimeout, so requiring the node-aware
// interface loses nothing).
//
// Both directions are filtered. The sender applies Decide(self, peer), which
// is enough when every process shares one Faults (an in-process cluster, or
// a CLI that pushes the same rules to every node). But rules are often set on
// one process only: "n2 stops hearing n1" configured on n2 must take effect
// even though n1's Faults knows nothing about it. So the receiver also drops
// what Cut(peer, self) says is cut. Only the deterministic rules (partitions
// and one-way drops) are applied on receive: applying a drop probability on
// both ends of a shared Faults would square the survival rate, and delay or
// duplication applied twice would double them.
//
// Inbound packets are attributed by their source address, which for
// memberlist's NetTransport is the sender's gossip address, so nameOf maps
// them. Inbound streams are attributed by the TCP remote address, which is
// the dialler's ephemeral port, not its gossip address; nameOf sees that
// address and can only map it when it resolves by IP (nodes on distinct
// hosts). On one host, streams are therefore filtered only by the dialling
// side.

// WrapTransport returns a memberlist transport that applies f to the gossip
// traffic of inner. self is this node's name; nameOf maps a peer's "ip:port"
// gossip address to its node name, and when it does not know an outbound
// address the node name memberlist passes with it (memberlist.Address.Name)
// is used, so memberlist node names must be the node names the rules use.
// Traffic to or from a peer that cannot be named is not faulted.
//
// Outbound packets: a drop pretends the write succeeded, a delay sends a copy
// later (pending sends are cancelled by Shutdown), a duplicate sends twice.
// Outbound streams: a drop fails the dial with a *LinkCutError, so memberlist
// treats the peer as unreachable; a delay waits before dialling, and if the
// delay reaches the dial timeout the dial fails after the timeout. Inbound
// packets and streams over a cut link (Faults.Cut(peer, self)) are discarded.
//
// inner must not be used by anyone else after wrapping: the wrapper consumes
// its PacketCh and StreamCh from now until Shutdown. A nil f returns inner
// unchanged.
func WrapTransport(inner memberlist.NodeAwareTransport, self string, f *Faults, nameOf func(addr string) (string, bool)) memberlist.NodeAwareTransport {
	if f == nil {
		return inner
	}
	if nameOf == nil {
		nameOf = func(string) (string, bool) { return "", false }
	}
	t := &faultTransport{
		inner:     inner,
		self:      self,
		faults:    f,
		nameOf:    nameOf,
		packetCh:  make(chan *memberlist.Packet),
		streamCh:  make(chan net.Conn),
		closing:   make(chan struct{}),
		innerDone: make(chan struct{}),
		timers:    make(map[*time.Timer]struct{}),
	}
	t.forwarders.Add(2)
	go t.forwardPackets()
	go t.forwardStreams()
	return t
}

// errFaultTransportShutdown is returned by dials interrupted by Shutdown.
var errFaultTransportShutdown = errors.New("cluster: fault injection: transport is shut down")

type faultTransport struct {
	inner  memberlist.NodeAwareTransport
	self   string
	faults *Faults
	nameOf func(addr string) (string, bool)

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn

	// closing is closed when Shutdown starts: forwarders stop handing
	// traffic to memberlist (which may have stopped reading) and keep
	// draining inner so that inner's listeners can exit.
	closing chan struct{}
	// innerDone is closed once inner.Shutdown has returned; inner sends
	// nothing after that, so the forwarders exit.
	innerDone    chan struct{}
	forwarders   sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error

	mu     sync.Mutex
	closed bool
	timers map[*time.Timer]struct{}
	// pending counts delayed sends that are scheduled or running.
	pending sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*faultTransport)(nil)

// FinalAdvertiseAddr delegates to the inner transport.
func (t *faultTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

// WriteTo sends a packet to addr, subject to the faults from self to addr's node.
func (t *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	peer, ok := t.nameOf(addr)
	if !ok {
		return t.inner.WriteTo(b, addr)
	}
	return t.sendPacket(peer, b, func(buf []byte) (time.Time, error) { return t.inner.WriteTo(buf, addr) })
}

// WriteToAddress sends a packet to a, subject to the faults from self to a's node.
func (t *faultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	peer, ok := t.peerName(a)
	if !ok {
		return t.inner.WriteToAddress(b, a)
	}
	return t.sendPacket(peer, b, func(buf []byte) (time.Time, error) { return t.inner.WriteToAddress(buf, a) })
}

// DialTimeout opens a stream to addr, subject to the faults from self to addr's node.
func (t *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	peer, ok := t.nameOf(addr)
	if !ok {
		return t.inner.DialTimeout(addr, timeout)
	}
	timeout, err := t.beforeDial(peer, timeout)
	if err != nil {
		return nil, err
	}
	return t.inner.DialTimeout(addr, timeout)
}

// DialAddressTimeout opens a stream to a, subject to the faults from self to a's node.
func (t *faultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	peer, ok := t.peerName(a)
	if !ok {
		return t.inner.DialAddressTimeout(a, timeout)
	}
	timeout, err := t.beforeDial(peer, timeout)
	if err != nil {
		return nil, err
	}
	return t.inner.DialAddressTimeout(a, timeout)
}

// PacketCh returns the inbound packets that survived the receive-side filter.
func (t *faultTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// StreamCh returns the inbound streams that survived the receive-side filter.
func (t *faultTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown cancels delayed packets that have not been sent, waits for those
// being sent, shuts down the inner transport and stops the forwarding
// goroutines. Calls after the first return the first call's result.
func (t *faultTransport) Shutdown() error {
	t.shutdownOnce.Do(func() {
		close(t.closing)
		t.mu.Lock()
		t.closed = true
		for tm := range t.timers {
			if tm.Stop() {
				t.pending.Done() // its function will never run
			}
		}
		clear(t.timers)
		t.mu.Unlock()
		t.pending.Wait()

		t.shutdownErr = t.inner.Shutdown()
		close(t.innerDone)
		t.forwarders.Wait()
	})
	return t.shutdownErr
}

func (t *faultTransport) peerName(a memberlist.Address) (string, bool) {
	if name, ok := t.nameOf(a.Addr); ok {
		return name, true
	}
	if a.Name != "" {
		return a.Name, true
	}
	return "", false
}

func (t *faultTransport) sendPacket(peer string, b []byte, send func([]byte) (time.Time, error)) (time.Time, error) {
	v := t.faults.decide(t.self, peer, true)
	switch {
	case v.Drop:
		// A lost datagram looks like a successful send to the sender.
		return time.Now(), nil
	case v.Delay > 0:
		// memberlist may reuse b once we return.
		buf := bytes.Clone(b)
		t.later(v.Delay, buf, send)
		if v.Duplicate {
			t.later(v.Delay, buf, send)
		}
		return time.Now(), nil
	}
	ts, err := send(b)
	if err == nil && v.Duplicate {
		_, _ = send(b)
	}
	return ts, err
}

// later sends buf after d unless Shutdown comes first.
func (t *faultTransport) later(d time.Duration, buf []byte, send func([]byte) (time.Time, error)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.pending.Add(1)
	var tm *time.Timer
	// tm is assigned before t.mu is released, and the function takes t.mu
	// before reading it.
	tm = time.AfterFunc(d, func() {
		defer t.pending.Done()
		t.mu.Lock()
		closed := t.closed
		delete(t.timers, tm)
		t.mu.Unlock()
		if !closed {
			_, _ = send(buf)
		}
	})
	t.timers[tm] = struct{}{}
}

// beforeDial applies the faults from self to peer to a dial and returns the
// timeout left for the real dial.
func (t *faultTransport) beforeDial(peer string, timeout time.Duration) (time.Duration, error) {
	v := t.faults.decide(t.self, peer, false)
	if v.Drop {
		return 0, &LinkCutError{From: t.self, To: peer}
	}
	if v.Delay <= 0 {
		return timeout, nil
	}
	wait := v.Delay
	tooSlow := timeout > 0 && wait >= timeout
	if tooSlow {
		wait = timeout
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-t.closing:
		return 0, errFaultTransportShutdown
	}
	if tooSlow {
		return 0, fmt.Errorf("cluster: fault injection: dial %s→%s timed out after %v (injected delay %v)", t.self, peer, timeout, v.Delay)
	}
	if timeout > 0 {
		timeout -= wait
	}
	return timeout, nil
}

func (t *faultTransport) inboundCut(from net.Addr) bool {
	if from == nil {
		return false
	}
	peer, ok := t.nameOf(from.String())
	if !ok || !t.faults.Cut(peer, t.self) {
		return false
	}
	t.faults.dropped.Add(1)
	return true
}

func (t *faultTransport) forwardPackets() {
	defer t.forwarders.Done()
	in := t.inner.PacketCh()
	for {
		select {
		case p, ok := <-in:
			if !ok {
				return
			}
			if t.inboundCut(p.From) {
				continue
			}
			select {
			case t.packetCh <- p:
			case <-t.closing:
			}
		case <-t.innerDone:
			return
		}
	}
}

func (t *faultTransport) forwardStreams() {
	defer t.forwarders.Done()
	in := t.inner.StreamCh()
	for {
		select {
		case c, ok := <-in:
			if !ok {
				return
			}
			if t.inboundCut(c.RemoteAddr()) {
				_ = c.Close()
				continue
			}
			select {
			case t.streamCh <- c:
			case <-t.closing:
				_ = c.Close()
			}
		case <-t.innerDone:
			return
		}
	}
}
