package cluster

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/distributed-go/distributed/actor"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// The actor transport: actor messages between nodes over TCP (optionally
// mutual TLS), one outbound connection per peer, written in frames
// (wire.go) after a handshake that checks the cluster secret
// (handshake.go).
//
// The write path is built for latency. A sender appends its frame to the
// peer's queue; if no one is writing to the socket, the sender writes the
// queue itself at once with one non-blocking write. Only when the socket
// cannot take everything (its buffer is full) or more frames arrived
// meanwhile does the peer's flusher goroutine take over, writing with
// blocking writes until the queue is empty. So a message to an idle peer
// costs one system call and no goroutine hand-off, and under load frames
// are batched into large writes. No timer is involved: the queue is flushed
// as soon as it drains.
//
// Senders never block on the network: a peer whose queue holds
// Config.SendQueueSize frames (or sendQueueBytes) drops further frames, and
// a connection that cannot be opened drops what was queued for it; both are
// counted in cluster_transport_dropped_total. Delivery is at most once and
// ordered per pair of nodes, as in Erlang distribution.
//
// The acceptor side reads each inbound connection on its own goroutine and
// delivers frames straight into the target processes' mailboxes. Malformed
// frames close the connection; a message of a type this node does not link,
// or that does not decode, is dropped and counted; nothing a peer sends can
// panic the node (each frame's delivery runs under recover).

const (
	// sendQueueBytes bounds the bytes queued for one peer.
	sendQueueBytes = 64 << 20
	// spareBufferMax is the largest write buffer kept for reuse.
	spareBufferMax = 1 << 20
	// dialTimeout bounds a connection attempt, TLS and handshake included.
	dialTimeout = 5 * time.Second
	// redialBackoff is how long after a failed connection attempt frames
	// to that peer are dropped without a new attempt.
	redialBackoff = 250 * time.Millisecond
	// inlineRounds is how many queue generations a sender writes itself
	// before handing the rest to the flusher.
	inlineRounds = 2
	// softQueue is the queue length above which senders wait for the
	// writer (throttle), for at most throttleWait each.
	softQueue    = 1024
	throttleWait = 50 * time.Millisecond
	// stuckAfter is how long a blocked chunk write makes the peer count as
	// stuck; writeChunk is the size of the flusher's writes.
	stuckAfter = 250 * time.Millisecond
	writeChunk = 256 << 10
	// readBufferSize is the inbound connections' read buffer.
	readBufferSize = 64 << 10
)

// writeTimeout bounds one blocking write of the flusher: a peer that takes
// no bytes for that long is disconnected. A variable for tests.
var writeTimeout = 10 * time.Second

// burstGap: a sender that writes again within burstGap of its previous
// inline write is streaming; it hands the socket to the flusher after its
// write, so that the frames that follow are batched into one write
// instead of costing a system call each. A sender that writes less often
// (request/reply) releases the socket at once and wakes no one.
const burstGap = 15 * time.Microsecond

// errTransportClosed is the failure of links when the transport stops.
var errTransportClosed = errors.New("actor transport stopped")

// transportMetrics are the transport's counters.
type transportMetrics struct {
	dropped   *prometheus.CounterVec // by reason
	throttled prometheus.Counter     // senders made to wait for a busy peer
	detached  prometheus.Counter     // readers replaced because a delivery stalled
	received  func(peer string) prometheus.Counter
}

// deliverFunc hands a decoded frame to the local process it targets. It
// returns the activation of an idle actor the frame woke, for the reader to
// run (see inReader).
type deliverFunc func(f inFrame) actor.Activation

