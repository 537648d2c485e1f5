package cluster

// Tests of the global registry and process groups that need at most one
// node, so they run under -race: the replicated table (merge, tombstones,
// epochs, conflicts, order independence), the wire decoder against bad
// input, and the Node API on a single node. The multi-node tests are in
// pg_test.go.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/actor/actorpb"
	"github.com/distributed-go/distributed/cluster/clusterpb"
)

// failer is what the helpers need of a *testing.T or a *rapid.T.
type failer interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// testPID makes a PID of an actor on the node at addr.
func testPID(t failer, addr, name string, inc uint64) *actor.PID {
	t.Helper()
	p, err := actor.PIDFromProto(&actorpb.PID{Address: addr, Id: name + "#" + strconv.FormatUint(inc, 36),
		Name: name, Incarnation: inc})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wire sends a state through the encoder and the decoder.
func wire(t failer, st *clusterpb.GlobalState) []ownerPart {
	t.Helper()
	b, err := encodeGlobalState(st)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := decodeGlobalState(b)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := parseGlobalState(dec)
	if err != nil {
		t.Fatal(err)
	}
	return parts
}

// deliver merges a state into a table through the wire.
func deliver(t failer, tb *globalTable, st *clusterpb.GlobalState) mergeResult {
	t.Helper()
	return tb.merge(wire(t, st))
}

// deltaOf is the broadcast of one record of a table's own.
func deltaOf(tb *globalTable, r *globalRecord) *clusterpb.GlobalState {
	return &clusterpb.GlobalState{Owners: []*clusterpb.OwnerState{{Owner: r.owner, Epoch: tb.epoch,
		Records: []*clusterpb.GlobalRecord{r.toProto()}}}}
}

// fullOf is a table's own records, complete (as in a direct exchange).
func fullOf(tb *globalTable) *clusterpb.GlobalState {
	return &clusterpb.GlobalState{Owners: []*clusterpb.OwnerState{tb.ownerSnapshot(tb.self)}}
}

// view renders what a table answers: every name's winner and every group's
// members.
func view(tb *globalTable) string {
	var b strings.Builder
	for _, name := range tb.names() {
		fmt.Fprintf(&b, "name %s=%s\n", name, tb.winner(name).pid)
	}
	for _, g := range tb.groups() {
		fmt.Fprintf(&b, "group %s=%v\n", g, tb.members(g, false))
	}
	return b.String()
}

// mustRec returns the record of a table operation that must change the
// table (it panics otherwise, which fails the test and rapid's checks).
func mustRec(r *globalRecord, err error) *globalRecord {
	if err != nil || r == nil {
		panic(fmt.Sprintf("record %v, error %v", r, err))
	}
	return r
}

func TestGlobalTableRegisterAndQuery(t *testing.T) {
	a := newGlobalTable("a", 1)
	p1, p2 := testPID(t, "a:1", "x", 1), testPID(t, "a:1", "y", 1)
	mustRec(a.register("svc", p1, 100))
	if r, err := a.register("svc", p1, 101); r != nil || err != nil {
		t.Fatalf("registering the same actor again: %v, %v", r, err)
	}
	if _, err := a.register("svc", p2, 102); !errors.Is(err, ErrGlobalNameTaken) {
		t.Fatalf("taken name: %v", err)
	}
	mustRec(a.register("other", p1, 50)) // the hybrid clock never goes back
	if w := a.winner("other"); w.time <= a.winner("svc").time {
		t.Fatalf("second registration at %d, first at %d", w.time, a.winner("svc").time)
	}
	if got := a.names(); !slices.Equal(got, []string{"other", "svc"}) {
		t.Fatalf("names %v", got)
	}
	if a.join("g", p2) == nil || a.join("g", p2) != nil || a.join("g", p1) == nil {
		t.Fatal("join: first adds, second is a no-op")
	}
	if got := a.members("g", true); len(got) != 2 || !got[0].Equal(p1) || !got[1].Equal(p2) {
		t.Fatalf("members %v", got)
	}
	tombs := a.dropPID(p1)
	if len(tombs) != 3 || !tombs[0].deleted {
		t.Fatalf("dropPID: %v", tombs)
	}
	if a.referenced(p1) || !a.referenced(p2) {
		t.Fatal("referenced")
	}
	if got := a.names(); len(got) != 0 {
		t.Fatalf("names after the actor died: %v", got)
	}
	if a.leave("g", p2) == nil || a.leave("g", p2) != nil || len(a.groups()) != 0 {
		t.Fatal("leave")
	}
	if a.version != 8 || a.own().complete != 8 {
		t.Fatalf("version %d complete %d, want 8", a.version, a.own().complete)
	}
}

func TestGlobalTableUnregisterOwnership(t *testing.T) {
	a, b := newGlobalTable("a", 1), newGlobalTable("b", 1)
	r := mustRec(a.register("svc", testPID(t, "a:1", "x", 1), 10))
	deliver(t, b, deltaOf(a, r))
	if _, err := b.unregister("svc"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("unregister by another node: %v", err)
	}
	if r, err := b.unregister("nope"); r != nil || err != nil {
		t.Fatalf("unregister of an unknown name: %v, %v", r, err)
	}
	tomb := mustRec(a.unregister("svc"))
	deliver(t, b, deltaOf(a, tomb))
	if _, ok := b.owners["a"].recs[nameID("svc")]; !ok || b.winner("svc") != nil {
		t.Fatal("the tombstone is kept (not complete yet) and hides the name")
	}
	deliver(t, b, fullOf(a))
	if len(b.owners["a"].recs) != 0 {
		t.Fatalf("tombstone not collected after a complete state: %v", b.owners["a"].recs)
	}
}

// A tombstone that overtakes the registration it ends wins, and a stale
// copy arriving later does not bring the registration back.
func TestGlobalTableTombstoneBeatsOlderCopies(t *testing.T) {
	a := newGlobalTable("a", 1)
	p := testPID(t, "a:1", "x", 1)
	reg := deltaOf(a, mustRec(a.register("svc", p, 10)))
	joinMsg := deltaOf(a, a.join("g", p))
	relay := fullOf(a) // a snapshot taken while both existed
	tombs := a.dropPID(p)
	for _, order := range [][]string{{"tombs", "reg", "join", "relay"}, {"relay", "tombs", "reg"}, {"reg", "join", "tombs", "relay"}} {
		obs := newGlobalTable("obs", 1)
		for _, step := range order {
			switch step {
			case "reg":
				deliver(t, obs, reg)
			case "join":
				deliver(t, obs, joinMsg)
			case "relay":
				deliver(t, obs, relay)
			case "tombs":
				for _, r := range tombs {
					deliver(t, obs, deltaOf(a, r))
				}
			}
		}
		if v := view(obs); v != "" {
			t.Errorf("order %v: view %q, want empty", order, v)
		}
	}
}

// A complete part deletes the records it lacks, but not newer ones.
func TestGlobalTableCompleteStateDropsMissing(t *testing.T) {
	a := newGlobalTable("a", 1)
	obs := newGlobalTable("obs", 1)
	p := testPID(t, "a:1", "x", 1)
	old := deltaOf(a, mustRec(a.register("old", p, 10)))
	deliver(t, obs, old)
	mustRec(a.unregister("old")) // the tombstone is lost
	snap := fullOf(a)
	newer := deltaOf(a, mustRec(a.register("new", p, 20)))
	deliver(t, obs, newer) // overtakes the snapshot
	deliver(t, obs, snap)
	if got := obs.names(); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("names %v, want [new]", got)
	}
	deliver(t, obs, old) // a stale copy: absent at or below complete means deleted
	if got := obs.names(); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("names after a stale copy %v", got)
	}
}

