package journal

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashDirEnv = "SAGA_JOURNAL_CRASH_CHILD_DIR"

// TestCrashChild is the child process of TestKillNineLosesNoAcknowledgedRecord:
// eight writers append concurrently (so appends share fsyncs) and print each
// acknowledgement, while the journal is compacted (keeping everything) every
// few milliseconds, until the process is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only run as the child of TestKillNineLosesNoAcknowledgedRecord")
	}
	next := map[int]int{}
	var all [][]byte // every durable record, for the compactions
	j, err := Open(dir, Options{SegmentSize: 8192}, func(p []byte) error {
		var w, seq int
		if _, err := fmt.Sscanf(string(p), "w%d %d", &w, &seq); err != nil {
			return err
		}
		next[w] = seq + 1
		all = append(all, p)
		return nil
	})
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	// A compaction that keeps everything runs every few milliseconds, so
	// that kills also land in the middle of one.
	go func() {
		for {
			time.Sleep(3 * time.Millisecond)
			if _, err := j.Compact(func() ([][]byte, error) { return all, nil }); err != nil {
				fmt.Printf("error %v\n", err)
				os.Exit(1)
			}
		}
	}()
	var mu sync.Mutex
	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := next[w]; time.Now().Before(deadline); seq++ {
				rec := []byte(fmt.Sprintf("w%d %d %s", w, seq, strings.Repeat("x", seq%40)))
				ch := make(chan error, 1)
				// The callback runs on the writer goroutine, as the
				// compactions' keep does: no lock needed for all.
				j.Append(rec, func(err error) {
					if err == nil {
						all = append(all, rec)
					}
					ch <- err
				})
				if err := <-ch; err != nil {
					fmt.Printf("error %v\n", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Printf("acked %d %d\n", w, seq)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}

// TestKillNineLosesNoAcknowledgedRecord kills a writing child process with
// SIGKILL at a random moment, several times over the same directory, and
// checks after each kill, some of which land in a compaction, that every
// record the child saw acknowledged is there, and that each writer's records
// form a gapless sequence.
func TestKillNineLosesNoAcknowledgedRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := range 4 {
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
		t.Cleanup(func() { _ = child.Kill() })
		killAfter := 50 + rng.IntN(500)
		acked := map[int]int{}
		lines := 0
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "acked "); ok {
				f := strings.Fields(v)
				w, err1 := strconv.Atoi(f[0])
				seq, err2 := strconv.Atoi(f[1])
				if err1 != nil || err2 != nil {
					t.Fatalf("bad line %q", line)
				}
				acked[w] = max(acked[w], seq+1)
				lines++
				if lines == killAfter {
					if err := child.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
				}
			} else if strings.HasPrefix(line, "error") {
				t.Fatalf("child: %s", line)
			}
		}
		_ = cmd.Wait()
		if lines < killAfter {
			t.Fatalf("child exited after %d acknowledgements (wanted to kill after %d); stderr: %s", lines, killAfter, stderr.String())
		}
		next := map[int]int{}
		j, err := Open(dir, Options{SegmentSize: 8192}, func(p []byte) error {
			var w, seq int
			if _, err := fmt.Sscanf(string(p), "w%d %d", &w, &seq); err != nil {
				return err
			}
			if seq != next[w] {
				return fmt.Errorf("writer %d: record %d after %d", w, seq, next[w]-1)
			}
			next[w] = seq + 1
			return nil
		})
		if err != nil {
			t.Fatalf("round %d: Open after kill: %v", round, err)
		}
		for w, n := range acked {
			if next[w] < n {
				t.Fatalf("round %d: writer %d has %d records, %d were acknowledged", round, w, next[w], n)
			}
		}
		st := j.Recovery()
		t.Logf("round %d: killed after %d acknowledgements, %d records, cut %d bytes", round, lines, st.Records, st.TruncatedBytes)
		j.Close()
	}
}
