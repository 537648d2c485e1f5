package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func collect(t *testing.T, dir string, opts Options) (*Journal, [][]byte) {
	t.Helper()
	var got [][]byte
	j, err := Open(dir, opts, func(p []byte) error {
		got = append(got, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return j, got
}

func rec(i int) []byte { return []byte(fmt.Sprintf("record-%04d", i)) }

func TestAppendReplayAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	j, got := collect(t, dir, Options{SegmentSize: 200})
	if len(got) != 0 {
		t.Fatalf("fresh journal replayed %d records", len(got))
	}
	for i := range 50 {
		if err := j.AppendSync(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.AppendSync(rec(99)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
	segs, _ := listSegments(dir)
	if len(segs) < 5 {
		t.Fatalf("%d segments, want several of at most 200 bytes", len(segs))
	}
	j, got = collect(t, dir, Options{SegmentSize: 200})
	defer j.Close()
	if len(got) != 50 {
		t.Fatalf("replayed %d records, want 50", len(got))
	}
	for i, p := range got {
		if !bytes.Equal(p, rec(i)) {
			t.Fatalf("record %d = %q, want %q", i, p, rec(i))
		}
	}
	// Appends continue after the replayed records.
	if err := j.AppendSync(rec(50)); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j, got = collect(t, dir, Options{SegmentSize: 200})
	j.Close()
	if len(got) != 51 || !bytes.Equal(got[50], rec(50)) {
		t.Fatalf("after reopen: %d records", len(got))
	}
}

func TestRejectsBadRecordSizes(t *testing.T) {
	j, _ := collect(t, t.TempDir(), Options{})
	defer j.Close()
	if err := j.AppendSync(nil); err == nil {
		t.Fatal("empty record accepted")
	}
	if err := j.AppendSync(make([]byte, MaxRecordSize+1)); err == nil {
		t.Fatal("oversized record accepted")
	}
}

// writeRecords makes a journal with n records and returns its only segment.
func writeRecords(t *testing.T, dir string, n int) string {
	t.Helper()
	j, _ := collect(t, dir, Options{})
	for i := range n {
		if err := j.AppendSync(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	segs, _ := listSegments(dir)
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	return segs[0]
}

func TestTornTailIsCut(t *testing.T) {
	recSize := int64(headerSize + len(rec(0)))
	cases := map[string]func(path string){
		"partial header": func(p string) { appendBytes(t, p, []byte{9, 0, 0}) },
		"partial payload": func(p string) {
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()-3)
		},
		"bad checksum": func(p string) { flipByte(t, p, -1) },
		"zero tail":    func(p string) { appendBytes(t, p, make([]byte, 64)) },
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeRecords(t, dir, 10)
			damage(path)
			j, got := collect(t, dir, Options{})
			r := j.Recovery()
			want := 10
			if name == "partial payload" || name == "bad checksum" {
				want = 9
			}
			if len(got) != want {
				t.Fatalf("replayed %d records, want %d", len(got), want)
			}
			if r.TruncatedFile != path || r.TruncatedBytes <= 0 {
				t.Fatalf("recovery %+v: want a cut of %s", r, path)
			}
			st, _ := os.Stat(path)
			if st.Size() != int64(want)*recSize {
				t.Fatalf("segment is %d bytes after the cut, want %d", st.Size(), int64(want)*recSize)
			}
			if err := j.AppendSync(rec(want)); err != nil {
				t.Fatal(err)
			}
			j.Close()
			j, got = collect(t, dir, Options{})
			j.Close()
			if len(got) != want+1 || j.Recovery().TruncatedBytes != 0 {
				t.Fatalf("after the cut and an append: %d records, recovery %+v", len(got), j.Recovery())
			}
		})
	}
}

func TestCorruptionInTheMiddleIsAnError(t *testing.T) {
	dir := t.TempDir()
	path := writeRecords(t, dir, 10)
	recSize := headerSize + len(rec(0))
	flipByte(t, path, 3*recSize+headerSize+2) // payload of record 3
	_, err := Open(dir, Options{}, nil)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want ErrCorrupt", err)
	}
	if want := fmt.Sprintf("offset %d", 3*recSize); !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Fatalf("error %q does not name %s", err, want)
	}
	// The file is left alone.
	st, _ := os.Stat(path)
	if st.Size() != int64(10*recSize) {
		t.Fatalf("corrupt segment was modified: %d bytes", st.Size())
	}
}

func TestCorruptionInAnEarlierSegmentIsAnError(t *testing.T) {
	dir := t.TempDir()
	j, _ := collect(t, dir, Options{SegmentSize: 60})
	for i := range 10 {
		if err := j.AppendSync(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	segs, _ := listSegments(dir)
	if len(segs) < 2 {
		t.Fatalf("%d segments", len(segs))
	}
	flipByte(t, segs[0], -1)
	if _, err := Open(dir, Options{}, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want ErrCorrupt", err)
	}
}

func TestReplayErrorAbortsOpen(t *testing.T) {
	dir := t.TempDir()
	writeRecords(t, dir, 3)
	boom := errors.New("boom")
	if _, err := Open(dir, Options{}, func([]byte) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Open: %v, want the replay error", err)
	}
}

// TestGroupCommitSharesFsyncs: concurrent appenders share fsyncs with group
// commit, and pay one each without it; every record is durable either way.
func TestGroupCommitSharesFsyncs(t *testing.T) {
	const writers, each = 32, 20
	for _, noGroup := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoGroupCommit=%v", noGroup), func(t *testing.T) {
			dir := t.TempDir()
			j, _ := collect(t, dir, Options{NoGroupCommit: noGroup})
			var wg sync.WaitGroup
			errs := make(chan error, writers*each)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						errs <- j.AppendSync([]byte(fmt.Sprintf("w%d-%d", w, i)))
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			st := j.Stats()
			j.Close()
			if st.Appends != writers*each {
				t.Fatalf("stats %+v", st)
			}
			if noGroup && st.Syncs != st.Appends {
				t.Fatalf("without group commit: %d syncs for %d appends", st.Syncs, st.Appends)
			}
			if !noGroup && st.Syncs >= st.Appends {
				t.Fatalf("with group commit: %d syncs for %d appends, want fewer", st.Syncs, st.Appends)
			}
			t.Logf("%d appends, %d fsyncs", st.Appends, st.Syncs)
			j, got := collect(t, dir, Options{})
			j.Close()
			if len(got) != writers*each {
				t.Fatalf("replayed %d of %d", len(got), writers*each)
			}
		})
	}
}

func TestIgnoresForeignFiles(t *testing.T) {
	dir := t.TempDir()
	writeRecords(t, dir, 2)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(dir, "0000000000000000.log"), []byte("bad"), 0o644)
	j, got := collect(t, dir, Options{})
	j.Close()
	if len(got) != 2 {
		t.Fatalf("replayed %d records", len(got))
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// flipByte inverts one byte; a negative offset counts from the end.
func flipByte(t *testing.T, path string, off int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += len(data)
	}
	data[off] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