// transport is a node's actor transport.
type transport struct {
	self   string // advertised address: the Address of this node's PIDs
	name   string // node name, sent in the handshake
	key    []byte // handshake key, nil without a cluster secret
	tlsSrv *tls.Config
	tlsCli *tls.Config // ServerName filled per dial when empty
	log    *zap.Logger
	// peerName maps a peer's transport address to its node name (for
	// metrics and receive-side fault rules), when it is a known member.
	peerName func(addr string) (string, bool)
	deliver  deliverFunc
	metrics  transportMetrics
	maxQueue int
	busyPoll time.Duration

	ln       net.Listener
	links    sync.Map // address → *outLink
	mu       sync.Mutex
	inbound  map[net.Conn]struct{}
	readers  map[*inReader]struct{}
	closed   bool
	quit     chan struct{} // closed by Close once the readers are gone
	wdDone   chan struct{} // closed when the watchdog returns
	wdParked atomic.Bool   // the watchdog waits on wdWake
	wdWake   chan struct{}
	stopped  atomic.Bool // closed, for the send path
	wg       sync.WaitGroup
	dialLog  *rateLimitedLog
	inLog    *rateLimitedLog
	panicLog *rateLimitedLog
}

// transportConfig is what newTransport needs.
type transportConfig struct {
	bind, advertise string
	name            string
	secret          string
	tls             TLSConfig
	log             *zap.Logger
	peerName        func(addr string) (string, bool)
	deliver         deliverFunc
	metrics         transportMetrics
	maxQueue        int
	busyPoll        time.Duration
}

// newTransport listens on cfg.bind and starts accepting connections.
func newTransport(cfg transportConfig) (*transport, error) {
	t := &transport{
		name: cfg.name, key: handshakeKey(cfg.secret), log: cfg.log,
		peerName: cfg.peerName, deliver: cfg.deliver, metrics: cfg.metrics, maxQueue: cfg.maxQueue, busyPoll: cfg.busyPoll,
		inbound: map[net.Conn]struct{}{}, readers: map[*inReader]struct{}{},
		quit: make(chan struct{}), wdDone: make(chan struct{}), wdWake: make(chan struct{}, 1),
		dialLog: newRateLimitedLog(), inLog: newRateLimitedLog(), panicLog: newRateLimitedLog(),
	}
	if t.maxQueue <= 0 {
		t.maxQueue = defaultSendQueueSize
	}
	if cfg.tls.enabled() {
		srv, cli, err := cfg.tls.load()
		if err != nil {
			return nil, err
		}
		t.tlsSrv, t.tlsCli = srv, cli
	}
	ln, err := net.Listen("tcp", cfg.bind)
	if err != nil {
		return nil, err
	}
	t.ln = ln
	t.self = cfg.advertise
	if t.self == "" {
		t.self = ln.Addr().String()
	}
	t.wg.Add(1)
	go t.acceptLoop()
	go t.watchdog()
	return t, nil
}

// Address is the transport's advertised address.
func (t *transport) Address() string { return t.self }

func (t *transport) drop(reason string, n int) {
	if t.metrics.dropped != nil && n > 0 {
		t.metrics.dropped.WithLabelValues(reason).Add(float64(n))
	}
}

// send queues msg for target on another node. It never blocks on the
// network.
func (t *transport) send(target *pa.PID, msg proto.Message, sender *pa.PID, system bool) {
	l := t.link(target.Address)
	if l == nil {
		t.drop("link_down", 1)
		return
	}
	l.send(target, msg, sender, system)
}

// link returns the peer's link, opening one if there is none (or the last
// one failed and its back-off has passed); nil while backing off or after
// Close.
func (t *transport) link(addr string) *outLink {
	if v, ok := t.links.Load(addr); ok {
		l := v.(*outLink)
		if !l.dead.Load() {
			return l
		}
		if t.stopped.Load() || time.Now().Before(l.retryAt) {
			return nil
		}
		nl := newOutLink(t, addr)
		if !t.links.CompareAndSwap(addr, l, nl) {
			return t.link(addr)
		}
		return t.startLink(nl)
	}
	if t.stopped.Load() {
		return nil
	}
	nl := newOutLink(t, addr)
	if _, loaded := t.links.LoadOrStore(addr, nl); loaded {
		return t.link(addr) // lost the race: use the winner
	}
	return t.startLink(nl)
}

