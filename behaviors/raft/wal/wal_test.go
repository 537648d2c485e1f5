package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/distributed-go/distributed/behaviors/raft/core"
	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"google.golang.org/protobuf/proto"
)

func ent(term, index uint64) *raftpb.Entry {
	return &raftpb.Entry{Term: term, Index: index, Data: []byte(fmt.Sprintf("entry %d term %d", index, term))}
}

func ents(term, lo, hi uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, ent(term, i))
	}
	return out
}

func mustOpen(t testing.TB, dir string, opts Options) *WAL {
	t.Helper()
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w
}

// checkLog verifies that w holds exactly want (index i at want[i-1]).
func checkLog(t *testing.T, w *WAL, want []*raftpb.Entry) {
	t.Helper()
	last, _ := w.LastIndex()
	if last != uint64(len(want)) {
		t.Fatalf("LastIndex = %d, want %d", last, len(want))
	}
	if len(want) == 0 {
		return
	}
	got, err := w.Entries(1, last+1, ^uint64(0))
	if err != nil {
		t.Fatalf("Entries: %v", err)
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("entry %d = %v, want %v", i+1, got[i], want[i])
		}
		term, err := w.Term(uint64(i + 1))
		if err != nil || term != want[i].Term {
			t.Fatalf("Term(%d) = %d, %v; want %d", i+1, term, err, want[i].Term)
		}
	}
}

func onlySegment(t *testing.T, dir string) string {
	t.Helper()
	names, err := listSegments(dir)
	if err != nil || len(names) != 1 {
		t.Fatalf("segments = %v, %v; want one", names, err)
	}
	return filepath.Join(dir, names[0])
}

