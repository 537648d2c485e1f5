package wal

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
)

const crashDirEnv = "WAL_CRASH_CHILD_DIR"

func crashData(i uint64) []byte {
	return []byte(fmt.Sprintf("crash entry %d %s", i, strings.Repeat("x", int(i%50))))
}

// TestCrashChild is the child process of TestKillNineLosesNoSyncedEntry: it
// appends batches, syncs each, and prints the last synced index after every
// Sync, until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only run as the child of TestKillNineLosesNoSyncedEntry")
	}
	w, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	next, _ := w.LastIndex()
	next++
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		n := 1 + rng.Intn(16)
		batch := make([]*raftpb.Entry, n)
		for i := range batch {
			idx := next + uint64(i)
			batch[i] = &raftpb.Entry{Term: 1, Index: idx, Data: crashData(idx)}
		}
		next += uint64(n)
		if err := w.Save(&raftpb.HardState{Term: 1, Commit: next - 1}, batch); err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(1)
		}
		if err := w.Sync(); err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("synced %d\n", next-1)
	}
	os.Exit(0)
}

// TestKillNineLosesNoSyncedEntry kills a writing child process with SIGKILL
// at a random moment, several times over the same directory, and checks
// after each kill that every index the child reported as synced is there.
func TestKillNineLosesNoSyncedEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	var totalDropped int64
	for round := 0; round < 4; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		child := cmd.Process
		// Kill the child if a check below fails before the planned kill.
		t.Cleanup(func() { _ = child.Kill() })
		killAfter := 20 + rng.Intn(300) // synced batches before the kill
		var acked uint64
		sc := bufio.NewScanner(out)
		lines := 0
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "synced "); ok {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					t.Fatalf("bad line %q", line)
				}
				acked = n
				lines++
				if lines == killAfter {
					// Let it run a little further so the kill lands at an
					// arbitrary point of a write, not just after a Sync.
					time.Sleep(time.Duration(rng.Intn(2000)) * time.Microsecond)
					if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
				}
			} else if strings.HasPrefix(line, "error") {
				t.Fatalf("child: %s", line)
			}
		}
		// Lines printed after the kill decision are acknowledgements too.
		_ = cmd.Wait()
		if lines < killAfter {
			t.Fatalf("child exited after %d syncs (wanted to kill after %d); stderr: %s", lines, killAfter, stderr.String())
		}

		w, err := Open(dir, Options{SegmentSize: 4096})
		if err != nil {
			t.Fatalf("round %d: Open after kill: %v", round, err)
		}
		last, _ := w.LastIndex()
		if last < acked {
			t.Fatalf("round %d: LastIndex %d < acknowledged %d", round, last, acked)
		}
		got, err := w.Entries(1, last+1, ^uint64(0))
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range got {
			idx := uint64(i + 1)
			if e.Index != idx || e.Term != 1 || !bytes.Equal(e.Data, crashData(idx)) {
				t.Fatalf("round %d: entry %d = %v", round, idx, e)
			}
		}
		if hs := w.HardState(); hs.Commit < acked {
			t.Fatalf("round %d: HardState.Commit %d < acknowledged %d", round, hs.Commit, acked)
		}
		totalDropped += w.Recovery().DroppedBytes
		t.Logf("round %d: killed after %d syncs, acknowledged %d, recovered %d, dropped %d bytes", round, lines, acked, last, w.Recovery().DroppedBytes)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
