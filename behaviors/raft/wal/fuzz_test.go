package wal

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
)

// FuzzOpen feeds arbitrary bytes to Open as the last segment: it may fail,
// but must not panic, and a log it accepts must be consistent and writable.
func FuzzOpen(f *testing.F) {
	seed := f.TempDir()
	w, err := Open(seed, Options{})
	if err != nil {
		f.Fatal(err)
	}
	if err := w.SaveSync(&raftpb.HardState{Term: 2, Vote: 1, Commit: 2}, ents(2, 1, 4)); err != nil {
		f.Fatal(err)
	}
	path := w.fpath
	w.Close()
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(0, 1)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := Open(dir, Options{})
		if err != nil {
			return
		}
		defer w.Close()
		last, _ := w.LastIndex()
		got, err := w.Entries(1, last+1, ^uint64(0))
		if err != nil || uint64(len(got)) != last {
			t.Fatalf("Entries(1, %d) = %d entries, %v", last+1, len(got), err)
		}
		for i, e := range got {
			if e.Index != uint64(i+1) {
				t.Fatalf("entry %d has index %d", i+1, e.Index)
			}
		}
		if err := w.SaveSync(nil, ents(9, last+1, last+2)); err != nil {
			t.Fatalf("SaveSync after recovery: %v", err)
		}
	})
}