func TestRoundTripAndReopen(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{})
	hs := &raftpb.HardState{Term: 3, Vote: 2, Commit: 5}
	want := ents(3, 1, 10)
	if err := w.SaveSync(hs, want); err != nil {
		t.Fatal(err)
	}
	checkLog(t, w, want)
	if !proto.Equal(w.HardState(), hs) {
		t.Fatalf("HardState = %v", w.HardState())
	}
	if fi, _ := w.FirstIndex(); fi != 1 {
		t.Fatalf("FirstIndex = %d", fi)
	}
	if term, err := w.Term(0); term != 0 || err != nil {
		t.Fatalf("Term(0) = %d, %v", term, err)
	}
	if _, err := w.Term(11); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Term(11) err = %v", err)
	}
	if _, err := w.Entries(5, 12, ^uint64(0)); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Entries past end err = %v", err)
	}
	if got, _ := w.Entries(2, 8, 0); len(got) != 1 || got[0].Index != 2 {
		t.Fatalf("Entries with maxSize 0 = %v", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	w = mustOpen(t, dir, Options{})
	defer w.Close()
	checkLog(t, w, want)
	st, _ := w.InitialState()
	if !proto.Equal(st, hs) {
		t.Fatalf("recovered HardState = %v, want %v", st, hs)
	}
	if r := w.Recovery(); r.DroppedBytes != 0 || r.Records != 11 || r.Segments != 1 {
		t.Fatalf("Recovery = %+v", r)
	}
	// Appending after reopen continues the same log.
	more := ents(4, 11, 12)
	if err := w.SaveSync(nil, more); err != nil {
		t.Fatal(err)
	}
	checkLog(t, w, append(want, more...))
}

func TestSaveRejectsBadIndices(t *testing.T) {
	w := mustOpen(t, t.TempDir(), Options{})
	defer w.Close()
	if err := w.Save(nil, ents(1, 2, 3)); err == nil {
		t.Fatal("gap accepted")
	}
	if err := w.Save(nil, []*raftpb.Entry{ent(1, 0)}); err == nil {
		t.Fatal("index 0 accepted")
	}
	if err := w.Save(nil, []*raftpb.Entry{ent(1, 1), ent(1, 3)}); err == nil {
		t.Fatal("non-contiguous entries accepted")
	}
	if last, _ := w.LastIndex(); last != 0 {
		t.Fatalf("LastIndex = %d after rejected saves", last)
	}
}

func TestConflictTruncatesSuffix(t *testing.T) {
	dir := t.TempDir()
	for _, seg := range []int64{0, 200} {
		t.Run(fmt.Sprintf("segment=%d", seg), func(t *testing.T) {
			dir := filepath.Join(dir, fmt.Sprint(seg))
			w := mustOpen(t, dir, Options{SegmentSize: seg})
			if err := w.SaveSync(&raftpb.HardState{Term: 1}, ents(1, 1, 10)); err != nil {
				t.Fatal(err)
			}
			// A new leader overwrites from index 6.
			if err := w.SaveSync(&raftpb.HardState{Term: 2}, ents(2, 6, 7)); err != nil {
				t.Fatal(err)
			}
			want := append(ents(1, 1, 5), ents(2, 6, 7)...)
			checkLog(t, w, want)
			if _, err := w.Term(8); !errors.Is(err, core.ErrUnavailable) {
				t.Fatalf("Term(8) err = %v", err)
			}
			// And again from index 3, then extend.
			if err := w.SaveSync(nil, ents(3, 3, 4)); err != nil {
				t.Fatal(err)
			}
			if err := w.SaveSync(nil, ents(3, 5, 9)); err != nil {
				t.Fatal(err)
			}
			want = append(ents(1, 1, 2), ents(3, 3, 9)...)
			checkLog(t, w, want)
			w.Close()
			w = mustOpen(t, dir, Options{SegmentSize: seg})
			defer w.Close()
			checkLog(t, w, want)
			if hs := w.HardState(); hs.Term != 2 {
				t.Fatalf("HardState = %v", hs)
			}
		})
	}
}

// writeLog writes n entries, one record each, and the file offsets where
// each record starts plus the file size.
func writeLog(t *testing.T, dir string, n uint64) (path string, offs []int64, size int64) {
	t.Helper()
	w := mustOpen(t, dir, Options{})
	for i := uint64(1); i <= n; i++ {
		offs = append(offs, w.fsize)
		if err := w.Save(nil, []*raftpb.Entry{ent(1, i)}); err != nil {
			t.Fatal(err)
		}
	}
	size = w.fsize
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return onlySegment(t, dir), offs, size
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestTornTailEveryOffset(t *testing.T) {
	src := t.TempDir()
	path, offs, size := writeLog(t, src, 5)
	lastStart := offs[len(offs)-1]
	for cut := lastStart; cut < size; cut++ {
		dir := copyDir(t, src)
		p := filepath.Join(dir, filepath.Base(path))
		if err := os.Truncate(p, cut); err != nil {
			t.Fatal(err)
		}
		w, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("cut at %d: Open: %v", cut, err)
		}
		checkLog(t, w, ents(1, 1, 4))
		r := w.Recovery()
		if r.DroppedBytes != cut-lastStart || (cut > lastStart && r.TruncatedAt != lastStart) {
			t.Fatalf("cut at %d: Recovery = %+v", cut, r)
		}
		// The log is usable: the lost entry can be written again.
		if err := w.SaveSync(nil, []*raftpb.Entry{ent(2, 5)}); err != nil {
			t.Fatal(err)
		}
		w.Close()
		w = mustOpen(t, dir, Options{})
		checkLog(t, w, append(ents(1, 1, 4), ent(2, 5)))
		if r := w.Recovery(); r.DroppedBytes != 0 {
			t.Fatalf("cut at %d: second recovery dropped %d bytes", cut, r.DroppedBytes)
		}
		w.Close()
	}
}

func flipBit(t *testing.T, path string, off int64, bit uint) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 1 << bit
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBitFlipInLastRecordTruncated(t *testing.T) {
	src := t.TempDir()
	path, offs, size := writeLog(t, src, 5)
	lastStart := offs[len(offs)-1]
	for off := lastStart; off < size; off++ {
		dir := copyDir(t, src)
		flipBit(t, filepath.Join(dir, filepath.Base(path)), off, uint(off%8))
		w, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("flip at %d: Open: %v", off, err)
		}
		checkLog(t, w, ents(1, 1, 4))
		if r := w.Recovery(); r.DroppedBytes != size-lastStart || r.TruncatedAt != lastStart {
			t.Fatalf("flip at %d: Recovery = %+v", off, r)
		}
		w.Close()
	}
}

