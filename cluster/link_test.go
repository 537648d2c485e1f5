package cluster

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/distributed-go/distributed/actor"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// testPeer is a bare actor transport whose deliveries go to a channel.
type testPeer struct {
	tr      *transport
	got     chan *inFrame
	logs    *observer.ObservedLogs
	dropped *prometheus.CounterVec
}

func newTestPeer(t *testing.T, name, secret string, tlsCfg TLSConfig) *testPeer {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	p := &testPeer{got: make(chan *inFrame, 10000), logs: logs,
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"reason"})}
	tr, err := newTransport(transportConfig{
		bind: "127.0.0.1:0", name: name, secret: secret, tls: tlsCfg, log: zap.New(core),
		peerName: func(string) (string, bool) { return "", false },
		deliver: func(f inFrame) actor.Activation {
			select {
			case p.got <- &f:
			default:
				t.Errorf("%s: delivery channel full", name)
			}
			return actor.Activation{}
		},
		metrics: transportMetrics{dropped: p.dropped},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.tr = tr
	t.Cleanup(func() { tr.Close(false) })
	return p
}

func (p *testPeer) pid(id string) *pa.PID { return &pa.PID{Address: p.tr.Address(), Id: id} }

func (p *testPeer) droppedFor(reason string) float64 {
	var m dto.Metric
	if err := p.dropped.WithLabelValues(reason).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// next returns the next delivered frame, failing after 5 s.
func (p *testPeer) next(t *testing.T) *inFrame {
	t.Helper()
	select {
	case f := <-p.got:
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
		return nil
	}
}

// waitLog waits until a log line whose message and fields contain all of
// want has been written.
func waitLog(t *testing.T, logs *observer.ObservedLogs, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, e := range logs.All() {
			line := e.Message + " " + fmt.Sprint(e.ContextMap())
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			var all []string
			for _, e := range logs.All() {
				all = append(all, e.Message+" "+fmt.Sprint(e.ContextMap()))
			}
			t.Fatalf("no log line with %q; log:\n%s", want, strings.Join(all, "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTransportDeliversInOrderWithSenders(t *testing.T) {
	a := newTestPeer(t, "a", "cookie", TLSConfig{})
	b := newTestPeer(t, "b", "cookie", TLSConfig{})
	const n = 3000
	for i := range n {
		var sender *pa.PID
		switch i % 3 {
		case 1:
			sender = a.pid(fmt.Sprintf("s%d", i))
		case 2:
			sender = &pa.PID{Address: "10.9.9.9:1", Id: "far"} // a third node's PID
		}
		var msg proto.Message = wrapperspb.Int64(int64(i))
		if i%5 == 0 {
			msg = wrapperspb.String(fmt.Sprint(i))
		}
		a.tr.send(b.pid(fmt.Sprintf("t%d", i)), msg, sender, i%7 == 0)
	}
	for i := range n {
		f := b.next(t)
		if f.target.Id != fmt.Sprintf("t%d", i) || f.target.Address != b.tr.Address() {
			t.Fatalf("frame %d: target %v", i, f.target)
		}
		if f.system != (i%7 == 0) {
			t.Fatalf("frame %d: system = %v", i, f.system)
		}
		switch i % 3 {
		case 0:
			if f.sender != nil {
				t.Fatalf("frame %d: sender %v, want none", i, f.sender)
			}
		case 1:
			if f.sender == nil || f.sender.Address != a.tr.Address() || f.sender.Id != fmt.Sprintf("s%d", i) {
				t.Fatalf("frame %d: sender %v", i, f.sender)
			}
		case 2:
			if f.sender == nil || f.sender.Address != "10.9.9.9:1" || f.sender.Id != "far" {
				t.Fatalf("frame %d: sender %v", i, f.sender)
			}
		}
		var got string
		switch m := f.msg.(type) {
		case *wrapperspb.Int64Value:
			got = fmt.Sprint(m.GetValue())
		case *wrapperspb.StringValue:
			got = m.GetValue()
		}
		if got != fmt.Sprint(i) {
			t.Fatalf("frame %d: message %v", i, f.msg)
		}
	}
}

// Senders racing for one peer's socket (inline writes, hand-offs to the
// flusher, throttling) must never interleave bytes of their frames: every
// message arrives, in each sender's order.
func TestTransportConcurrentSendersKeepOrder(t *testing.T) {
	a := newTestPeer(t, "a", "", TLSConfig{})
	b := newTestPeer(t, "b", "", TLSConfig{})
	const senders, each = 8, 1000
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := a.pid(fmt.Sprintf("g%d", g))
			for i := range each {
				a.tr.send(b.pid("sink"), wrapperspb.Int64(int64(i)), from, false)
				if i%97 == 0 {
					runtime.Gosched() // vary the interleaving: idle gaps and bursts
				}
			}
		}()
	}
	next := map[string]int64{}
	for range senders * each {
		f := b.next(t)
		v := f.msg.(*wrapperspb.Int64Value).GetValue()
		if v != next[f.sender.Id] {
			t.Fatalf("sender %s: got %d, want %d", f.sender.Id, v, next[f.sender.Id])
		}
		next[f.sender.Id]++
	}
	wg.Wait()
	if d := a.droppedFor("queue_full") + a.droppedFor("link_down"); d != 0 {
		t.Fatalf("%v messages dropped", d)
	}
}

// The flusher's write deadline must not outlive its flush: inline writes
// share the socket, and an expired deadline failed them ("i/o timeout"),
// losing the message, long after a burst.
func TestTransportInlineWriteAfterFlusherDeadline(t *testing.T) {
	old := writeTimeout
	writeTimeout = 50 * time.Millisecond
	t.Cleanup(func() { writeTimeout = old })
	a := newTestPeer(t, "a", "", TLSConfig{})
	b := newTestPeer(t, "b", "", TLSConfig{})
	// A burst: the sends after the first come within burstGap, so the
	// flusher writes them (and sets its deadline).
	for i := range 2000 {
		a.tr.send(b.pid("sink"), wrapperspb.Int64(int64(i)), nil, false)
	}
	for range 2000 {
		b.next(t)
	}
	time.Sleep(2 * writeTimeout) // the deadline the flusher set has passed
	a.tr.send(b.pid("sink"), wrapperspb.String("later"), nil, false)
	if f := b.next(t); f.msg.(*wrapperspb.StringValue).GetValue() != "later" {
		t.Fatalf("got %v", f.msg)
	}
	if d := a.droppedFor("link_down"); d != 0 {
		t.Fatalf("%v messages lost to a failed link", d)
	}
}

func TestTransportSecretMatrix(t *testing.T) {
	cases := []struct {
		name, dialler, acceptor string
		diallerLog, acceptorLog string // "" when the connection is accepted
	}{
		{"same secret", "cookie-a", "cookie-a", "", ""},
		{"no secrets", "", "", "", ""},
		{"different secret", "cookie-b", "cookie-a", errMsgSecretMismatch, "handshake"},
		{"dialler without secret", "", "cookie-a", "refused the connection: " + errMsgMissingSecret, errMsgMissingSecret},
		{"acceptor without secret", "cookie-a", "", errMsgPeerNoSecret, "handshake"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestPeer(t, "a", tc.dialler, TLSConfig{})
			b := newTestPeer(t, "b", tc.acceptor, TLSConfig{})
			a.tr.send(b.pid("sink"), wrapperspb.String("hello"), nil, false)
			if tc.diallerLog == "" {
				if f := b.next(t); f.msg.(*wrapperspb.StringValue).GetValue() != "hello" {
					t.Fatalf("got %v", f.msg)
				}
				return
			}
			waitLog(t, a.logs, "cannot connect", tc.diallerLog)
			waitLog(t, b.logs, "rejected connection", tc.acceptorLog)
			// Both sides are done with the connection: nothing can arrive.
			select {
			case f := <-b.got:
				t.Fatalf("delivered %v despite the rejected handshake", f.msg)
			default:
			}
			if a.droppedFor("link_down") != 1 {
				t.Errorf("dropped link_down = %v, want 1", a.droppedFor("link_down"))
			}
		})
	}
}

// recorder tees what is written to a buffer.
type recorder struct {
	w   io.Writer
	buf bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) { r.buf.Write(p); return r.w.Write(p) }

func TestHandshakeReplayIsRejected(t *testing.T) {
	key := handshakeKey("cookie")
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	rec := &recorder{w: c1}
	done := make(chan error, 1)
	go func() {
		_, _, err := acceptHandshake(c2, bufio.NewReader(c2), key, "pipe")
		done <- err
	}()
	if err := dialHandshake(rec, bufio.NewReader(c1), key, "127.0.0.1:1", "a", "pipe"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The same bytes again, to an acceptor that picks a new nonce.
	_, _, err := acceptHandshake(io.Discard, bufio.NewReader(bytes.NewReader(rec.buf.Bytes())), key, "replay")
	var he *HandshakeError
	if !errors.As(err, &he) || he.Reason != errMsgSecretMismatch {
		t.Fatalf("replayed handshake: %v, want rejection %q", err, errMsgSecretMismatch)
	}
}

// rawDial opens a connection to p and runs the dialler's handshake (no
// secret), returning the connection for hand-written frames.
func rawDial(t *testing.T, p *testPeer) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.tr.Address())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := dialHandshake(c, bufio.NewReader(c), nil, "127.0.0.1:9", "raw", p.tr.Address()); err != nil {
		t.Fatal(err)
	}
	return c
}

func rawFrame(body []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// expectClosed waits until the peer closes c.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("connection not closed by the peer: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestTransportBadInput(t *testing.T) {
	b := newTestPeer(t, "b", "", TLSConfig{})
	types := outTypes{}
	frame := func(msg proto.Message, target string) []byte {
		payload, _ := proto.Marshal(msg)
		return appendFrame(nil, types, msg.ProtoReflect().Descriptor().FullName(), &pa.PID{Id: target}, nil, "", false, payload)
	}

	t.Run("not the protocol", func(t *testing.T) {
		c, err := net.Dial("tcp", b.tr.Address())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		expectClosed(t, c)
		waitLog(t, b.logs, "rejected connection", "bad magic")
	})
	t.Run("unknown message type is dropped, the connection stays", func(t *testing.T) {
		c := rawDial(t, b)
		body := []byte{frameTypeDef}
		body = appendString(body, "no.such.Message")
		body = append(body, 0)
		body = appendString(body, "sink")
		body = append(body, 1, 2, 3)
		types["no.such.Message"] = 0 // the connection's type 0, defined above
		good := frame(wrapperspb.String("after"), "sink")
		if _, err := c.Write(append(rawFrame(body), good...)); err != nil {
			t.Fatal(err)
		}
		if f := b.next(t); f.msg.(*wrapperspb.StringValue).GetValue() != "after" {
			t.Fatalf("got %v", f.msg)
		}
		if b.droppedFor("undecodable") != 1 {
			t.Errorf("undecodable = %v, want 1", b.droppedFor("undecodable"))
		}
		waitLog(t, b.logs, "message dropped", "no.such.Message")
	})
	clear(types)
	for _, tc := range []struct {
		name  string
		bytes []byte
		log   string
	}{
		{"frame too large", binary.LittleEndian.AppendUint32(nil, MaxFrameSize+1), "exceeds the limit"},
		{"undefined type number", rawFrame(append(appendString([]byte{0, 5}, "sink"), 1)), "never defined"},
		{"unknown flags", rawFrame([]byte{0x80, 0}), "unknown flags"},
		{"string overruns", rawFrame([]byte{frameTypeDef, 100, 'x'}), "overruns"},
		{"empty frame", rawFrame(nil), "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A node of its own: the log is rate-limited per node.
			v := newTestPeer(t, "v", "", TLSConfig{})
			c := rawDial(t, v)
			if _, err := c.Write(tc.bytes); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)
			waitLog(t, v.logs, "inbound connection closed", tc.log)
		})
	}
	// The node still serves others.
	a := newTestPeer(t, "a", "", TLSConfig{})
	a.tr.send(b.pid("sink"), wrapperspb.String("still here"), nil, false)
	if f := b.next(t); f.msg.(*wrapperspb.StringValue).GetValue() != "still here" {
		t.Fatalf("got %v", f.msg)
	}
}