func TestGlobalTableEpochs(t *testing.T) {
	old := newGlobalTable("a", 5)
	obs := newGlobalTable("obs", 1)
	deliver(t, obs, deltaOf(old, mustRec(old.register("svc", testPID(t, "a:1", "x", 1), 10))))
	restarted := newGlobalTable("a", 9) // the same node, started again
	deliver(t, obs, fullOf(restarted))
	if len(obs.names()) != 0 {
		t.Fatal("a newer epoch did not void the old records")
	}
	deliver(t, obs, deltaOf(old, old.join("g", testPID(t, "a:1", "x", 1))))
	if len(obs.groups()) != 0 {
		t.Fatal("a record of an older epoch was accepted")
	}
	// A node that sees its own name with a newer epoch outlives it.
	res := deliver(t, old, fullOf(restarted))
	if !res.reannounce || old.epoch != 10 || old.own().epoch != 10 {
		t.Fatalf("epoch %d, reannounce %v", old.epoch, res.reannounce)
	}
	if res := deliver(t, old, fullOf(old)); res.reannounce {
		t.Fatal("its own current state moved the epoch")
	}
}

func TestGlobalTableGoneOwners(t *testing.T) {
	a := newGlobalTable("a", 1)
	relay := newGlobalTable("relay", 1)
	obs := newGlobalTable("obs", 1)
	deliver(t, relay, deltaOf(a, mustRec(a.register("svc", testPID(t, "a:1", "x", 1), 10))))
	deliver(t, obs, relay.snapshot())
	if len(obs.names()) != 1 {
		t.Fatal("relayed record not merged")
	}
	obs.dropOwner("a")
	if len(obs.names()) != 0 {
		t.Fatal("records of a dead owner kept")
	}
	deliver(t, obs, relay.snapshot()) // a node that has not noticed yet
	if len(obs.names()) != 0 {
		t.Fatal("a relay brought back a dead owner's records")
	}
	obs.ownerUp("a")
	deliver(t, obs, relay.snapshot())
	if len(obs.names()) != 1 {
		t.Fatal("records of an owner that came back were refused")
	}
	obs.dropOwner("obs") // itself: never
	if _, ok := obs.owners["obs"]; !ok {
		t.Fatal("dropped itself")
	}
}

