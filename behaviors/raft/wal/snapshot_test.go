package wal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/distributed-go/distributed/behaviors/raft/core"
	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"google.golang.org/protobuf/proto"
)

var testCS = &raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}

func snapFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if strings.HasSuffix(de.Name(), snapExt) || strings.HasSuffix(de.Name(), snapTmpExt) {
			out = append(out, de.Name())
		}
	}
	return out
}

// checkRange verifies that w holds exactly want, which starts at FirstIndex.
func checkRange(t *testing.T, w *WAL, first uint64, want []*raftpb.Entry) {
	t.Helper()
	fi, _ := w.FirstIndex()
	li, _ := w.LastIndex()
	if fi != first || li != first+uint64(len(want))-1 {
		t.Fatalf("log [%d, %d], want [%d, %d]", fi, li, first, first+uint64(len(want))-1)
	}
	if len(want) == 0 {
		return
	}
	got, err := w.Entries(fi, li+1, ^uint64(0))
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("entry %d = %v, want %v", fi+uint64(i), got[i], want[i])
		}
	}
}

// A leader (or any node) snapshots its state machine and compacts: the
// snapshot survives a restart, and the log restarts after it.
func TestCreateSnapshotCompactAndRecover(t *testing.T) {
	dir := t.TempDir()
	var synced []string
	opts := Options{SegmentSize: 400, OnSync: func(p string) { synced = append(synced, p) }}
	w := mustOpen(t, dir, opts)
	if err := w.SaveSync(&raftpb.HardState{Term: 2, Commit: 30}, append(ents(1, 1, 20), ents(2, 21, 40)...)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.CreateSnapshot(41, testCS, nil); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("snapshot past the end: %v", err)
	}
	synced = nil
	snap, err := w.CreateSnapshot(25, testCS, []byte("state at 25"))
	if err != nil {
		t.Fatal(err)
	}
	if snap.Metadata.Index != 25 || snap.Metadata.Term != 2 {
		t.Fatalf("snapshot metadata %v", snap.Metadata)
	}
	// Atomic and durable: the temporary file and the directory are synced.
	if len(synced) != 2 || !strings.HasSuffix(synced[0], snapTmpExt) || synced[1] != dir {
		t.Fatalf("fsyncs %v, want the temporary snapshot file and then the directory", synced)
	}
	if _, err := w.CreateSnapshot(20, testCS, nil); !errors.Is(err, core.ErrSnapOutOfDate) {
		t.Fatalf("older snapshot: %v", err)
	}
	if err := w.Compact(25); err != nil {
		t.Fatal(err)
	}
	// A newer snapshot replaces the older file.
	if _, err := w.CreateSnapshot(30, testCS, []byte("state at 30")); err != nil {
		t.Fatal(err)
	}
	if files := snapFiles(t, dir); len(files) != 1 || files[0] != snapName(2, 30) {
		t.Fatalf("snapshot files %v, want only the newest", files)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = mustOpen(t, dir, opts)
	defer w.Close()
	got, _ := w.Snapshot()
	if got.Metadata.Index != 30 || got.Metadata.Term != 2 || string(got.Data) != "state at 30" ||
		!proto.Equal(got.Metadata.ConfState, testCS) {
		t.Fatalf("recovered snapshot %v", got)
	}
	checkRange(t, w, 26, ents(2, 26, 40)) // the compaction point stays where Compact put it
	// The core restarts from it.
	n, err := core.NewRawNode(&core.Config{ID: 1, Storage: w})
	if err != nil {
		t.Fatal(err)
	}
	if s := n.Status(); s.Applied != 30 || s.Commit != 30 || !slices.Equal(s.Config.Voters, testCS.Voters) {
		t.Fatalf("restarted node %+v", s)
	}
}

// A follower installs a snapshot from its leader: the whole log is replaced,
// older segments go, and the state survives a restart.
func TestApplySnapshotReplacesLog(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{SegmentSize: 300})
	if err := w.SaveSync(&raftpb.HardState{Term: 1, Commit: 10}, ents(1, 1, 20)); err != nil {
		t.Fatal(err)
	}
	snap := &raftpb.Snapshot{Data: []byte("leader state"), Metadata: &raftpb.SnapshotMetadata{Index: 50, Term: 3, ConfState: testCS}}
	if err := w.ApplySnapshot(snap); err != nil {
		t.Fatal(err)
	}
	checkRange(t, w, 51, nil)
	if tm, err := w.Term(50); err != nil || tm != 3 {
		t.Fatalf("Term(50) = %d, %v", tm, err)
	}
	if segs, _ := listSegments(dir); len(segs) != 1 {
		t.Fatalf("segments %v, want one (the old ones removed)", segs)
	}
	if err := w.ApplySnapshot(snap); !errors.Is(err, core.ErrSnapOutOfDate) {
		t.Fatalf("same snapshot again: %v", err)
	}
	if err := w.SaveSync(&raftpb.HardState{Term: 3, Commit: 52}, ents(3, 51, 55)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = mustOpen(t, dir, Options{SegmentSize: 300})
	defer w.Close()
	checkRange(t, w, 51, ents(3, 51, 55))
	if got, _ := w.Snapshot(); !proto.Equal(got, snap) {
		t.Fatalf("recovered snapshot %v", got)
	}
	if hs := w.HardState(); hs.Commit != 52 || hs.Term != 3 {
		t.Fatalf("hard state %v", hs)
	}
}

// A crash between writing a snapshot file and resetting (or compacting) the
// log leaves a snapshot ahead of the log. Open reconciles them as
// ApplySnapshot would have, and writes the outcome down, so that entries
// appended afterwards replay correctly.
func TestRecoverSnapshotAheadOfLog(t *testing.T) {
	for _, tt := range []struct {
		name      string
		snapTerm  uint64
		wantFirst uint64
		wantLog   []*raftpb.Entry
	}{
		// The log holds the snapshot's last entry: it stays as it is.
		{"matching", 1, 1, ents(1, 1, 20)},
		// The log diverges at the snapshot's index: drop it all.
		{"conflicting", 2, 16, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w := mustOpen(t, dir, Options{SegmentSize: 300})
			if err := w.SaveSync(&raftpb.HardState{Term: 1, Commit: 5}, ents(1, 1, 20)); err != nil {
				t.Fatal(err)
			}
			// The snapshot file is written and then the node dies.
			w.mu.Lock()
			err := w.writeSnapshot(&raftpb.Snapshot{Data: []byte("s"), Metadata: &raftpb.SnapshotMetadata{Index: 15, Term: tt.snapTerm, ConfState: testCS}})
			w.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			w.Close()
			w = mustOpen(t, dir, Options{SegmentSize: 300})
			checkRange(t, w, tt.wantFirst, tt.wantLog)
			last, _ := w.LastIndex()
			more := ents(2, last+1, last+3)
			if err := w.SaveSync(nil, more); err != nil {
				t.Fatal(err)
			}
			w.Close()
			w = mustOpen(t, dir, Options{SegmentSize: 300})
			defer w.Close()
			checkRange(t, w, tt.wantFirst, append(slices.Clone(tt.wantLog), more...))
		})
	}
}