// stuckPeer listens on a free port and, for the first connection, answers
// the handshake (without a secret) and then never reads again.
func stuckPeer(t *testing.T) (addr string, accepted <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if _, _, err := acceptHandshake(c, bufio.NewReader(c), nil, "stuck"); err != nil {
			c.Close()
			return
		}
		ch <- c
	}()
	return ln.Addr().String(), ch
}

// A peer that takes no bytes: sends queue up to the limit and are then
// dropped and counted, without blocking the sender.
func TestTransportQueueLimitDropsWithoutBlocking(t *testing.T) {
	addr, accepted := stuckPeer(t)
	a := newTestPeer(t, "a", "", TLSConfig{})
	a.tr.maxQueue = 16
	target := &pa.PID{Address: addr, Id: "sink"}
	big := wrapperspb.Bytes(make([]byte, 256<<10))
	const n = 400 // 100 MiB: far more than the socket buffers take
	for range n {
		a.tr.send(target, big, nil, false)
	}
	c := <-accepted
	defer c.Close()
	if d := a.droppedFor("queue_full"); d == 0 || d >= n {
		t.Fatalf("queue_full drops = %v of %d, want some but not all", d, n)
	}
}

// A peer that takes no bytes does not throttle its senders for long: once
// the blocked write is older than stuckAfter, frames queue (and past the
// limits drop) without waiting.
func TestTransportStuckPeerDoesNotThrottle(t *testing.T) {
	addr, accepted := stuckPeer(t)
	a := newTestPeer(t, "a", "", TLSConfig{})
	throttled := prometheus.NewCounter(prometheus.CounterOpts{Name: "t"})
	a.tr.metrics.throttled = throttled
	target := &pa.PID{Address: addr, Id: "sink"}
	msg := wrapperspb.Bytes(make([]byte, 32<<10))
	const n = 3000 // ~94 MiB: fills the socket buffers, then the queue
	for range n {
		a.tr.send(target, msg, nil, false)
	}
	c := <-accepted
	defer c.Close()
	var m dto.Metric
	_ = throttled.Write(&m)
	// Sends beyond softQueue before the write counts as stuck may wait
	// once each; with 3000 sends and no stuck check, ~2000 would.
	if got := m.GetCounter().GetValue(); got > 50 {
		t.Fatalf("%v sends throttled by a peer that reads nothing", got)
	}
}