// Two sides of a partition register one name; whichever way the states
// meet, both settle on the same winner and the loser's owner removes its
// registration and reports the conflict.
func TestGlobalTableConflict(t *testing.T) {
	for _, tc := range []struct {
		name         string
		timeA, timeB int64
		wantWinner   string
	}{
		{"earlier registration wins", 10, 20, "a"},
		{"earlier registration wins (b)", 30, 20, "b"},
		{"equal times: smaller node name wins", 10, 10, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, aFirst := range []bool{true, false} {
				a, b := newGlobalTable("a", 1), newGlobalTable("b", 1)
				pa, pb := testPID(t, "a:1", "x", 1), testPID(t, "b:1", "y", 1)
				mustRec(a.register("leader", pa, tc.timeA))
				mustRec(b.register("leader", pb, tc.timeB))
				var results []mergeResult
				if aFirst {
					results = append(results, deliver(t, b, fullOf(a)), deliver(t, a, fullOf(b)))
				} else {
					results = append(results, deliver(t, a, fullOf(b)), deliver(t, b, fullOf(a)))
				}
				loser, winnerPID, loserPID := b, pa, pb
				if tc.wantWinner == "b" {
					loser, winnerPID, loserPID = a, pb, pa
				}
				var conflicts []lostName
				for _, r := range results {
					conflicts = append(conflicts, r.conflicts...)
				}
				if len(conflicts) != 1 || !conflicts[0].loser.Equal(loserPID) || !conflicts[0].winner.Equal(winnerPID) {
					t.Fatalf("conflicts %+v", conflicts)
				}
				if loser.own().liveName("leader") != nil {
					t.Fatal("the loser kept its registration")
				}
				for _, tb := range []*globalTable{a, b} {
					if w := tb.winner("leader"); w == nil || !w.pid.Equal(winnerPID) {
						t.Fatalf("%s: winner %v, want %v", tb.self, w, winnerPID)
					}
				}
			}
		})
	}
}