func (t *transport) startLink(l *outLink) *outLink {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		l.fail(errTransportClosed, 0)
		return nil
	}
	t.wg.Add(1)
	t.mu.Unlock()
	go l.run()
	return l
}

// closeLink drops the link to addr (its peer left or died, or a new node
// took the address); the next message to addr opens a new one.
func (t *transport) closeLink(addr string) {
	if v, ok := t.links.LoadAndDelete(addr); ok {
		v.(*outLink).fail(errors.New("peer left the membership"), 0)
	}
}

// Close stops the transport: the listener, every connection and goroutine.
// With flush, links first get up to a second to write what is queued.
func (t *transport) Close(flush bool) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	t.stopped.Store(true)
	conns := make([]net.Conn, 0, len(t.inbound))
	for c := range t.inbound {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	_ = t.ln.Close()
	var links []*outLink
	t.links.Range(func(_, v any) bool {
		links = append(links, v.(*outLink))
		return true
	})
	if flush {
		deadline := time.Now().Add(time.Second)
		for _, l := range links {
			l.drain(deadline)
		}
	}
	for _, l := range links {
		l.fail(errTransportClosed, 0)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	// The watchdog runs until the readers are gone: one running a blocked
	// actor is detached, and its successor ends on the closed connection.
	t.wg.Wait()
	close(t.quit)
	<-t.wdDone
}

// ---- outbound ----

// outLink is the connection to one peer and its send queue.
type outLink struct {
	t    *transport
	addr string

	mu     sync.Mutex
	conn   net.Conn
	raw    syscall.RawConn // for non-blocking writes; nil with TLS
	fdw    *fdWriter
	queue  []byte // frames not yet handed to a writer
	queued int    // frames in queue
	rest   []byte // the unwritten tail of an inline write, written first
	spare  []byte
	busy   bool // a writer owns the socket (or the link is connecting)
	// flusherOwns: the socket was handed to the flusher (which owns it
	// from the start, while connecting); an inline writer owns it while
	// busy is set and this is not.
	flusherOwns bool
	deadline    bool          // the flusher set a write deadline on conn that is not cleared yet
	lastInline  time.Time     // the last inline write (burst detection)
	writeSince  atomic.Int64  // unix ns when the flusher's current chunk write began; 0 when none
	taken       chan struct{} // closed when the writer takes the queue (throttled senders wait on it)
	types       outTypes
	err         error
	wake        chan struct{} // cap 1: work for the flusher
	done        chan struct{} // closed by fail

	dead    atomic.Bool
	retryAt time.Time // set before dead
}

func newOutLink(t *transport, addr string) *outLink {
	return &outLink{t: t, addr: addr, busy: true, flusherOwns: true, types: outTypes{}, fdw: newFDWriter(),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// payloadPool holds scratch buffers for message encodings.
var payloadPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (l *outLink) send(target *pa.PID, msg proto.Message, sender *pa.PID, system bool) {
	bp := payloadPool.Get().(*[]byte)
	payload, err := proto.MarshalOptions{}.MarshalAppend((*bp)[:0], msg)
	defer func() {
		if cap(payload) <= spareBufferMax {
			*bp = payload[:0]
			payloadPool.Put(bp)
		}
	}()
	if err != nil {
		l.t.drop("marshal", 1)
		l.t.log.Warn("cluster: actor transport: message not sent: it does not encode",
			zap.String("to", target.String()), zap.Error(err))
		return
	}
	name := msg.ProtoReflect().Descriptor().FullName()
	if size := len(payload) + len(name) + len(target.Id) + frameHeaderMax + 64; size > MaxFrameSize {
		l.t.drop("too_large", 1)
		l.t.log.Warn("cluster: actor transport: message not sent: too large",
			zap.String("to", target.String()), zap.String("type", string(name)),
			zap.Int("bytes", len(payload)), zap.Int("max", MaxFrameSize))
		return
	}
	l.mu.Lock()
	if l.queued >= softQueue && l.busy && l.conn != nil && !l.stuck() {
		l.throttle()
	}
	if l.err != nil {
		l.mu.Unlock()
		l.t.drop("link_down", 1)
		return
	}
	if l.queued >= l.t.maxQueue || len(l.queue) >= sendQueueBytes {
		l.mu.Unlock()
		l.t.drop("queue_full", 1)
		return
	}
	l.queue = appendFrame(l.queue, l.types, name, target, sender, l.t.self, system, payload)
	l.queued++
	if l.busy {
		l.mu.Unlock()
		return
	}
	l.busy = true
	l.writeInline() // unlocks
}

// writeInline writes the queue from the sender's goroutine with
// non-blocking writes; called with l.mu held and l.busy set by the caller,
// it returns with l.mu released. Whatever cannot be written at once is
// left to the flusher.
func (l *outLink) writeInline() {
	if l.raw == nil {
		l.handOff()
		return
	}
	for round := 0; ; round++ {
		buf := l.takeQueue()
		l.mu.Unlock()
		n, err := l.fdw.nonblockingWrite(l.raw, buf)
		if err != nil {
			l.fail(err, 0)
			return
		}
		l.mu.Lock()
		if n < len(buf) {
			l.rest = buf[n:]
			l.handOff()
			return
		}
		l.recycle(buf)
		now := time.Now()
		hb := now.Sub(l.lastInline) < burstGap
		l.lastInline = now
		if len(l.queue) == 0 && !hb {
			l.busy = false
			l.mu.Unlock()
			return
		}
		if hb || round+1 >= inlineRounds {
			l.handOff()
			return
		}
	}
}

// takeQueue returns the queued frames and starts a new queue; l.mu held.
func (l *outLink) takeQueue() []byte {
	buf := l.queue
	l.queue = l.spare[:0]
	l.spare = nil
	l.queued = 0
	if l.taken != nil {
		close(l.taken)
		l.taken = nil
	}
	return buf
}

// stuck reports whether the flusher's current chunk has been blocked for
// longer than stuckAfter: the peer takes no bytes (stopped, or cut off
// without a reset), so waiting would only stall the sender. A peer that is
// merely slower than the sender takes chunk after chunk and is not stuck.
func (l *outLink) stuck() bool {
	ws := l.writeSince.Load()
	return ws != 0 && time.Now().UnixNano()-ws > int64(stuckAfter)
}

// throttle makes a sender wait, for at most throttleWait, until the writer
// takes the queue: Erlang's busy distribution port, which suspends senders
// to a peer that does not keep up. A producer faster than the network is
// slowed to its pace instead of filling the queue and losing messages. A
// peer that takes nothing (stuck) throttles no one: frames queue up to the
// hard limit and are dropped after it, until failure detection declares
// the peer down. Called and returns with l.mu held.
func (l *outLink) throttle() {
	if l.taken == nil {
		l.taken = make(chan struct{})
	}
	ch := l.taken
	l.mu.Unlock()
	if l.t.metrics.throttled != nil {
		l.t.metrics.throttled.Inc()
	}
	tm := time.NewTimer(throttleWait)
	select {
	case <-ch:
	case <-l.done:
	case <-tm.C:
	}
	tm.Stop()
	l.mu.Lock()
}

// recycle keeps a written buffer for reuse; l.mu held.
func (l *outLink) recycle(buf []byte) {
	if cap(buf) <= spareBufferMax && l.spare == nil {
		l.spare = buf[:0]
	}
}

// handOff gives the socket to the flusher and wakes it; called with l.mu
// held (and the socket owned), it returns with l.mu released.
func (l *outLink) handOff() {
	l.flusherOwns = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run connects, then flushes whenever kicked, until the link fails.
func (l *outLink) run() {
	defer l.t.wg.Done()
	conn, err := l.connect()
	if err != nil {
		l.fail(err, redialBackoff)
		return
	}
	l.mu.Lock()
	if l.err != nil { // failed (closed) while connecting
		l.mu.Unlock()
		_ = conn.Close()
		return
	}
	l.conn = conn
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			l.raw = raw
		}
	}
	l.mu.Unlock()
	// The peer never writes after the handshake: a read returns only when
	// the connection ends, which fails the link at once instead of at the
	// next write.
	l.t.wg.Add(1)
	go func() {
		defer l.t.wg.Done()
		var b [1]byte
		_, err := conn.Read(b[:])
		if err == nil {
			err = errors.New("peer sent data on an outbound connection")
		}
		l.fail(fmt.Errorf("connection lost: %w", err), 0)
	}()
	for {
		if !l.flush() {
			return
		}
		select {
		case <-l.wake:
		case <-l.done:
			return
		}
	}
}

// flush writes until the queue is empty, then releases the socket. It
// reports false when the link failed.
func (l *outLink) flush() bool {
	for {
		l.mu.Lock()
		if l.err != nil {
			l.mu.Unlock()
			return false
		}
		if !l.flusherOwns {
			// A stale wake-up: an inline writer may own the socket now.
			l.mu.Unlock()
			return true
		}
		var buf []byte
		whole := false
		switch {
		case l.rest != nil:
			buf, l.rest = l.rest, nil
		case len(l.queue) > 0:
			buf, whole = l.takeQueue(), true
		default:
			if l.deadline {
				// Inline writes go through the same socket, and a write
				// deadline stays until cleared: an old one would fail them
				// (i/o timeout) long after this flush.
				_ = l.conn.SetWriteDeadline(time.Time{})
				l.deadline = false
			}
			l.busy, l.flusherOwns = false, false
			l.mu.Unlock()
			return true
		}
		conn := l.conn
		l.mu.Unlock()
		// In chunks, so that progress is visible: a chunk that does not go
		// out within stuckAfter marks the peer as stuck.
		for off := 0; off < len(buf); off += writeChunk {
			now := time.Now()
			l.writeSince.Store(now.UnixNano())
			l.deadline = true // only the flusher, which owns the socket, touches it
			_ = conn.SetWriteDeadline(now.Add(writeTimeout))
			if _, err := conn.Write(buf[off:min(off+writeChunk, len(buf))]); err != nil {
				l.writeSince.Store(0)
				l.fail(err, 0)
				return false
			}
		}
		l.writeSince.Store(0)
		l.mu.Lock()
		if whole {
			l.recycle(buf)
		}
		l.mu.Unlock()
	}
}

// drain waits until the queue is written, the link fails, or deadline.
func (l *outLink) drain(deadline time.Time) {
	for time.Now().Before(deadline) {
		l.mu.Lock()
		idle := l.err != nil || (l.conn != nil && !l.busy && len(l.queue) == 0)
		l.mu.Unlock()
		if idle {
			return
		}
		time.Sleep(5 * time.Millisecond) // polling a socket drain: there is no event for it
	}
}

// connect dials the peer and runs the handshake.
func (l *outLink) connect() (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.Dial("tcp", l.addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	// Close the dial if the transport stops meanwhile.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-l.done:
			_ = conn.Close()
		case <-stop:
		}
	}()
	_ = conn.SetDeadline(time.Now().Add(dialTimeout))
	if l.t.tlsCli != nil {
		cfg := l.t.tlsCli.Clone()
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(l.addr)
			cfg.ServerName = host
		}
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("TLS: %w", err)
		}
		conn = tc
	}
	r := bufio.NewReaderSize(conn, 256)
	if err := dialHandshake(conn, r, l.t.key, l.t.self, l.t.name, l.addr); err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// fail ends the link with err: the connection is closed, queued frames are