func TestTransportReconnectsToRestartedPeer(t *testing.T) {
	a := newTestPeer(t, "a", "", TLSConfig{})
	b := newTestPeer(t, "b", "", TLSConfig{})
	addr := b.tr.Address()
	a.tr.send(b.pid("sink"), wrapperspb.String("one"), nil, false)
	b.next(t)
	b.tr.Close(false)

	// A new node at the same address.
	core, _ := observer.New(zap.DebugLevel)
	got := make(chan *inFrame, 100)
	b2, err := newTransport(transportConfig{bind: addr, name: "b2", log: zap.New(core),
		peerName: func(string) (string, bool) { return "", false },
		deliver:  func(f inFrame) actor.Activation { got <- &f; return actor.Activation{} }})
	if err != nil {
		t.Skipf("address %s not free again: %v", addr, err)
	}
	defer b2.Close(false)
	// Messages sent before a notices the old connection is gone may be
	// lost (at most once); delivery resumes on a new connection.
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		a.tr.send(&pa.PID{Address: addr, Id: "sink"}, wrapperspb.Int64(int64(i)), nil, false)
		select {
		case <-got:
			return
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery to the restarted peer")
		}
	}
}

func TestTransportUnreachablePeerFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	a := newTestPeer(t, "a", "", TLSConfig{})
	for range 3 {
		a.tr.send(&pa.PID{Address: addr, Id: "x"}, wrapperspb.String("lost"), nil, false)
	}
	waitLog(t, a.logs, "cannot connect", addr)
	deadline := time.Now().Add(5 * time.Second)
	for a.droppedFor("link_down") != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("link_down drops = %v, want 3", a.droppedFor("link_down"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTransportGracefulCloseFlushes(t *testing.T) {
	a := newTestPeer(t, "a", "", TLSConfig{})
	b := newTestPeer(t, "b", "", TLSConfig{})
	const n = 5000
	for i := range n {
		a.tr.send(b.pid("sink"), wrapperspb.Int64(int64(i)), nil, false)
	}
	a.tr.Close(true)
	for i := range n {
		if v := b.next(t).msg.(*wrapperspb.Int64Value).GetValue(); v != int64(i) {
			t.Fatalf("message %d: got %d", i, v)
		}
	}
}

func TestTransportTooLargeIsDroppedAtTheSender(t *testing.T) {
	a := newTestPeer(t, "a", "", TLSConfig{})
	b := newTestPeer(t, "b", "", TLSConfig{})
	a.tr.send(b.pid("sink"), wrapperspb.Bytes(make([]byte, MaxFrameSize)), nil, false)
	a.tr.send(b.pid("sink"), wrapperspb.String("small"), nil, false)
	if f := b.next(t); f.msg.(*wrapperspb.StringValue).GetValue() != "small" {
		t.Fatalf("got %v", f.msg)
	}
	if a.droppedFor("too_large") != 1 {
		t.Fatalf("too_large = %v", a.droppedFor("too_large"))
	}
	waitLog(t, a.logs, "too large", "google.protobuf.BytesValue")
}

func TestTransportTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	b := newTestPeer(t, "b", "cookie", ca.issue(t, dir, "b"))
	a := newTestPeer(t, "a", "cookie", ca.issue(t, dir, "a"))
	a.tr.send(b.pid("sink"), wrapperspb.String("over TLS"), a.pid("me"), false)
	if f := b.next(t); f.msg.(*wrapperspb.StringValue).GetValue() != "over TLS" || f.sender.Address != a.tr.Address() {
		t.Fatalf("got %v from %v", f.msg, f.sender)
	}

	t.Run("certificate of another CA", func(t *testing.T) {
		rogue := newTestCA(t, dir, "rogue-ca")
		r := newTestPeer(t, "r", "cookie", rogue.issue(t, dir, "r"))
		r.tr.send(b.pid("sink"), wrapperspb.String("intruder"), nil, false)
		waitLog(t, r.logs, "cannot connect", "TLS")
		waitLog(t, b.logs, "rejected connection", "TLS")
	})
	t.Run("plain TCP", func(t *testing.T) {
		p := newTestPeer(t, "p", "cookie", TLSConfig{})
		p.tr.send(b.pid("sink"), wrapperspb.String("plain"), nil, false)
		waitLog(t, p.logs, "cannot connect")
		waitLog(t, b.logs, "rejected connection", "TLS")
	})
	t.Run("right certificate, wrong secret", func(t *testing.T) {
		w := newTestPeer(t, "w", "cookie-b", ca.issue(t, dir, "w"))
		w.tr.send(b.pid("sink"), wrapperspb.String("wrong secret"), nil, false)
		waitLog(t, w.logs, "cannot connect", errMsgSecretMismatch)
	})
	select {
	case f := <-b.got:
		t.Fatalf("delivered %v from a rejected peer", f.msg)
	default:
	}
}

func FuzzDecodeFrame(f *testing.F) {
	types := outTypes{}
	for _, m := range []proto.Message{wrapperspb.String("x"), wrapperspb.Int64(7), wrapperspb.String("y")} {
		payload, _ := proto.Marshal(m)
		b := appendFrame(nil, types, m.ProtoReflect().Descriptor().FullName(),
			&pa.PID{Id: "t"}, &pa.PID{Address: "h:1", Id: "s"}, "self:1", false, payload)
		f.Add(b[4:])
	}
	f.Add([]byte{frameTypeDef | frameSender | frameSenderLocal, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		var in inTypes
		for range 3 { // the same body again and again, as a connection would
			fr, err := decodeFrame(body, "self:1", "peer:1", &in)
			if err != nil {
				if !errors.Is(err, errFrame) {
					t.Fatalf("error %v does not wrap errFrame", err)
				}
				return
			}
			if fr.target == nil || fr.target.Id == "" || (fr.msg == nil) == (fr.typeErr == nil) {
				t.Fatalf("inconsistent frame %+v", fr)
			}
		}
	})
}
