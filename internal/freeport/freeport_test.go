package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Picked ports lie below the kernel's ephemeral range, are free for TCP
// and UDP, and are distinct from those already taken.
func TestPickBelowEphemeralRange(t *testing.T) {
	lo, hi := Range()
	if hi <= lo {
		t.Skip("no room below the ephemeral port range on this machine")
	}
	taken := map[string]bool{}
	for range 20 {
		a, err := Pick("127.0.0.1", true, taken)
		if err != nil {
			t.Fatal(err)
		}
		_, ps, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(ps)
		if p < lo || p >= hi {
			t.Fatalf("port %d outside [%d, %d)", p, lo, hi)
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("picked %s but cannot bind it: %v", a, err)
		}
		l.Close()
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			t.Fatalf("picked %s but cannot bind it for UDP: %v", a, err)
		}
		pc.Close()
	}
	if len(taken) != 20 {
		t.Fatalf("%d distinct addresses for 20 picks", len(taken))
	}
}

// A port in use is never picked.
func TestPickSkipsPortsInUse(t *testing.T) {
	lo, hi := Range()
	if hi-lo != 12000 {
		t.Skip("ephemeral range is not where this test expects it")
	}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	inUse := map[string]bool{}
	for p := lo; p < lo+200; p++ {
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			held = append(held, l)
			inUse[l.Addr().String()] = true
		}
	}
	for range 2000 {
		a, err := Pick("127.0.0.1", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if inUse[a] {
			t.Fatalf("picked %s, which is in use", a)
		}
	}
}
