package cluster

import (
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// Busy-polling reads (Config.BusyPoll), as Erlang's schedulers busy-wait
// before they sleep.
//
// A request/reply between two nodes waits on each side for the other's
// message. A reader parked in the network poller is woken by the kernel
// when it comes, and that wake-up of an idle OS thread (and of its virtual
// CPU, on a VM) is the larger part of a round trip on loopback. So an
// inbound connection's reader whose read would block first polls the
// socket (non-blocking reads, yielding its processor in between) for up to
// Config.BusyPoll, and parks only if nothing came.
//
// Polling costs CPU when nothing comes, so it is adaptive: a connection
// polls while polling catches messages, stops after spinMisses polls in a
// row that caught nothing and tries again every spinProbe blocking reads;
// and at most GOMAXPROCS readers of the process poll at once.

const (
	spinMisses = 4
	spinProbe  = 64
)

// spinners counts the readers of this process polling right now.
var spinners atomic.Int32

// spinConn is a TCP connection whose reads poll before they park.
type spinConn struct {
	net.Conn
	raw     syscall.RawConn
	spinFor time.Duration

	// The read in progress (one reader at a time), for the bound callback.
	p      []byte
	n      int
	err    error
	until  time.Time
	polled bool
	fn     func(fd uintptr) bool

	misses uint8 // recent polls that caught nothing, net of catches
	idle   uint8
}

// newSpinConn wraps c if it is a TCP connection and spinFor > 0; it
// returns c otherwise.
func newSpinConn(c net.Conn, spinFor time.Duration) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok || spinFor <= 0 {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	s := &spinConn{Conn: c, raw: raw, spinFor: spinFor}
	s.fn = s.read
	return s
}

func (s *spinConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.p, s.n, s.err, s.polled = p, 0, nil, false
	poll := s.misses < spinMisses
	if !poll {
		s.idle++
		poll = s.idle%spinProbe == 0
	}
	if poll {
		if n := spinners.Add(1); int(n) > runtime.GOMAXPROCS(0) {
			spinners.Add(-1)
			poll = false
		} else {
			defer spinners.Add(-1)
		}
	}
	if poll {
		s.until = time.Now().Add(s.spinFor)
	} else {
		s.until = time.Time{}
	}
	err := s.raw.Read(s.fn)
	n, rerr := s.n, s.err
	s.p = nil
	if poll {
		// Caught: the data came while polling (not after a park).
		if caught := !s.polled && n > 0; caught {
			s.misses -= min(s.misses, 2)
		} else if s.misses < spinMisses {
			s.misses++
		}
	}
	if err != nil {
		return n, err
	}
	if rerr == nil && n == 0 {
		return 0, io.EOF
	}
	return n, rerr
}

// read is the RawConn callback: it returns false to park in the poller.
func (s *spinConn) read(fd uintptr) bool {
	for {
		n, err := syscall.Read(int(fd), s.p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			if s.until.IsZero() || s.polled || time.Now().After(s.until) {
				s.polled = true
				return false
			}
			runtime.Gosched()
			continue
		case err != nil:
			s.err = err
			return true
		}
		s.n = n
		return true
	}
}
