package core

import "testing"

func TestSmokeElectAndCommit(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		nw := newCluster(t, n)
		nw.campaign(1)
		if s := nw.nodes[1].status(); s.Role != Leader {
			t.Fatalf("n=%d: node 1 is %s, want leader", n, s.Role)
		}
		if err := nw.propose(1, "x"); err != nil {
			t.Fatal(err)
		}
		for _, id := range nw.ids {
			a := nw.nodes[id].applied
			if len(a) != 2 || string(a[1].Data) != "x" {
				t.Fatalf("n=%d: node %d applied %v", n, id, a)
			}
		}
	}
}