// dropped, and the next send opens a new link (after backoff).
func (l *outLink) fail(err error, backoff time.Duration) {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return
	}
	l.err = err
	lost := l.queued
	if l.rest != nil {
		lost++ // at least one frame was cut
	}
	l.queue, l.rest, l.spare, l.queued = nil, nil, nil, 0
	conn := l.conn
	l.retryAt = time.Now().Add(backoff)
	l.dead.Store(true)
	close(l.done)
	l.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
	l.t.drop("link_down", lost)
	if errors.Is(err, errTransportClosed) {
		return
	}
	var he *HandshakeError
	if backoff > 0 || errors.As(err, &he) {
		l.t.dialLog.do(func(suppressed uint64) {
			l.t.log.Warn("cluster: actor transport: cannot connect", zap.String("peer", l.addr),
				zap.Error(err), zap.Int("dropped", lost), zap.Uint64("suppressed", suppressed))
		})
	} else {
		l.t.log.Debug("cluster: actor transport: connection closed", zap.String("peer", l.addr),
			zap.Error(err), zap.Int("dropped", lost))
	}
}

// fdWriter writes with non-blocking write(2) calls through a RawConn. Its
// callback is bound once, so a write allocates nothing; it is used only by
// the owner of the link's socket.
type fdWriter struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