// Property: whatever order (with duplicates and losses of broadcasts) an
// observer receives the broadcasts and complete states of independent owners
// in, it ends with the same view once it has each owner's final complete
// state, and that view is the owners' final records with every name resolved
// by the conflict rule.
func TestGlobalTableOrderIndependence(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		owners := []string{"a", "b", "c"}[:rapid.IntRange(1, 3).Draw(rt, "owners")]
		var msgs []*clusterpb.GlobalState
		var tables []*globalTable
		for _, o := range owners {
			tb := newGlobalTable(o, rapid.Uint64Range(1, 3).Draw(rt, "epoch"))
			tables = append(tables, tb)
			pids := []*actor.PID{testPID(rt, o+":1", "p", 1), testPID(rt, o+":1", "q", 2)}
			for i, n := 0, rapid.IntRange(0, 12).Draw(rt, "ops"); i < n; i++ {
				pid := rapid.SampledFrom(pids).Draw(rt, "pid")
				name := rapid.SampledFrom([]string{"n1", "n2"}).Draw(rt, "name")
				var recs []*globalRecord
				switch rapid.IntRange(0, 5).Draw(rt, "op") {
				case 0:
					if r, _ := tb.register(name, pid, rapid.Int64Range(1, 20).Draw(rt, "now")); r != nil {
						recs = append(recs, r)
					}
				case 1:
					if r, _ := tb.unregister(name); r != nil {
						recs = append(recs, r)
					}
				case 2:
					recs = append(recs, tb.join(name, pid))
				case 3:
					recs = append(recs, tb.leave(name, pid))
				case 4:
					recs = append(recs, tb.dropPID(pid)...)
				case 5:
					msgs = append(msgs, fullOf(tb))
				}
				for _, r := range recs {
					if r != nil && !rapid.Bool().Draw(rt, "lost") { // broadcasts may be lost
						msgs = append(msgs, deltaOf(tb, r))
					}
				}
			}
			msgs = append(msgs, fullOf(tb))
		}
		// Some messages arrive twice.
		for _, i := range rapid.SliceOfN(rapid.IntRange(0, len(msgs)-1), 0, 4).Draw(rt, "dups") {
			msgs = append(msgs, msgs[i])
		}
		perm := rapid.Permutation(msgs).Draw(rt, "order")
		obs1, obs2 := newGlobalTable("obs1", 1), newGlobalTable("obs2", 1)
		for _, m := range msgs {
			deliver(rt, obs1, m)
		}
		for _, m := range perm {
			deliver(rt, obs2, m)
		}
		// A third observer hears it all second-hand, from obs2.
		obs3 := newGlobalTable("obs3", 1)
		deliver(rt, obs3, obs2.snapshot())

		want := newGlobalTable("want", 1)
		for _, tb := range tables {
			want.owners[tb.self] = tb.own()
		}
		for _, obs := range []*globalTable{obs1, obs2, obs3} {
			if got, w := view(obs), view(want); got != w {
				rt.Fatalf("%s sees\n%s\nwant\n%s", obs.self, got, w)
			}
		}
	})
}

