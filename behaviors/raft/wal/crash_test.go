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

const crashSnapDirEnv = "WAL_CRASH_SNAP_CHILD_DIR"

// TestCrashSnapChild is the child process of TestKillNineWithSnapshots: it
// appends and syncs batches, and now and then snapshots and compacts (as
// any node does) or installs a snapshot that jumps ahead of its log (as a
// follower does), printing what is durable after each step, until killed.
func TestCrashSnapChild(t *testing.T) {
	dir := os.Getenv(crashSnapDirEnv)
	if dir == "" {
		t.Skip("only run as the child of TestKillNineWithSnapshots")
	}
	fail := func(err error) {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	w, err := Open(dir, Options{SegmentSize: 2048})
	if err != nil {
		fail(err)
	}
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	next, _ := w.LastIndex()
	next++
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		switch k := rng.Intn(20); {
		case k == 0:
			// A follower installs a snapshot from its leader, ahead of its log.
			idx := next + uint64(rng.Intn(8))
			snap := &raftpb.Snapshot{Data: []byte(fmt.Sprintf("snap %d", idx)), Metadata: &raftpb.SnapshotMetadata{Index: idx, Term: 1, ConfState: cs}}
			if err := w.ApplySnapshot(snap); err != nil {
				fail(err)
			}
			next = idx + 1
			fmt.Printf("snap %d\n", idx)
		case k < 3 && next > 1:
			// Snapshot the state machine at the last index, and compact
			// some way below it.
			last := next - 1
			cur, _ := w.Snapshot()
			if last > cur.Metadata.Index {
				if _, err := w.CreateSnapshot(last, cs, []byte(fmt.Sprintf("snap %d", last))); err != nil {
					fail(err)
				}
				fmt.Printf("snap %d\n", last)
			}
			first, _ := w.FirstIndex()
			if at := last - uint64(rng.Intn(10)); at >= first && at <= last {
				if err := w.Compact(at); err != nil {
					fail(err)
				}
			}
		default:
			n := 1 + rng.Intn(16)
			batch := make([]*raftpb.Entry, n)
			for i := range batch {
				idx := next + uint64(i)
				batch[i] = &raftpb.Entry{Term: 1, Index: idx, Data: crashData(idx)}
			}
			next += uint64(n)
			if err := w.Save(&raftpb.HardState{Term: 1, Commit: next - 1}, batch); err != nil {
				fail(err)
			}
			if err := w.Sync(); err != nil {
				fail(err)
			}
			fmt.Printf("synced %d\n", next-1)
		}
	}
	os.Exit(0)
}

// TestKillNineWithSnapshots kills, with SIGKILL at random moments, a child
// that writes entries, creates and installs snapshots and compacts, and
// checks after each kill that the directory opens, that the newest
// acknowledged snapshot and every acknowledged entry are there (an entry
// either in the log or covered by the snapshot), and that the log is
// intact.
func TestKillNineWithSnapshots(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	for round := 0; round < 4; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSnapChild$")
		cmd.Env = append(os.Environ(), crashSnapDirEnv+"="+dir)
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
		t.Cleanup(func() { _ = child.Kill() })
		killAfter := 20 + rng.Intn(300)
		var acked, ackedSnap uint64
		sc := bufio.NewScanner(out)
		lines, snaps := 0, 0
		for sc.Scan() {
			line := sc.Text()
			var v string
			var ok, isSnap bool
			if v, ok = strings.CutPrefix(line, "synced "); !ok {
				v, isSnap = strings.CutPrefix(line, "snap ")
				ok = isSnap
			}
			if !ok {
				if strings.HasPrefix(line, "error") {
					t.Fatalf("child: %s", line)
				}
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("bad line %q", line)
			}
			acked = max(acked, n)
			if isSnap {
				ackedSnap, snaps = n, snaps+1
			}
			lines++
			if lines == killAfter {
				time.Sleep(time.Duration(rng.Intn(2000)) * time.Microsecond)
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
		_ = cmd.Wait()
		if lines < killAfter {
			t.Fatalf("child exited after %d lines (wanted to kill after %d); stderr: %s", lines, killAfter, stderr.String())
		}
		w, err := Open(dir, Options{SegmentSize: 2048})
		if err != nil {
			t.Fatalf("round %d: Open after kill: %v", round, err)
		}
		snap, _ := w.Snapshot()
		if snap.Metadata.Index < ackedSnap {
			t.Fatalf("round %d: snapshot %d older than the acknowledged %d", round, snap.Metadata.Index, ackedSnap)
		}
		if snap.Metadata.Index > 0 && string(snap.Data) != fmt.Sprintf("snap %d", snap.Metadata.Index) {
			t.Fatalf("round %d: snapshot %d holds %q", round, snap.Metadata.Index, snap.Data)
		}
		first, _ := w.FirstIndex()
		last, _ := w.LastIndex()
		if last < acked {
			t.Fatalf("round %d: LastIndex %d < acknowledged %d", round, last, acked)
		}
		if first > snap.Metadata.Index+1 {
			t.Fatalf("round %d: log starts at %d, after the snapshot at %d", round, first, snap.Metadata.Index)
		}
		got, err := w.Entries(first, last+1, ^uint64(0))
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range got {
			idx := first + uint64(i)
			if e.Index != idx || !bytes.Equal(e.Data, crashData(idx)) {
				t.Fatalf("round %d: entry %d = %v", round, idx, e)
			}
		}
		t.Logf("round %d: killed after %d lines (%d snapshots), acknowledged %d, recovered snapshot %d and log [%d, %d], dropped %d bytes",
			round, lines, snaps, acked, snap.Metadata.Index, first, last, w.Recovery().DroppedBytes)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