func newFDWriter() *fdWriter {
	w := &fdWriter{}
	w.fn = w.write
	return w
}

func (w *fdWriter) write(fd uintptr) bool {
	for w.n < len(w.b) {
		m, e := syscall.Write(int(fd), w.b[w.n:])
		if m > 0 {
			w.n += m
		}
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return true
		case e != nil:
			w.err = e
			return true
		case m == 0:
			return true
		}
	}
	return true
}

// nonblockingWrite writes as much of b as the socket takes without
// waiting.
func (w *fdWriter) nonblockingWrite(raw syscall.RawConn, b []byte) (int, error) {
	w.b, w.n, w.err = b, 0, nil
	err := raw.Write(w.fn)
	n, werr := w.n, w.err
	w.b = nil
	if err != nil {
		return n, err
	}
	return n, werr
}

// ---- inbound ----

func (t *transport) acceptLoop() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			_ = conn.Close()
			return
		}
		t.inbound[conn] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serve(conn)
	}
}

// serve runs the handshake on an inbound connection and then reads frames
// until it ends.
func (t *transport) serve(conn net.Conn) {
	from := conn.RemoteAddr().String()
	fail := func(err error) {
		t.rejected(from, err)
		t.mu.Lock()
		delete(t.inbound, conn)
		t.mu.Unlock()
		_ = conn.Close()
		t.wg.Done()
	}
	_ = conn.SetDeadline(time.Now().Add(dialTimeout))
	c := newSpinConn(conn, t.busyPoll)
	if t.tlsSrv != nil {
		tc := tls.Server(c, t.tlsSrv)
		if err := tc.Handshake(); err != nil {
			fail(fmt.Errorf("TLS: %w", err))
			return
		}
		c = tc
	}
	r := bufio.NewReaderSize(c, readBufferSize)
	peerAddr, _, err := acceptHandshake(c, r, t.key, from)
	if err != nil {
		fail(err)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	rd := &inReader{t: t, conn: conn, r: r, from: from, peerAddr: peerAddr}
	t.mu.Lock()
	t.readers[rd] = struct{}{}
	t.mu.Unlock()
	rd.run()
}

func (t *transport) rejected(from string, err error) {
	t.drop("rejected_connection", 1)
	t.inLog.do(func(suppressed uint64) {
		t.log.Warn("cluster: actor transport: rejected connection", zap.String("from", from),
			zap.Error(err), zap.Uint64("suppressed", suppressed))
	})
}

// ---- inbound readers ----
//
// A connection's reader delivers each frame on its own goroutine, and
// delivering a user message to an idle actor runs that actor right there
// (actor.System.DeliverRemote): a round trip then costs no goroutine
// hand-off and no thread wake-up beyond the network's own. The price is
// that an actor which takes long holds up the frames behind it on the
// connection, and one that blocks waiting for such a frame (a call to the
// peer from inside its handler) would wait for ever. So a watchdog checks
// the readers every stallCheck; a delivery still running at two checks in a
// row detaches its reader: a new goroutine takes over the connection and
// the old one ends when the delivery returns. Only the hold-up, between
// stallCheck and twice that, remains. The watchdog parks when no frame has
// been delivered for watchdogIdle checks.

const (
	stallCheck   = 2 * time.Millisecond
	watchdogIdle = 100
	// readerDetached is an inReader's state once the watchdog took its
	// connection away.
	readerDetached = ^uint64(0)
)

// errDetached ends a reader whose connection went to a successor.
var errDetached = errors.New("reader detached")

// inReader reads one inbound connection.
type inReader struct {
	t              *transport
	conn           net.Conn
	r              *bufio.Reader
	from, peerAddr string
	types          inTypes
	scratch        []byte
	peer           string
	received       prometheus.Counter
	// state counts deliveries, odd while one runs; the watchdog swaps a
	// stalled odd value for readerDetached.
	state atomic.Uint64
	seen  uint64 // state at the watchdog's last check (watchdog only)
}

// run reads frames until the connection ends or the reader is detached.
// It holds one count of t.wg, which a detach passes to the successor.
func (rd *inReader) run() {
	t := rd.t
	err := rd.readFrames()
	if errors.Is(err, errDetached) {
		return
	}
	t.mu.Lock()
	delete(t.inbound, rd.conn)
	delete(t.readers, rd)
	t.mu.Unlock()
	_ = rd.conn.Close()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		t.inLog.do(func(suppressed uint64) {
			t.log.Warn("cluster: actor transport: inbound connection closed", zap.String("peer", rd.peerAddr),
				zap.String("from", rd.from), zap.Error(err), zap.Uint64("suppressed", suppressed))
		})
	}
	t.wg.Done()
}

