// Package freeport picks loopback ports for nodes that are told their
// address before they bind it (a Raft member's peer list, a demo's node
// processes).
//
// A port from Listen(":0") comes from the kernel's ephemeral range, and it
// is free only until the next outbound connection: once it is closed, a
// node that already runs and dials its peers can be given that same port
// for its end of a connection, and the node that was meant to bind it
// fails with "address already in use". Ports picked here lie below the
// ephemeral range, where the kernel never assigns outbound ports.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Range returns [lo, hi): up to 12000 ports just below the kernel's
// ephemeral port range (Linux: net.ipv4.ip_local_port_range, default
// 32768-60999), never below 10000. lo == hi when there is no room.
func Range() (lo, hi int) {
	hi = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				hi = n
			}
		}
	}
	lo = max(hi-12000, 10000)
	if hi <= lo {
		return 0, 0
	}
	return lo, hi
}

// Pick returns host:port with a port from Range that is free for TCP (and
// for UDP too when udp is set, as gossip needs) and not in taken; it adds
// the address to taken when taken is not nil. Without room below the
// ephemeral range it falls back to a port the kernel picks.
func Pick(host string, udp bool, taken map[string]bool) (string, error) {
	lo, hi := Range()
	for range 500 {
		p := 0
		if hi > lo {
			p = lo + rand.IntN(hi-lo)
		}
		addr, ok, err := Check(host, p, udp)
		if err != nil {
			return "", err
		}
		if !ok || taken[addr] {
			continue
		}
		if taken != nil {
			taken[addr] = true
		}
		return addr, nil
	}
	return "", fmt.Errorf("freeport: no free port on %s in %d-%d", host, lo, hi-1)
}

// Check binds host:port for TCP (and for UDP too when udp is set) and
// closes it again, returning the address it bound. ok is false when the
// port is in use; err is set only when port 0 cannot be bound, which no
// retry would mend.
func Check(host string, port int, udp bool) (addr string, ok bool, err error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		if port == 0 {
			return "", false, err
		}
		return "", false, nil
	}
	addr = ln.Addr().String()
	defer ln.Close()
	if udp {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return "", false, nil
		}
		_ = pc.Close()
	}
	return addr, true, nil
}
