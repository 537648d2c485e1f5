package raft_test

// A Raft group across real OS processes: three raftnode processes (cmd
// internal/raftnode), clients in this process (one transport here, so this
// test also runs under -race). The nemesis kills processes with SIGKILL and
// restarts them from their data directories, and pauses them with SIGSTOP.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/kv/kvcheck"
	"github.com/distributed-go/distributed/behaviors/raft"
	"github.com/distributed-go/distributed/cluster"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// procGroup is n raftnode processes.
type procGroup struct {
	t      *testing.T
	bin    string
	dir    string
	peers  map[uint64]string
	flag   string
	mu     sync.Mutex
	procs  map[uint64]*exec.Cmd
	gossip map[uint64]string
	logs   map[uint64]*lockedBuffer
}

func buildRaftnode(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH: cannot build the raftnode binary")
	}
	bin := filepath.Join(t.TempDir(), "raftnode")
	if out, err := exec.Command(goTool, "build", "-o", bin, "./internal/raftnode").CombinedOutput(); err != nil {
		t.Fatalf("go build ./behaviors/raft/internal/raftnode: %v\n%s", err, out)
	}
	return bin
}

func newProcGroup(t *testing.T, n int) *procGroup {
	g := &procGroup{t: t, bin: buildRaftnode(t), dir: t.TempDir(), peers: map[uint64]string{},
		procs: map[uint64]*exec.Cmd{}, gossip: map[uint64]string{}, logs: map[uint64]*lockedBuffer{}}
	var parts []string
	for id := uint64(1); id <= uint64(n); id++ {
		g.peers[id] = freePort(t)
		parts = append(parts, fmt.Sprintf("%d=%s", id, g.peers[id]))
	}
	g.flag = strings.Join(parts, ",")
	for id := uint64(1); id <= uint64(n); id++ {
		g.start(id)
	}
	t.Cleanup(func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		for id, p := range g.procs {
			p.Process.Signal(syscall.SIGCONT)
			p.Process.Kill()
			p.Wait()
			if t.Failed() {
				t.Logf("log of member %d:\n%s", id, g.logs[id])
			}
		}
	})
	return g
}

// start starts (or restarts) member id's process and waits for READY.
func (g *procGroup) start(id uint64) {
	g.t.Helper()
	g.mu.Lock()
	var seeds []string
	for other, addr := range g.gossip {
		if other != id && g.procs[other] != nil {
			seeds = append(seeds, addr)
		}
	}
	g.mu.Unlock()
	name := fmt.Sprintf("n%d", id)
	cmd := exec.Command(g.bin, "--name", name, "--id", fmt.Sprint(id), "--remote", g.peers[id],
		"--peers", g.flag, "--data", filepath.Join(g.dir, name), "--join", strings.Join(seeds, ","),
		"--snapshot-entries", "500")
	logs := g.logs[id]
	if logs == nil {
		logs = &lockedBuffer{}
	}
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		g.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "READY" {
				ready <- f[2]
			}
		}
	}()
	select {
	case gossip := <-ready:
		g.mu.Lock()
		g.procs[id], g.gossip[id], g.logs[id] = cmd, gossip, logs
		g.mu.Unlock()
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		g.t.Fatalf("member %d did not start:\n%s", id, logs)
	}
}

// kill9 kills member id's process with SIGKILL.
func (g *procGroup) kill9(id uint64) {
	g.mu.Lock()
	p := g.procs[id]
	delete(g.procs, id)
	g.mu.Unlock()
	if p != nil {
		p.Process.Kill()
		p.Wait()
	}
}

func (g *procGroup) signal(id uint64, s syscall.Signal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p := g.procs[id]; p != nil {
		p.Process.Signal(s)
	}
}

func (g *procGroup) seeds() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var s []string
	for _, a := range g.gossip {
		s = append(s, a)
	}
	return s
}

// TestLinearizabilityOSProcesses: three member processes; clients here; the
// nemesis SIGKILLs a member (leader or not) and restarts it from its data
// directory, or pauses one with SIGSTOP; the history must be linearizable.
func TestLinearizabilityOSProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs OS processes")
	}
	g := newProcGroup(t, 3)
	cfg := cluster.Local("client")
	cfg.Logger = zap.NewNop()
	cfg.Seeds = g.seeds()
	client, err := cluster.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if err := client.Start(sctx); err != nil {
		t.Fatal(err)
	}
	defer client.Stop()
	newRaft := func() *raft.Client {
		return raft.NewClient(client.System(), "kv", g.peers, raft.ClientOptions{AttemptTimeout: 500 * time.Millisecond})
	}
	if err := kv.NewClient(newRaft()).Put(sctx, "warmup", []byte("x")); err != nil {
		t.Fatalf("no leader: %v", err)
	}

	linearizable(t, 5*time.Second, rand.Uint64(), kvcheck.Workload{Clients: 4, Keys: 3, OpTimeout: 1500 * time.Millisecond},
		func() *kv.Client { return kv.NewClient(newRaft()) },
		func(ctx context.Context, rng *rand.Rand) (faults []string) {
			for ctx.Err() == nil {
				id := uint64(rng.IntN(3) + 1)
				if rng.IntN(2) == 0 {
					g.kill9(id)
					faults = append(faults, fmt.Sprintf("kill -9 n%d", id))
					sleepCtx(ctx, 500*time.Millisecond)
					g.start(id)
				} else {
					g.signal(id, syscall.SIGSTOP)
					faults = append(faults, fmt.Sprintf("pause n%d", id))
					sleepCtx(ctx, 700*time.Millisecond)
					g.signal(id, syscall.SIGCONT)
				}
				sleepCtx(ctx, 500*time.Millisecond)
			}
			return faults
		})
}
