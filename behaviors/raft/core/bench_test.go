package core

import (
	"fmt"
	"testing"
)

// BenchmarkCommit measures the core alone: proposals on a leader committed
// and applied by a cluster whose network and storage are in memory and
// synchronous, so the numbers bound what a shell can reach.
func BenchmarkCommit(b *testing.B) {
	for _, size := range []int{1, 3, 5} {
		for _, batch := range []int{1, 64} {
			b.Run(fmt.Sprintf("nodes=%d/batch=%d", size, batch), func(b *testing.B) {
				nw := newCluster(b, size)
				nw.campaign(1)
				leader := nw.nodes[1]
				data := make([]byte, 128)
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i += batch {
					for range batch {
						if err := leader.rn.Propose(data); err != nil {
							b.Fatal(err)
						}
					}
					nw.settle()
				}
				b.StopTimer()
				if s := leader.status(); s.Commit < uint64(b.N) {
					b.Fatalf("commit %d after %d proposals", s.Commit, b.N)
				}
				for _, n := range nw.nodes {
					n.applied = nil
				}
			})
		}
	}
}