// readFrames reads and delivers frames from a peer until an error.
func (rd *inReader) readFrames() error {
	t, r, peerAddr := rd.t, rd.r, rd.peerAddr
	var lenBuf [4]byte
	for {
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return err
		}
		n := int(binary.LittleEndian.Uint32(lenBuf[:]))
		if n > MaxFrameSize {
			return fmt.Errorf("%w: frame of %d bytes exceeds the limit of %d", errFrame, n, MaxFrameSize)
		}
		var body []byte
		if n <= r.Size() {
			b, err := r.Peek(n)
			if err != nil {
				return err
			}
			body = b
		} else {
			if cap(rd.scratch) < n {
				rd.scratch = make([]byte, n)
			}
			body = rd.scratch[:n]
			if _, err := io.ReadFull(r, body); err != nil {
				return err
			}
		}
		f, err := decodeFrame(body, t.self, peerAddr, &rd.types)
		if n <= r.Size() {
			_, _ = r.Discard(n)
		}
		if err != nil {
			return err
		}
		if rd.peer == "" {
			if name, ok := t.peerName(peerAddr); ok {
				rd.peer = name
				if t.metrics.received != nil {
					rd.received = t.metrics.received(name)
				}
			} else if rd.received == nil && t.metrics.received != nil {
				rd.received = t.metrics.received("unknown")
			}
		}
		if rd.received != nil {
			rd.received.Inc()
		}
		if f.typeErr != nil {
			t.drop("undecodable", 1)
			t.inLog.do(func(suppressed uint64) {
				t.log.Warn("cluster: actor transport: message dropped", zap.String("peer", peerAddr),
					zap.String("to", f.target.Id), zap.Error(f.typeErr), zap.Uint64("suppressed", suppressed))
			})
			continue
		}
		act := t.deliverSafely(f, peerAddr)
		if !act.Pending() {
			continue
		}
		// Run inline only when nothing else is waiting on the connection
		// and the actor is quick: otherwise a worker runs it, in parallel
		// with this reader reading on (a stream, a batch, a slow actor).
		if r.Buffered() > 0 || !act.Inlinable() {
			act.Schedule()
			continue
		}
		// Only the actor's run may be detached from: the frame is in its
		// mailbox by now, so a successor's later frames queue behind it.
		s := rd.state.Add(1)
		t.wakeWatchdog()
		t.runSafely(act, peerAddr)
		if !rd.state.CompareAndSwap(s, s+1) {
			return errDetached
		}
	}
}

