package cluster

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// A polling connection reads exactly the bytes written, whether they come
// while it polls or after it parked, and reports EOF when the peer closes.
func TestSpinConnReadsEverything(t *testing.T) {
	client, server := tcpPair(t)
	sc := newSpinConn(server, 100*time.Microsecond)
	if _, ok := sc.(*spinConn); !ok {
		t.Fatal("a TCP connection was not wrapped")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, 1<<20)
	for i := range want {
		want[i] = byte(rng.IntN(256))
	}
	wrote := make(chan error, 1)
	go func() {
		rest := want
		for len(rest) > 0 {
			n := min(len(rest), 1+rng.IntN(8192))
			if _, err := client.Write(rest[:n]); err != nil {
				wrote <- err
				return
			}
			rest = rest[n:]
			if rng.IntN(50) == 0 {
				// Gaps longer than the poll, so that reads also park.
				time.Sleep(time.Millisecond)
			}
		}
		wrote <- client.Close()
	}()
	got, err := io.ReadAll(sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, differing from the %d written", len(got), len(want))
	}
}

// Polls that catch nothing switch polling off (until a probe); a
// connection that is not TCP, or a zero duration, is not wrapped.
func TestSpinConnStopsPollingAfterMisses(t *testing.T) {
	client, server := tcpPair(t)
	sc := newSpinConn(server, 20*time.Microsecond).(*spinConn)
	buf := make([]byte, 16)
	for i := range spinMisses {
		// The byte comes well after the poll gave up: a miss.
		go func() {
			time.Sleep(5 * time.Millisecond)
			_, _ = client.Write([]byte{byte(i)})
		}()
		if _, err := sc.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	if sc.misses < spinMisses {
		t.Fatalf("misses %d after %d late bytes", sc.misses, spinMisses)
	}
	// Caught: the byte is there before the read.
	if _, err := client.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	_ = sc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := sc.Read(buf); err != nil {
		t.Fatal(err)
	}
	if c := newSpinConn(server, 0); c != server {
		t.Fatal("zero duration wrapped the connection")
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if c := newSpinConn(p1, time.Millisecond); c != p1 {
		t.Fatal("a pipe was wrapped")
	}
	// A deadline still applies while polling.
	_ = sc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	sc.misses = 0
	if _, err := sc.Read(buf); !isTimeout(err) {
		t.Fatalf("read past the deadline: %v", err)
	}
}

func TestConfigBusyPollBounds(t *testing.T) {
	for _, d := range []time.Duration{-time.Microsecond, 2 * time.Millisecond} {
		cfg := Local("n")
		cfg.BusyPoll = d
		if _, err := NewNode(cfg); err == nil || !strings.Contains(err.Error(), "Config.BusyPoll") {
			t.Fatalf("BusyPoll %v: %v", d, err)
		}
	}
}

// Two nodes that busy-poll exchange request/reply in order.
func TestBusyPollRoundTrips(t *testing.T) {
	nodes, _ := testCluster(t, 2, func(c *Config) { c.BusyPoll = 100 * time.Microsecond })
	echo := benchSpawn(t, nodes[1], int64Echo)
	got := make(chan int64, 1)
	const n = 3000
	benchSpawn(t, nodes[0], func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started:
			c.Request(echo, wrapperspb.Int64(0))
		case *wrapperspb.Int64Value:
			if m.Value == n {
				got <- m.Value
				return
			}
			c.Request(echo, wrapperspb.Int64(m.Value+1))
		}
	})
	select {
	case v := <-got:
		if v != n {
			t.Fatalf("got %d", v)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("round trips stalled")
	}
}