// A snapshot file is written under a temporary name and renamed when
// durable: a leftover temporary file is an unfinished write and is removed;
// damage to a renamed file is corruption.
func TestSnapshotFileDamage(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{})
	if err := w.SaveSync(nil, ents(1, 1, 5)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.CreateSnapshot(3, testCS, []byte("three")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	tmp := filepath.Join(dir, snapName(1, 4)+".tmp")
	if err := os.WriteFile(tmp, []byte("half a snapshot"), 0o644); err != nil {
		t.Fatal(err)
	}
	w = mustOpen(t, dir, Options{})
	if got, _ := w.Snapshot(); got.Metadata.Index != 3 {
		t.Fatalf("snapshot %v", got.Metadata)
	}
	w.Close()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
	path := filepath.Join(dir, snapName(1, 3))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, damage := range []func([]byte) []byte{
		func(b []byte) []byte { b[len(b)-1] ^= 1; return b },            // payload bit flip
		func(b []byte) []byte { return b[:len(b)-2] },                   // truncated
		func(b []byte) []byte { b[0] = 'X'; return b },                  // bad magic
		func(b []byte) []byte { b[8] ^= 0xff; return b },                // bad length
		func(b []byte) []byte { return append(b, 0) },                   // trailing byte
		func(b []byte) []byte { return bytes.Repeat([]byte{0xff}, 64) }, // garbage
	} {
		if err := os.WriteFile(path, damage(slices.Clone(data)), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open with a damaged snapshot: %v, want ErrCorrupt", err)
		}
	}
	// A file named for another index than it holds is corruption too.
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, filepath.Join(dir, snapName(1, 4))); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a misnamed snapshot: %v, want ErrCorrupt", err)
	}
}

// The snapshot alone survives when every segment is gone (a follower that
// installed a snapshot and wrote nothing after it, its segments removed).
func TestRecoverFromSnapshotOnly(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{})
	if err := w.ApplySnapshot(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: 7, Term: 2, ConfState: testCS}}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	segs, _ := listSegments(dir)
	for _, s := range segs {
		if err := os.Remove(filepath.Join(dir, s)); err != nil {
			t.Fatal(err)
		}
	}
	w = mustOpen(t, dir, Options{})
	defer w.Close()
	checkRange(t, w, 8, nil)
	if tm, _ := w.Term(7); tm != 2 {
		t.Fatalf("Term(7) = %d", tm)
	}
	if err := w.SaveSync(nil, ents(2, 8, 9)); err != nil {
		t.Fatal(err)
	}
	checkRange(t, w, 8, ents(2, 8, 9))
}

// Leading segments removed without a compaction record (as a crash in the
// middle of removing them can leave, or an operator) leave the term of the
// entry before the first one unknown; a snapshot that covers it supplies
// it, and the log is compacted up to the snapshot.
func TestRecoverBaseFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{SegmentSize: 200})
	for i := uint64(1); i <= 30; i += 2 {
		if err := w.SaveSync(nil, ents(1+i/10, i, i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.CreateSnapshot(20, testCS, []byte("s")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	segs, _ := listSegments(dir)
	var removed uint64
	for _, name := range segs {
		_, first, _ := parseSegmentName(name)
		if first > 1 && first <= 15 {
			break
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		removed++
	}
	if removed == 0 {
		t.Fatalf("segments %v: nothing removed", segs)
	}
	w = mustOpen(t, dir, Options{SegmentSize: 200})
	defer w.Close()
	first, _ := w.FirstIndex()
	if first != 21 {
		t.Fatalf("first index %d, want 21 (after the snapshot)", first)
	}
	// Entries were saved in pairs (i, i+1) for odd i, in term 1+i/10.
	termOf := func(j uint64) uint64 {
		if j%2 == 0 {
			j--
		}
		return 1 + j/10
	}
	if tm, err := w.Term(20); err != nil || tm != termOf(20) {
		t.Fatalf("Term(20) = %d, %v; want the snapshot's term %d", tm, err, termOf(20))
	}
	var want []*raftpb.Entry
	for i := uint64(21); i <= 30; i++ {
		want = append(want, ent(termOf(i), i))
	}
	checkRange(t, w, 21, want)
}
