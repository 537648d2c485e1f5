package query

import "testing"

// TestGroupTableLeavesPackedCodes: a key column with more than 65535
// distinct values moves the table to the general path mid-batch; groups
// found before and after must stay the same.
func TestGroupTableLeavesPackedCodes(t *testing.T) {
	g := newGroupTable([]Type{Int64, String})
	const n = 70000
	a := &vec{t: Int64, n: 2 * n, i: make([]int64, 2*n)}
	b := &vec{t: String, n: 2 * n, s: make([]string, 2*n)}
	for k := 0; k < 2*n; k++ {
		a.i[k] = int64(k % n)
		b.s[k] = []string{"x", "y"}[k%n%2]
	}
	ids := make([]int32, 2*n)
	g.ids([]*vec{a, b}, 2*n, ids)
	if g.fast {
		t.Fatal("still on the packed-code path")
	}
	if g.n != n {
		t.Fatalf("%d groups, want %d", g.n, n)
	}
	for k := 0; k < n; k++ {
		if ids[k] != ids[k+n] {
			t.Fatalf("row %d in group %d, row %d (same key) in group %d", k, ids[k], k+n, ids[k+n])
		}
	}
	// A second call finds the same groups.
	ids2 := make([]int32, 2*n)
	g.ids([]*vec{a, b}, 2*n, ids2)
	for k := range ids {
		if ids[k] != ids2[k] {
			t.Fatalf("row %d: group %d, then %d", k, ids[k], ids2[k])
		}
	}
}