// wakeWatchdog unparks the watchdog if it parked.
func (t *transport) wakeWatchdog() {
	if t.wdParked.Load() && t.wdParked.CompareAndSwap(true, false) {
		select {
		case t.wdWake <- struct{}{}:
		default:
		}
	}
}

// watchdog detaches readers whose delivery stalls (see inReader).
func (t *transport) watchdog() {
	defer close(t.wdDone)
	tick := time.NewTicker(stallCheck)
	defer tick.Stop()
	idle := 0
	for {
		select {
		case <-t.quit:
			return
		case <-tick.C:
		}
		if t.checkReaders() {
			idle = 0
			continue
		}
		if idle++; idle < watchdogIdle {
			continue
		}
		// Park. A delivery that began before the flag was set is seen by
		// the check that follows; one after it wakes the watchdog.
		t.wdParked.Store(true)
		if t.checkReaders() && t.wdParked.CompareAndSwap(true, false) {
			idle = 0
			continue
		}
		tick.Stop()
		select {
		case <-t.quit:
			return
		case <-t.wdWake:
		}
		tick.Reset(stallCheck)
		idle = 0
	}
}

// checkReaders detaches stalled readers; it reports whether any delivery
// ran since the last check.
func (t *transport) checkReaders() (active bool) {
	type stall struct {
		rd *inReader
		s  uint64
	}
	var stalled []stall
	t.mu.Lock()
	for rd := range t.readers {
		s := rd.state.Load()
		if s != rd.seen || s&1 == 1 {
			active = true
		}
		if s&1 == 1 && s == rd.seen {
			stalled = append(stalled, stall{rd, s})
		}
		rd.seen = s
	}
	t.mu.Unlock()
	for _, st := range stalled {
		t.detach(st.rd, st.s)
	}
	return active
}