// Property: nodes that registered overlapping names while cut off converge,
// whatever order they exchange states and broadcasts in: every node agrees,
// each name is held by exactly one registration, the one the conflict rule
// picks among all, and each other registration's owner reported a conflict.
func TestGlobalTableConflictsConverge(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		names := []string{"a", "b", "c", "d"}[:rapid.IntRange(2, 4).Draw(rt, "nodes")]
		var nodes []*globalTable
		best := map[string]*globalRecord{}
		candidates := map[string]int{}
		for i, nm := range names {
			tb := newGlobalTable(nm, 1)
			nodes = append(nodes, tb)
			for _, key := range []string{"x", "y"} {
				if rapid.Bool().Draw(rt, "registers") {
					r := mustRec(tb.register(key, testPID(rt, nm+":1", key, uint64(i+1)), rapid.Int64Range(1, 5).Draw(rt, "now")))
					candidates[key]++
					if best[key] == nil || wins(r, best[key]) {
						best[key] = r
					}
				}
			}
		}
		type pending struct {
			to int
			st *clusterpb.GlobalState
		}
		var queue []pending
		conflicts := map[string]int{}
		step := func(to int, st *clusterpb.GlobalState) {
			res := deliver(rt, nodes[to], st)
			for _, c := range res.conflicts {
				conflicts[c.name]++
			}
			for _, r := range res.own {
				for j := range nodes {
					if j != to {
						queue = append(queue, pending{j, deltaOf(nodes[to], r)})
					}
				}
			}
		}
		for i, n := 0, rapid.IntRange(0, 20).Draw(rt, "steps"); i < n; i++ {
			if len(queue) > 0 && rapid.Bool().Draw(rt, "broadcast") {
				k := rapid.IntRange(0, len(queue)-1).Draw(rt, "which")
				p := queue[k]
				queue = slices.Delete(queue, k, k+1)
				if rapid.Bool().Draw(rt, "lost") {
					continue
				}
				step(p.to, p.st)
				continue
			}
			from := rapid.IntRange(0, len(nodes)-1).Draw(rt, "from")
			to := rapid.IntRange(0, len(nodes)-1).Draw(rt, "to")
			if from != to {
				step(to, nodes[from].snapshot()) // push/pull: all it knows
			}
		}
		// Then full exchanges until nothing changes.
		for round := 0; round < 2*len(nodes); round++ {
			for i := range nodes {
				for j := range nodes {
					if i != j {
						step(j, nodes[i].snapshot())
					}
				}
			}
		}
		v0 := view(nodes[0])
		for _, tb := range nodes[1:] {
			if v := view(tb); v != v0 {
				rt.Fatalf("%s sees\n%s\n%s sees\n%s", nodes[0].self, v0, tb.self, v)
			}
		}
		for key, b := range best {
			held := 0
			for _, tb := range nodes {
				if tb.own().liveName(key) != nil {
					held++
				}
			}
			if w := nodes[0].winner(key); held != 1 || w == nil || !w.pid.Equal(b.pid) {
				rt.Fatalf("name %s: held by %d nodes, winner %v, want %v", key, held, w, b.pid)
			}
			if conflicts[key] != candidates[key]-1 {
				rt.Fatalf("name %s: %d conflicts reported, want %d", key, conflicts[key], candidates[key]-1)
			}
		}
	})
}

