package wal

import (
	"fmt"
	"testing"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
)

// BenchmarkSaveSync saves n entries of 128 bytes and syncs once per
// iteration: the fsync is shared by the n entries (group commit).
func BenchmarkSaveSync(b *testing.B) {
	for _, n := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			fsyncs := 0
			w, err := Open(b.TempDir(), Options{OnSync: func(string) { fsyncs++ }})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			data := make([]byte, 128)
			hs := &raftpb.HardState{Term: 1}
			var next uint64 = 1
			b.SetBytes(int64(128 * n))
			b.ReportAllocs()
			fsyncs = 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				batch := make([]*raftpb.Entry, n)
				for j := range batch {
					batch[j] = &raftpb.Entry{Term: 1, Index: next, Data: data}
					next++
				}
				if err := w.Save(hs, batch); err != nil {
					b.Fatal(err)
				}
				if err := w.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			total := float64(b.N * n)
			b.ReportMetric(total/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(float64(fsyncs)/total, "fsyncs/entry")
		})
	}
}