func TestBitFlipInMiddleRecordIsError(t *testing.T) {
	src := t.TempDir()
	path, offs, _ := writeLog(t, src, 5)
	for rec := 0; rec < 4; rec++ {
		for off := offs[rec]; off < offs[rec+1]; off++ {
			dir := copyDir(t, src)
			p := filepath.Join(dir, filepath.Base(path))
			flipBit(t, p, off, uint(off%8))
			w, err := Open(dir, Options{})
			if err == nil {
				w.Close()
				t.Fatalf("flip at %d (record %d): Open succeeded", off, rec+1)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip at %d: err = %v, want ErrCorrupt", off, err)
			}
			want := fmt.Sprintf("%s at offset %d", p, offs[rec])
			if !containsStr(err.Error(), want) {
				t.Fatalf("flip at %d: err = %q, want it to name %q", off, err, want)
			}
		}
	}
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestGarbageNeverPanics(t *testing.T) {
	cases := map[string][]byte{
		"huge length":  {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1},
		"zeros":        make([]byte, 100),
		"bad type":     {1, 0, 0, 0, 0, 0, 0, 0, 9, 0},
		"short header": {1, 2, 3},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, segmentName(0, 1))
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			w, err := Open(dir, Options{})
			if err != nil {
				return // an error is fine; a panic is not
			}
			checkLog(t, w, nil)
			w.Close()
		})
	}
}

func TestManySegments(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 256}
	w := mustOpen(t, dir, opts)
	var want []*raftpb.Entry
	for i := uint64(1); i <= 200; i += 5 {
		batch := ents(1, i, i+4)
		want = append(want, batch...)
		if err := w.SaveSync(&raftpb.HardState{Term: 1, Commit: i}, batch); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	names, _ := listSegments(dir)
	if len(names) < 20 {
		t.Fatalf("only %d segments with a 256-byte segment size", len(names))
	}
	for _, n := range names {
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 256 {
			t.Fatalf("segment %s has %d bytes", n, st.Size())
		}
	}
	w = mustOpen(t, dir, opts)
	checkLog(t, w, want)
	if hs := w.HardState(); hs.Commit != 196 {
		t.Fatalf("HardState = %v", hs)
	}
	if r := w.Recovery(); r.Segments != len(names) {
		t.Fatalf("Recovery = %+v", r)
	}
	w.Close()

	// Corruption in a segment other than the last is an error, even at
	// its tail.
	first := filepath.Join(dir, names[0])
	st, _ := os.Stat(first)
	if err := os.Truncate(first, st.Size()-1); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, opts); !errors.Is(err, ErrCorrupt) || !containsStr(err.Error(), first) {
		t.Fatalf("Open with a torn early segment: %v", err)
	}
}

