package kvcheck_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/kv/kvcheck"
)

// atomicLog applies and reads under one lock: linearizable by construction.
type atomicLog struct {
	mu    sync.Mutex
	s     *kv.Store
	index uint64
}

func (l *atomicLog) Propose(_ context.Context, cmd []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.index++
	return l.s.Apply(l.index, cmd), nil
}

func (l *atomicLog) Read(_ context.Context, q []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Query(q)
}

// laggingLog serves reads from a replica that applies writes late: the
// stale reads a leader without ReadIndex can serve. Not linearizable.
type laggingLog struct {
	atomicLog
	replica *kv.Store
	pending [][]byte
	n       int
}

func (l *laggingLog) Propose(ctx context.Context, cmd []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.index++
	l.pending = append(l.pending, cmd)
	l.n++
	if l.n%5 == 0 { // the replica catches up now and then
		for i, c := range l.pending {
			l.replica.Apply(l.index-uint64(len(l.pending)-1-i), c)
		}
		l.pending = nil
	}
	return l.s.Apply(l.index, cmd), nil
}

func (l *laggingLog) Read(_ context.Context, q []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.replica.Query(q)
}

func run(t *testing.T, newClient func() *kv.Client) (*kvcheck.Recorder, porcupine.CheckResult) {
	t.Helper()
	rec := kvcheck.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	rec.Run(ctx, kvcheck.Workload{Clients: 4, Keys: 2, Seed: 7}, newClient)
	res, _ := rec.Check(30 * time.Second)
	return rec, res
}

func TestLinearizableLogPasses(t *testing.T) {
	log := &atomicLog{s: kv.NewStore()}
	rec, res := run(t, func() *kv.Client { return kv.NewClient(log) })
	st := rec.Stats()
	if st.Recorded < 50 {
		t.Fatalf("too few operations recorded: %+v", st)
	}
	if res != porcupine.Ok {
		t.Fatalf("linearizable log judged %s (%+v)", res, st)
	}
}

// TestStaleReadsAreCaught is the negative control: the checker must reject a
// history with stale reads.
func TestStaleReadsAreCaught(t *testing.T) {
	log := &laggingLog{atomicLog: atomicLog{s: kv.NewStore()}, replica: kv.NewStore()}
	rec, res := run(t, func() *kv.Client { return kv.NewClient(log) })
	if res != porcupine.Illegal {
		t.Fatalf("stale reads judged %s (%+v), want Illegal", res, rec.Stats())
	}
}

func TestVisualize(t *testing.T) {
	log := &atomicLog{s: kv.NewStore()}
	rec := kvcheck.NewRecorder()
	c := kv.NewClient(log)
	ctx := context.Background()
	rec.Do(ctx, 0, c, kvcheck.Input{Op: kvcheck.Put, Key: "a", Value: "1"})
	rec.Do(ctx, 0, c, kvcheck.Input{Op: kvcheck.Get, Key: "a"})
	res, info := rec.Check(0)
	if res != porcupine.Ok {
		t.Fatal(res)
	}
	path := t.TempDir() + "/history.html"
	if err := kvcheck.Visualize(info, path); err != nil {
		t.Fatal(err)
	}
}