func TestGlobalStateRejectsMalformed(t *testing.T) {
	good := func() *clusterpb.GlobalRecord {
		return &clusterpb.GlobalRecord{Kind: clusterpb.GlobalRecord_KIND_NAME, Key: "svc", Version: 1,
			Pid: &actorpb.PID{Address: "a:1", Id: "x#1", Name: "x", Incarnation: 1}}
	}
	one := func(mut func(o *clusterpb.OwnerState)) *clusterpb.GlobalState {
		o := &clusterpb.OwnerState{Owner: "a", Epoch: 1, Records: []*clusterpb.GlobalRecord{good()}}
		mut(o)
		return &clusterpb.GlobalState{Owners: []*clusterpb.OwnerState{o}}
	}
	for _, tc := range []struct {
		name string
		st   *clusterpb.GlobalState
		want string
	}{
		{"no owner name", one(func(o *clusterpb.OwnerState) { o.Owner = "" }), "has no name"},
		{"long owner name", one(func(o *clusterpb.OwnerState) { o.Owner = strings.Repeat("a", 2000) }), "more than 1024"},
		{"epoch 0", one(func(o *clusterpb.OwnerState) { o.Epoch = 0 }), "epoch 0"},
		{"kind", one(func(o *clusterpb.OwnerState) { o.Records[0].Kind = 7 }), "unknown kind 7"},
		{"empty key", one(func(o *clusterpb.OwnerState) { o.Records[0].Key = "" }), "global name is empty"},
		{"long key", one(func(o *clusterpb.OwnerState) { o.Records[0].Key = strings.Repeat("k", 300) }), "more than 255"},
		{"control character", one(func(o *clusterpb.OwnerState) { o.Records[0].Key = "a\nb" }), "control character"},
		{"version 0", one(func(o *clusterpb.OwnerState) { o.Records[0].Version = 0 }), "version 0"},
		{"no pid", one(func(o *clusterpb.OwnerState) { o.Records[0].Pid = nil }), "pid is missing"},
		{"bad pid", one(func(o *clusterpb.OwnerState) { o.Records[0].Pid.Id = "x" }), "incarnation"},
		{"second part bad", &clusterpb.GlobalState{Owners: []*clusterpb.OwnerState{
			{Owner: "a", Epoch: 1, Records: []*clusterpb.GlobalRecord{good()}},
			{Owner: "b", Epoch: 1, Records: []*clusterpb.GlobalRecord{{Kind: clusterpb.GlobalRecord_KIND_GROUP_MEMBER, Key: "g", Version: 1}}},
		}}, `owner "b" record 0: group name "g": actor: malformed wire message: pid is missing`},
		{"too many owners", &clusterpb.GlobalState{Owners: make([]*clusterpb.OwnerState, maxGlobalOwners+1)}, "owners, more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := encodeGlobalState(tc.st)
			if err != nil {
				t.Fatal(err)
			}
			st, err := decodeGlobalState(b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := parseGlobalState(st); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "empty message"},
		{"type", []byte{9, 1, 2}, "unknown message type 9"},
		{"too large", append([]byte{globalMsgState}, make([]byte, maxGlobalStateBytes+1)...), "more than"},
		{"not protobuf", []byte{globalMsgState, 0xff, 0xff, 0xff}, "global state"},
	} {
		if _, err := decodeGlobalState(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// unstartedRegistry is the registry of a node that was never started: its
// gossip hooks work without a network.
func unstartedRegistry(t testing.TB) *globalRegistry {
	cfg := Local("fuzz")
	cfg.Logger = zap.NewNop()
	nd, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return nd.global
}

// Garbage into the gossip hooks: no panic, nothing merged.
func TestGlobalRegistryGarbage(t *testing.T) {
	g := unstartedRegistry(t)
	valid, err := encodeGlobalState(&clusterpb.GlobalState{Owners: []*clusterpb.OwnerState{{Owner: "a", Epoch: 1,
		Records: []*clusterpb.GlobalRecord{{Kind: clusterpb.GlobalRecord_KIND_NAME, Key: "svc", Version: 1,
			Pid: &actorpb.PID{Address: "a:1", Id: "x#1", Name: "x", Incarnation: 1}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		var b []byte
		switch i % 3 {
		case 0: // random bytes
			b = make([]byte, rng.IntN(64))
			for j := range b {
				b[j] = byte(rng.UintN(256))
			}
		case 1: // random bytes behind the right type byte
			b = make([]byte, 1+rng.IntN(64))
			for j := range b {
				b[j] = byte(rng.UintN(256))
			}
			b[0] = globalMsgState
		case 2: // a valid message with a few bytes flipped or cut
			b = slices.Clone(valid)
			for k := 0; k < 1+rng.IntN(3); k++ {
				b[1+rng.IntN(len(b)-1)] = byte(rng.UintN(256))
			}
			b = b[:1+rng.IntN(len(b))]
		}
		g.notifyMsg(b)
		g.mergeRemoteState(b, i%2 == 0)
	}
	// Whatever got through was valid: the state encodes, decodes and
	// merges again into the same view.
	st, err := decodeGlobalState(g.localState(false))
	if err != nil {
		t.Fatal(err)
	}
	parts, err := parseGlobalState(st)
	if err != nil {
		t.Fatal(err)
	}
	again := newGlobalTable("again", 1)
	again.merge(parts)
	if view(again) != view(g.t) {
		t.Fatalf("views differ:\n%s\n%s", view(again), view(g.t))
	}
	// And a fresh registry takes the valid message.
	g2 := unstartedRegistry(t)
	g2.notifyMsg(valid)
	if _, ok := g2.n.WhereIsGlobal("svc"); !ok {
		t.Fatal("a valid broadcast was not merged")
	}
	if got := g2.broadcasts(2, 1400); len(got) != 1 {
		t.Fatalf("news from a broadcast is passed on: %d messages, want 1", len(got))
	}
	g3 := unstartedRegistry(t)
	g3.mergeRemoteState(g2.localState(false), true)
	if _, ok := g3.n.WhereIsGlobal("svc"); !ok {
		t.Fatal("a valid push/pull state was not merged")
	}
	if got := g3.broadcasts(2, 1400); len(got) != 0 {
		t.Fatalf("a push/pull state was broadcast again: %d messages", len(got))
	}
}

// FuzzGlobalState feeds arbitrary payloads to the decoder and the merge.
func FuzzGlobalState(f *testing.F) {
	a := newGlobalTable("a", 3)
	p := testPID(f, "a:1", "x", 1)
	mustRec(a.register("svc", p, 10))
	a.join("g", p)
	for _, st := range []*clusterpb.GlobalState{a.snapshot(), {ReplyTo: "a"}} {
		b, err := encodeGlobalState(st)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{globalMsgState, 0x0a, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeGlobalState(b)
		if err != nil {
			return
		}
		parts, err := parseGlobalState(st)
		if err != nil {
			return
		}
		tb := newGlobalTable("obs", 1)
		tb.merge(parts)
		// What was accepted encodes and merges again.
		again := newGlobalTable("obs2", 1)
		again.merge(wire(t, tb.snapshot()))
		if view(tb) != view(again) {
			t.Fatalf("relayed view differs:\n%s\n%s", view(tb), view(again))
		}
	})
}

func TestGlobalRegistryBroadcastsFitPackets(t *testing.T) {
	g := unstartedRegistry(t)
	p := testPID(t, "127.0.0.1:65535", strings.Repeat("p", 100), 1<<60)
	g.mu.Lock()
	r := mustRec(g.t.register(strings.Repeat("n", maxGlobalKey), p, 1))
	g.queueOwn(r)
	g.mu.Unlock()
	msgs := g.broadcasts(2, 1400)
	if len(msgs) != 1 || len(msgs[0]) > 700 {
		t.Fatalf("%d broadcasts, first %d bytes", len(msgs), len(msgs[0]))
	}
	st, err := decodeGlobalState(msgs[0])
	if err != nil || !proto.Equal(st.Owners[0].Records[0], r.toProto()) {
		t.Fatalf("broadcast %v, %v", st, err)
	}
}

func TestGlobalRegistryNotRunning(t *testing.T) {
	g := unstartedRegistry(t)
	p := testPID(t, "a:1", "x", 1)
	if err := g.n.RegisterGlobal(context.Background(), "svc", p); !errors.Is(err, ErrNodeNotRunning) {
		t.Fatalf("RegisterGlobal on a node not started: %v", err)
	}
	if err := g.n.JoinGroup("g", p); !errors.Is(err, ErrNodeNotRunning) {
		t.Fatalf("JoinGroup on a node not started: %v", err)
	}
	if _, ok := g.n.WhereIsGlobal("svc"); ok || len(g.n.GlobalNames()) != 0 || len(g.n.Groups()) != 0 {
		t.Fatal("state on a node not started")
	}
}

// The API on one running node (under -race).
func TestGlobalRegistrySingleNode(t *testing.T) {
	cfg := Local("solo")
	cfg.Logger = zap.NewNop()
	nd := startNode(t, cfg)
	sys := nd.System()
	ctx := context.Background()
	spawn := func() *actor.PID {
		pid, err := sys.Spawn(actor.PropsFromFunc(func(*actor.Context) {}))
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	p1, p2 := spawn(), spawn()
	if err := nd.RegisterGlobal(ctx, "svc", p1); err != nil {
		t.Fatal(err)
	}
	if err := nd.RegisterGlobal(ctx, "svc", p1); err != nil {
		t.Fatalf("registering the same actor again: %v", err)
	}
	if err := nd.RegisterGlobal(ctx, "svc", p2); !errors.Is(err, ErrGlobalNameTaken) {
		t.Fatalf("taken: %v", err)
	}
	if got, ok := nd.WhereIsGlobal("svc"); !ok || !got.Equal(p1) {
		t.Fatalf("WhereIsGlobal = %v, %v", got, ok)
	}
	for _, tc := range []struct {
		name string
		pid  *actor.PID
		want string
	}{
		{"", p1, "global name is empty"},
		{strings.Repeat("x", 256), p1, "more than 255"},
		{"bad\x00name", p1, "control character"},
		{"\xff", p1, "not valid UTF-8"},
		{"ok", nil, "pid is nil"},
	} {
		if err := nd.RegisterGlobal(ctx, tc.name, tc.pid); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("RegisterGlobal(%q): %v, want %q", tc.name, err, tc.want)
		}
	}
	foreign := testPID(t, "10.9.9.9:1", "x", 1)
	if err := nd.RegisterGlobal(ctx, "f", foreign); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("foreign actor: %v", err)
	}
	if err := nd.JoinGroup("g", foreign); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("foreign member: %v", err)
	}
	if err := nd.LeaveGroup("g", foreign); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("foreign leave: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := nd.RegisterGlobal(cctx, "late", p2); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}

	// Groups.
	for _, p := range []*actor.PID{p1, p2, p1} {
		if err := nd.JoinGroup("workers", p); err != nil {
			t.Fatal(err)
		}
	}
	if err := nd.JoinGroup("other", p2); err != nil {
		t.Fatal(err)
	}
	want := []*actor.PID{p1, p2}
	slices.SortFunc(want, cmpPID)
	if got := nd.GroupMembers("workers"); !slices.EqualFunc(got, want, (*actor.PID).Equal) {
		t.Fatalf("GroupMembers = %v, want %v", got, want)
	}
	if got := nd.LocalGroupMembers("workers"); len(got) != 2 {
		t.Fatalf("LocalGroupMembers = %v", got)
	}
	if got := nd.Groups(); !slices.Equal(got, []string{"other", "workers"}) {
		t.Fatalf("Groups = %v", got)
	}
	if err := nd.LeaveGroup("other", p2); err != nil {
		t.Fatal(err)
	}
	if err := nd.LeaveGroup("other", p2); err != nil {
		t.Fatalf("leaving twice: %v", err)
	}
	if got := nd.Groups(); !slices.Equal(got, []string{"workers"}) {
		t.Fatalf("Groups after leave = %v", got)
	}

	// Death removes the actor's names and memberships.
	if err := sys.Kill(p1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed actor's name and membership go", 5*time.Second, func() bool {
		_, ok := nd.WhereIsGlobal("svc")
		return !ok && len(nd.GroupMembers("workers")) == 1
	})
	if err := nd.RegisterGlobal(ctx, "svc", p1); !errors.Is(err, actor.ErrDeadActor) {
		t.Fatalf("dead actor: %v", err)
	}
	if err := nd.RegisterGlobal(ctx, "svc", p2); err != nil {
		t.Fatalf("the name is free again: %v", err)
	}
	if err := nd.UnregisterGlobal("svc"); err != nil {
		t.Fatal(err)
	}
	if err := nd.UnregisterGlobal("svc"); err != nil {
		t.Fatalf("unregistering an unknown name: %v", err)
	}
	if got := nd.GlobalNames(); len(got) != 0 {
		t.Fatalf("GlobalNames = %v", got)
	}
	// However often an actor is registered, unregistered, joined and left,
	// the registry's watcher monitors it once.
	if err := nd.RegisterGlobal(ctx, "again", p2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watcher keeps monitoring p2", 5*time.Second, func() bool {
		i, ok := sys.Info(p2)
		return ok && i.Monitors == 1
	})
}
