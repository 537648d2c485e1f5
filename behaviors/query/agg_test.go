package query

import (
	"fmt"
	"testing"
)

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

// TestGroupTableCodedKeys: dictionary-coded keys take the table path;
// batches bring new dictionaries (so the same string has different codes)
// and, over many batches, more distinct values than packed codes hold.
// Every row must land in the group of its key, selected rows only.
func TestGroupTableCodedKeys(t *testing.T) {
	g := newGroupTable([]Type{String, String})
	want := map[[2]string]int32{}
	for batchNo := 0; batchNo < 55; batchNo++ {
		const n = 3000
		d0 := make([]string, 1300)
		for j := range d0 {
			d0[j] = fmt.Sprintf("a%d", batchNo*1250+j) // overlapping batches
		}
		d1 := []string{"y", "x"}
		if batchNo%2 == 1 {
			d1 = []string{"x", "y", "z"}
		}
		a := &vec{t: String, n: n, codes: make([]int32, n), dict: d0}
		b := &vec{t: String, n: n, codes: make([]int32, n), dict: d1}
		var sel []int32
		for k := 0; k < n; k++ {
			a.codes[k] = int32((k * 7) % len(d0))
			b.codes[k] = int32(k % len(d1))
			if k%3 != 0 {
				sel = append(sel, int32(k))
			}
		}
		ids := make([]int32, len(sel))
		g.idsSel([]*vec{a, b}, len(sel), sel, ids)
		for q, r := range sel {
			key := [2]string{d0[a.codes[r]], d1[b.codes[r]]}
			if id, ok := want[key]; ok {
				if id != ids[q] {
					t.Fatalf("batch %d row %d: key %v in group %d, earlier in %d", batchNo, r, key, ids[q], id)
				}
				continue
			}
			want[key] = ids[q]
		}
	}
	if g.fast {
		t.Fatal("still on the packed-code path")
	}
	if g.n != len(want) {
		t.Fatalf("%d groups, want %d", g.n, len(want))
	}
	for key, id := range want {
		if g.keys[0].s[id] != key[0] || g.keys[1].s[id] != key[1] {
			t.Fatalf("group %d holds %s %s, want %v", id, g.keys[0].s[id], g.keys[1].s[id], key)
		}
	}
}