// detach gives rd's connection to a new reader goroutine, unless the
// delivery that was running at state s has ended meanwhile.
func (t *transport) detach(rd *inReader, s uint64) {
	if !rd.state.CompareAndSwap(s, readerDetached) {
		return
	}
	next := &inReader{t: t, conn: rd.conn, r: rd.r, from: rd.from, peerAddr: rd.peerAddr,
		types: rd.types, scratch: rd.scratch, peer: rd.peer, received: rd.received}
	t.mu.Lock()
	delete(t.readers, rd)
	t.readers[next] = struct{}{}
	t.mu.Unlock()
	if t.metrics.detached != nil {
		t.metrics.detached.Inc()
	}
	go next.run() // with rd's count of t.wg
}

// deliverSafely delivers a frame; a panic in delivery is logged and the
// frame dropped.
func (t *transport) deliverSafely(f inFrame, peerAddr string) (act actor.Activation) {
	defer t.recoverDelivery(peerAddr, f.target.Id)
	return t.deliver(f)
}

// runSafely runs an activation that a delivery returned. The mailbox
// recovers the actor's own panics; this is the last line of defence.
func (t *transport) runSafely(act actor.Activation, peerAddr string) {
	defer t.recoverDelivery(peerAddr, "")
	act.Run()
}

func (t *transport) recoverDelivery(peerAddr, to string) {
	if r := recover(); r != nil {
		t.drop("delivery_panic", 1)
		t.panicLog.do(func(suppressed uint64) {
			t.log.Error("cluster: actor transport: delivery panicked; message dropped",
				zap.String("peer", peerAddr), zap.String("to", to), zap.Any("panic", r),
				zap.ByteString("stack", debug.Stack()), zap.Uint64("suppressed", suppressed))
		})
	}
}
