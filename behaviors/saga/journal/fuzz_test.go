package journal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen: arbitrary segment contents never panic Open; either Open
// succeeds (possibly cutting a torn tail) and the journal reopens with the
// same records, or it fails with ErrCorrupt.
func FuzzOpen(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{5, 0, 0, 0, 0, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		n := 0
		j, err := Open(dir, Options{}, func([]byte) error { n++; return nil })
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want nil or ErrCorrupt", err)
			}
			return
		}
		j.Close()
		m := 0
		j, err = Open(dir, Options{}, func([]byte) error { m++; return nil })
		if err != nil {
			t.Fatalf("reopen after recovery: %v", err)
		}
		j.Close()
		if m != n || j.Recovery().TruncatedBytes != 0 {
			t.Fatalf("reopen replayed %d records (first open %d), recovery %+v", m, n, j.Recovery())
		}
	})
}
