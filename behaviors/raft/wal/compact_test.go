package wal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/distributed-go/distributed/behaviors/raft/core"
	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
)

// buildConflictingLog writes 1..60 in term 1, overwrites from 41 in term 2,
// and from 31 in term 3 up to 80, across many small segments, and returns
// the resulting log.
func buildConflictingLog(t *testing.T, w *WAL) []*raftpb.Entry {
	t.Helper()
	for _, b := range []struct{ term, lo, hi uint64 }{{1, 1, 60}, {2, 41, 55}, {3, 31, 80}} {
		for i := b.lo; i <= b.hi; i += 3 {
			hi := min(i+2, b.hi)
			if err := w.SaveSync(&raftpb.HardState{Term: b.term, Commit: 20}, ents(b.term, i, hi)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return append(ents(1, 1, 30), ents(3, 31, 80)...)
}

func TestCompact(t *testing.T) {
	opts := Options{SegmentSize: 300}
	for _, index := range []uint64{1, 10, 30, 31, 45, 79, 80} {
		dir := t.TempDir()
		w := mustOpen(t, dir, opts)
		full := buildConflictingLog(t, w)
		before, _ := listSegments(dir)
		pre := copyDir(t, dir)
		if err := w.Compact(index); err != nil {
			t.Fatalf("Compact(%d): %v", index, err)
		}
		check := func(w *WAL) {
			t.Helper()
			if fi, _ := w.FirstIndex(); fi != index+1 {
				t.Fatalf("Compact(%d): FirstIndex = %d", index, fi)
			}
			if term, err := w.Term(index); err != nil || term != full[index-1].Term {
				t.Fatalf("Compact(%d): Term(%d) = %d, %v", index, index, term, err)
			}
			if _, err := w.Term(index - 1); !errors.Is(err, core.ErrCompacted) {
				t.Fatalf("Compact(%d): Term below = %v", index, err)
			}
			if _, err := w.Entries(index, 81, ^uint64(0)); !errors.Is(err, core.ErrCompacted) {
				t.Fatalf("Compact(%d): Entries below = %v", index, err)
			}
			if last, _ := w.LastIndex(); last != 80 {
				t.Fatalf("Compact(%d): LastIndex = %d", index, last)
			}
			if index < 80 {
				got, err := w.Entries(index+1, 81, ^uint64(0))
				if err != nil || len(got) != int(80-index) {
					t.Fatalf("Compact(%d): Entries = %d, %v", index, len(got), err)
				}
				for i, e := range got {
					if e.Index != full[index+uint64(i)].Index || e.Term != full[index+uint64(i)].Term {
						t.Fatalf("Compact(%d): entry %v, want %v", index, e, full[index+uint64(i)])
					}
				}
			}
			if hs := w.HardState(); hs.Term != 3 {
				t.Fatalf("Compact(%d): HardState = %v", index, hs)
			}
		}
		check(w)
		if err := w.Compact(index); !errors.Is(err, core.ErrCompacted) {
			t.Fatalf("second Compact(%d) = %v", index, err)
		}
		if err := w.Save(nil, []*raftpb.Entry{ent(4, index)}); index > 0 && !errors.Is(err, core.ErrCompacted) {
			t.Fatalf("Save below FirstIndex = %v", err)
		}
		w.Close()
		after, _ := listSegments(dir)
		t.Logf("Compact(%d): %d segments -> %d", index, len(before), len(after))
		if index >= 45 && len(after) >= len(before) {
			t.Fatalf("Compact(%d) removed no segment (%d before, %d after)", index, len(before), len(after))
		}
		w = mustOpen(t, dir, opts)
		check(w)
		w.Close()

		// A crash part-way through the removals leaves the oldest segments
		// removed and the rest present: every such state recovers.
		removed := len(before) - len(after)
		for keep := 1; keep <= removed; keep++ {
			d := copyDir(t, dir)
			for _, name := range before[removed-keep : removed] {
				b, err := os.ReadFile(filepath.Join(pre, name))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			w, err := Open(d, opts)
			if err != nil {
				t.Fatalf("Compact(%d) with %d removed segments restored: %v", index, keep, err)
			}
			check(w)
			w.Close()
		}
	}
}

func TestCompactThenAppendAndConflict(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 200}
	w := mustOpen(t, dir, opts)
	if err := w.SaveSync(nil, ents(1, 1, 50)); err != nil {
		t.Fatal(err)
	}
	if err := w.Compact(40); err != nil {
		t.Fatal(err)
	}
	if err := w.SaveSync(nil, ents(2, 45, 60)); err != nil {
		t.Fatal(err)
	}
	if err := w.Compact(50); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = mustOpen(t, dir, opts)
	defer w.Close()
	if fi, _ := w.FirstIndex(); fi != 51 {
		t.Fatalf("FirstIndex = %d", fi)
	}
	if term, _ := w.Term(50); term != 2 {
		t.Fatalf("Term(50) = %d", term)
	}
	got, err := w.Entries(51, 61, ^uint64(0))
	if err != nil || len(got) != 10 || got[0].Term != 2 || got[9].Index != 60 {
		t.Fatalf("Entries = %v, %v", got, err)
	}
}