func TestFsyncCount(t *testing.T) {
	dir := t.TempDir()
	var files, dirs int
	opts := Options{SegmentSize: 1 << 20, OnSync: func(p string) {
		if p == dir {
			dirs++
		} else {
			files++
		}
	}}
	w := mustOpen(t, dir, opts)
	if files != 0 || dirs != 1 {
		t.Fatalf("after Open of a new log: %d file, %d dir fsyncs; want 0, 1", files, dirs)
	}
	files, dirs = 0, 0
	// Group commit: 10 Saves, one Sync, one fsync.
	for i := uint64(1); i <= 10; i++ {
		if err := w.Save(&raftpb.HardState{Term: 1, Commit: i}, []*raftpb.Entry{ent(1, i)}); err != nil {
			t.Fatal(err)
		}
	}
	if files != 0 {
		t.Fatalf("Save fsynced %d times", files)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if files != 1 || dirs != 0 {
		t.Fatalf("one Sync: %d file, %d dir fsyncs; want 1, 0", files, dirs)
	}
	// Sync with nothing new does nothing.
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if files != 1 {
		t.Fatalf("idle Sync fsynced: %d", files)
	}
	w.Close()

	// Rolling to a new segment syncs the old one before leaving it and the
	// directory at the next Sync.
	dir = t.TempDir()
	files, dirs = 0, 0
	opts.SegmentSize = 100
	w = mustOpen(t, dir, opts)
	defer w.Close()
	files, dirs = 0, 0
	if err := w.SaveSync(nil, ents(1, 1, 2)); err != nil { // ~40 bytes: fits
		t.Fatal(err)
	}
	if files != 1 || dirs != 0 {
		t.Fatalf("first SaveSync: %d file, %d dir fsyncs", files, dirs)
	}
	files, dirs = 0, 0
	if err := w.SaveSync(nil, ents(1, 3, 6)); err != nil { // crosses 100 bytes
		t.Fatal(err)
	}
	if files != 2 || dirs != 1 {
		t.Fatalf("SaveSync across a segment boundary: %d file, %d dir fsyncs; want 2, 1", files, dirs)
	}
}

func TestCoreStorageContract(t *testing.T) {
	var s core.Storage = mustOpen(t, t.TempDir(), Options{})
	defer s.(*WAL).Close()
	if last, _ := s.LastIndex(); last != 0 {
		t.Fatalf("LastIndex = %d", last)
	}
	if got, err := s.Entries(1, 1, 100); err != nil || len(got) != 0 {
		t.Fatalf("Entries(1,1) = %v, %v", got, err)
	}
	if _, err := s.Entries(0, 1, 100); !errors.Is(err, core.ErrCompacted) {
		t.Fatalf("Entries(0,1) err = %v", err)
	}
	if err := s.(*WAL).SaveSync(nil, ents(1, 1, 3)); err != nil {
		t.Fatal(err)
	}
	// maxSize: each entry counts len(Data)+24.
	one := uint64(len(ent(1, 1).Data) + 24)
	if got, _ := s.Entries(1, 4, 2*one); len(got) != 2 {
		t.Fatalf("Entries with room for two = %d entries", len(got))
	}
}

func TestWriteFailureIsSticky(t *testing.T) {
	w := mustOpen(t, t.TempDir(), Options{})
	if err := w.SaveSync(nil, ents(1, 1, 3)); err != nil {
		t.Fatal(err)
	}
	w.f.Close() // make the next write fail
	err := w.Save(nil, ents(1, 4, 4))
	if err == nil || !containsStr(err.Error(), w.fpath) {
		t.Fatalf("Save on a closed file = %v, want an error naming %s", err, w.fpath)
	}
	if err2 := w.Save(nil, ents(1, 4, 4)); err2 != err {
		t.Fatalf("second Save = %v, want the first failure %v", err2, err)
	}
	if err2 := w.Sync(); err2 != err {
		t.Fatalf("Sync = %v, want the first failure", err2)
	}
	if last, _ := w.LastIndex(); last != 3 {
		t.Fatalf("LastIndex = %d", last)
	}
	w.Close()
}

func TestConcurrentReadersAndWriter(t *testing.T) {
	w := mustOpen(t, t.TempDir(), Options{SegmentSize: 1024})
	defer w.Close()
	done := make(chan struct{})
	errc := make(chan error, 2)
	for r := 0; r < 2; r++ {
		go func() {
			for {
				select {
				case <-done:
					errc <- nil
					return
				default:
				}
				last, _ := w.LastIndex()
				if last == 0 {
					continue
				}
				got, err := w.Entries(1, last+1, ^uint64(0))
				if err != nil {
					errc <- err
					return
				}
				for i, e := range got {
					if e.Index != uint64(i+1) {
						errc <- fmt.Errorf("entry at %d has index %d", i+1, e.Index)
						return
					}
				}
				if _, err := w.Term(last); err != nil {
					errc <- err
					return
				}
				_ = w.HardState()
			}
		}()
	}
	for i := uint64(1); i <= 300; i += 3 {
		if err := w.Save(&raftpb.HardState{Term: 1, Commit: i}, ents(1, i, i+2)); err != nil {
			t.Fatal(err)
		}
		if i%30 == 1 {
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	for r := 0; r < 2; r++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

func TestSegmentNamedIndexZeroIsError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, segmentName(0, 0)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
}

// When the hard state saved with a batch of entries is what fills the
// segment, the next segment starts after those entries. Naming it after the
// old last index let a compaction delete the segment that held them, and
// the next Open failed ("compaction at index N after last index M"), as the
// kill -9 test once found. Every batch size, each time compacted to its end
// and reopened.
func TestHardStateRollThenCompactReopens(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 1024}
	w := mustOpen(t, dir, opts)
	next := uint64(1)
	for round := 0; round < 120; round++ {
		n := uint64(1 + round%7)
		if err := w.Save(&raftpb.HardState{Term: 1, Commit: next + n - 1}, ents(1, next, next+n-1)); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		next += n
		if err := w.Compact(next - 1); err != nil {
			t.Fatalf("round %d: Compact(%d): %v", round, next-1, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w = mustOpen(t, dir, opts)
		if last, _ := w.LastIndex(); last != next-1 {
			t.Fatalf("round %d: LastIndex %d after reopen, want %d", round, last, next-1)
		}
	}
	_ = w.Close()
}
