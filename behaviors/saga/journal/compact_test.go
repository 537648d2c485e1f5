package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestCompactKeepsWhatItIsTold(t *testing.T) {
	dir := t.TempDir()
	j, _ := collect(t, dir, Options{SegmentSize: 100})
	for i := range 20 {
		if err := j.AppendSync(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := listSegments(dir)
	boom := errors.New("boom")
	if _, err := j.Compact(func() ([][]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("Compact with a failing keep: %v", err)
	}
	st, err := j.Compact(func() ([][]byte, error) { return [][]byte{rec(3), rec(7)}, nil })
	if err != nil {
		t.Fatal(err)
	}
	if st.Kept != 2 || st.RemovedSegments != len(before) {
		t.Fatalf("stats %+v, %d segments before", st, len(before))
	}
	if err := j.AppendSync(rec(20)); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j, got := collect(t, dir, Options{SegmentSize: 100})
	j.Close()
	want := [][]byte{rec(3), rec(7), rec(20)}
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d = %q, want %q", i, got[i], want[i])
		}
	}
	// Compacting to nothing leaves an empty journal that still works.
	j, _ = collect(t, dir, Options{})
	if _, err := j.Compact(func() ([][]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j, got = collect(t, dir, Options{})
	j.Close()
	if len(got) != 0 {
		t.Fatalf("replayed %d records after compacting to nothing", len(got))
	}
}

// TestCompactSeesEveryEarlierAppend: keep runs after every earlier append's
// callback, so records acknowledged before it are in what it returns, and
// records appended while it runs go after it; nothing acknowledged is lost.
func TestCompactSeesEveryEarlierAppend(t *testing.T) {
	dir := t.TempDir()
	j, _ := collect(t, dir, Options{SegmentSize: 512})
	var mu sync.Mutex
	var acked [][]byte
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				p := []byte(fmt.Sprintf("w%d-%03d", w, i))
				j.Append(p, func(err error) {
					if err == nil {
						mu.Lock()
						acked = append(acked, p)
						mu.Unlock()
					}
				})
			}
		}()
	}
	for range 5 {
		// Keep everything acknowledged so far.
		if _, err := j.Compact(func() ([][]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			return append([][]byte(nil), acked...), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	j.Close()
	j, got := collect(t, dir, Options{})
	j.Close()
	seen := map[string]bool{}
	for _, p := range got {
		seen[string(p)] = true
	}
	for w := range 4 {
		for i := range 100 {
			if p := fmt.Sprintf("w%d-%03d", w, i); !seen[p] {
				t.Fatalf("acknowledged record %s lost", p)
			}
		}
	}
	if len(got) != 400 {
		t.Fatalf("replayed %d records, want 400", len(got))
	}
}

// TestCompactLeftoversOfACrash: a crash after the new base segment was
// renamed into place but before the old segments were deleted, with a
// temporary file of a later compaction lying around.
func TestCompactLeftoversOfACrash(t *testing.T) {
	dir := t.TempDir()
	j, _ := collect(t, dir, Options{SegmentSize: 60})
	for i := range 10 {
		if err := j.AppendSync(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	old, _ := listSegments(dir)
	last, _ := parseSegmentName(filepath.Base(old[len(old)-1]))
	base := appendRecord(nil, nil, true)
	base = appendRecord(base, []byte("kept-1"), false)
	base = appendRecord(base, []byte("kept-2"), false)
	if err := os.WriteFile(filepath.Join(dir, segmentName(last+1)), base, 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, segmentName(last+2)+tempExt)
	if err := os.WriteFile(tmp, []byte("half a compaction"), 0o644); err != nil {
		t.Fatal(err)
	}
	j, got := collect(t, dir, Options{})
	j.Close()
	if len(got) != 2 || string(got[0]) != "kept-1" || string(got[1]) != "kept-2" {
		t.Fatalf("replayed %q", got)
	}
	left, _ := listSegments(dir)
	if len(left) != 1 {
		t.Fatalf("%d segments left, want only the base segment", len(left))
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
}

// TestBaseFlagIsChecksummed: a flipped bit cannot turn an ordinary record
// into a base record (which would discard the earlier segments).
func TestBaseFlagIsChecksummed(t *testing.T) {
	dir := t.TempDir()
	j, _ := collect(t, dir, Options{SegmentSize: 60})
	for i := range 11 { // 3 records per segment: the last one holds 2
		if err := j.AppendSync(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	segs, _ := listSegments(dir)
	lastSeg := segs[len(segs)-1]
	flipByte(t, lastSeg, 3) // the top byte of the first length word: the base flag
	if isBase(lastSeg) {
		t.Fatal("a flipped flag made a base record")
	}
	if _, err := Open(dir, Options{}, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want ErrCorrupt (a damaged record followed by a valid one)", err)
	}
	for _, s := range segs {
		if _, err := os.Stat(s); err != nil {
			t.Fatalf("segment %s is gone: %v", s, err)
		}
	}
}
