package kv_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/replog"
)

// memLog is a replicated log of one member, in memory. dupEvery > 0 makes
// every dupEvery-th proposal apply twice and lose its first reply, as a
// retry after a lost answer would.
type memLog struct {
	mu       sync.Mutex
	s        *kv.Store
	index    uint64
	n        int
	dupEvery int
}

func (l *memLog) Propose(_ context.Context, cmd []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if l.dupEvery > 0 && l.n%l.dupEvery == 0 {
		l.index++
		l.s.Apply(l.index, cmd) // the reply to this one is "lost"
	}
	l.index++
	return l.s.Apply(l.index, cmd), nil
}

func (l *memLog) Read(_ context.Context, q []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Query(q)
}

var _ replog.Log = (*memLog)(nil)

func TestOperations(t *testing.T) {
	ctx := context.Background()
	c := kv.NewClient(&memLog{s: kv.NewStore()})
	if _, ok, err := c.Get(ctx, "a"); err != nil || ok {
		t.Fatalf("get absent: %v %v", ok, err)
	}
	if err := c.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := c.Get(ctx, "a"); err != nil || !ok || string(v) != "1" {
		t.Fatalf("get: %q %v %v", v, ok, err)
	}
	if sw, prev, found, err := c.CompareAndSwap(ctx, "a", []byte("0"), []byte("2")); err != nil || sw || !found || string(prev) != "1" {
		t.Fatalf("cas mismatch: %v %q %v %v", sw, prev, found, err)
	}
	if sw, _, _, err := c.CompareAndSwap(ctx, "a", []byte("1"), []byte("2")); err != nil || !sw {
		t.Fatalf("cas match: %v %v", sw, err)
	}
	if ok, err := c.PutIfAbsent(ctx, "a", []byte("x")); err != nil || ok {
		t.Fatalf("put-if-absent on present key: %v %v", ok, err)
	}
	if ok, err := c.Delete(ctx, "a"); err != nil || !ok {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if ok, err := c.PutIfAbsent(ctx, "a", []byte("x")); err != nil || !ok {
		t.Fatalf("put-if-absent on absent key: %v %v", ok, err)
	}
	if ok, err := c.Delete(ctx, "zz"); err != nil || ok {
		t.Fatalf("delete absent: %v %v", ok, err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	c := kv.NewClient(&memLog{s: kv.NewStore()})
	for name, err := range map[string]error{
		"empty key":   c.Put(ctx, "", []byte("v")),
		"long key":    c.Put(ctx, string(make([]byte, kv.MaxKeySize+1)), nil),
		"large value": c.Put(ctx, "k", make([]byte, kv.MaxValueSize+1)),
		"bad utf8":    c.Put(ctx, "\xff", nil),
	} {
		if !errors.Is(err, kv.ErrRejected) {
			t.Errorf("%s: %v, want ErrRejected", name, err)
		}
	}
	s := kv.NewStore()
	for _, raw := range [][]byte{{0xff, 0xff}, {}, []byte("\x08\x01")} {
		res := s.Apply(1, raw)
		if !bytes.Contains(res, []byte("command")) {
			t.Errorf("Apply(%x) = %q, want an error result", raw, res)
		}
	}
	if s.Len() != 0 {
		t.Fatalf("bad commands changed the store: %d keys", s.Len())
	}
	if _, err := s.Query([]byte{0xff}); err == nil {
		t.Fatal("malformed query accepted")
	}
}

// TestRetriedCommandAppliedOnce: a command applied twice (a retry after a
// lost reply) takes effect once and returns the first result.
func TestRetriedCommandAppliedOnce(t *testing.T) {
	ctx := context.Background()
	log := &memLog{s: kv.NewStore(), dupEvery: 1}
	c := kv.NewClient(log)
	if err := c.Put(ctx, "n", []byte("0")); err != nil {
		t.Fatal(err)
	}
	// Each CAS is applied twice; the second application must not swap again
	// and must report the first one's result.
	for i := range 5 {
		old, nw := []byte{byte('0' + i)}, []byte{byte('1' + i)}
		sw, _, _, err := c.CompareAndSwap(ctx, "n", old, nw)
		if err != nil || !sw {
			t.Fatalf("cas %d: swapped=%v err=%v (a retry must return the first result)", i, sw, err)
		}
	}
	if v, _, _ := c.Get(ctx, "n"); string(v) != "5" {
		t.Fatalf("value %q, want 5", v)
	}
}

func TestSnapshotRestore(t *testing.T) {
	ctx := context.Background()
	log := &memLog{s: kv.NewStore()}
	c := kv.NewClient(log)
	for _, k := range []string{"b", "a", "c"} {
		if err := c.Put(ctx, k, []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := log.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := log.s.Snapshot()
	if !bytes.Equal(snap, again) {
		t.Fatal("snapshots of one state differ")
	}
	r := kv.NewStore()
	if err := r.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !r.Equal(log.s) || r.Applied() != log.s.Applied() {
		t.Fatal("restored store differs")
	}
	// Sessions survive: a replay of the last command is still deduplicated.
	log2 := &memLog{s: r, index: log.index, dupEvery: 1}
	c2 := kv.NewClient(log2)
	if err := c2.Put(ctx, "d", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := r.Restore([]byte{0xff}); err == nil {
		t.Fatal("malformed snapshot accepted")
	}
}

func TestSessionEviction(t *testing.T) {
	s := kv.NewStore()
	s.MaxSessions = 2
	ctx := context.Background()
	log := &memLog{s: s}
	for range 5 {
		if err := kv.NewClient(log).Put(ctx, "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Sessions(); n != 2 {
		t.Fatalf("%d sessions remembered, want 2", n)
	}
}
