package cluster

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// After a failed connection attempt protoactor's endpoint writer
		// sleeps 2 s in time.Sleep, which nothing can interrupt; the
		// goroutine ends by itself. Everything else must be gone.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/remote.(*endpointWriter).initialize"))
}

func faultsMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestFaultsDecide(t *testing.T) {
	type check struct {
		from, to string
		want     Verdict
	}
	drop := Verdict{Drop: true}
	pass := Verdict{}
	tests := []struct {
		name   string
		setup  func(t *testing.T, f *Faults)
		checks []check
		// probabilistic drops are in Decide's verdict but not in Cut.
		probabilistic bool
	}{
		{
			name:   "no rules",
			setup:  func(*testing.T, *Faults) {},
			checks: []check{{"n1", "n2", pass}, {"n2", "n1", pass}},
		},
		{
			name: "partition cuts both directions between groups only",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.Partition([]string{"n1"}, []string{"n2", "n3"}))
			},
			checks: []check{
				{"n1", "n2", drop}, {"n2", "n1", drop},
				{"n1", "n3", drop}, {"n3", "n1", drop},
				{"n2", "n3", pass}, {"n3", "n2", pass},
				{"n1", "n4", pass}, {"n4", "n1", pass}, // n4 is not listed
			},
		},
		{
			name: "three-way partition",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.Partition([]string{"n1"}, []string{"n2"}, []string{"n3", "n4"}))
			},
			checks: []check{
				{"n1", "n2", drop}, {"n2", "n3", drop}, {"n4", "n1", drop},
				{"n3", "n4", pass},
			},
		},
		{
			name: "a new partition replaces the old one",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.Partition([]string{"n1"}, []string{"n2", "n3"}))
				faultsMust(t, f.Partition([]string{"n1", "n2"}, []string{"n3"}))
			},
			checks: []check{{"n1", "n2", pass}, {"n1", "n3", drop}, {"n3", "n2", drop}},
		},
		{
			name: "heal",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.Partition([]string{"n1"}, []string{"n2"}))
				f.Heal()
			},
			checks: []check{{"n1", "n2", pass}, {"n2", "n1", pass}},
		},
		{
			name: "single group cuts nothing",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.Partition([]string{"n1", "n2"}, nil))
			},
			checks: []check{{"n1", "n2", pass}},
		},
		{
			name: "one-way drop",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.DropOneWay("n1", "n2"))
			},
			checks: []check{{"n1", "n2", drop}, {"n2", "n1", pass}, {"n1", "n3", pass}},
		},
		{
			name: "undrop",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.DropOneWay("n1", "n2"))
				faultsMust(t, f.DropOneWay("n1", "n3"))
				f.UndropOneWay("n1", "n2")
			},
			checks: []check{{"n1", "n2", pass}, {"n1", "n3", drop}},
		},
		{
			name: "wildcard to: a node that cannot send",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.DropOneWay("n1", AnyNode))
			},
			checks: []check{{"n1", "n2", drop}, {"n1", "n3", drop}, {"n2", "n1", pass}, {"n1", "n1", pass}},
		},
		{
			name: "wildcard from: a node that cannot hear",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.DropOneWay(AnyNode, "n3"))
			},
			checks: []check{{"n1", "n3", drop}, {"n2", "n3", drop}, {"n3", "n1", pass}, {"n3", "n3", pass}},
		},
		{
			name: "self is never faulted",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.DropOneWay(AnyNode, AnyNode))
				faultsMust(t, f.SetDelay(AnyNode, AnyNode, time.Second, 0))
			},
			checks: []check{{"n1", "n1", pass}, {"n1", "n2", drop}},
		},
		{
			name: "p=1 drops, p=0 removes the rule",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.SetDropProbability("n1", "n2", 1))
				faultsMust(t, f.SetDropProbability("n2", "n1", 1))
				faultsMust(t, f.SetDropProbability("n2", "n1", 0))
			},
			checks:        []check{{"n1", "n2", drop}, {"n2", "n1", pass}},
			probabilistic: true,
		},
		{
			name: "fixed delay and certain duplication",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.SetDelay("n1", "n2", 25*time.Millisecond, 0))
				faultsMust(t, f.SetDuplicate("n1", "n2", 1))
			},
			checks: []check{
				{"n1", "n2", Verdict{Delay: 25 * time.Millisecond, Duplicate: true}},
				{"n2", "n1", pass},
			},
		},
		{
			name: "the most specific rule wins",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.SetDelay(AnyNode, AnyNode, 4*time.Millisecond, 0))
				faultsMust(t, f.SetDelay(AnyNode, "n2", 3*time.Millisecond, 0))
				faultsMust(t, f.SetDelay("n1", AnyNode, 2*time.Millisecond, 0))
				faultsMust(t, f.SetDelay("n1", "n2", 1*time.Millisecond, 0))
			},
			checks: []check{
				{"n1", "n2", Verdict{Delay: 1 * time.Millisecond}},
				{"n1", "n3", Verdict{Delay: 2 * time.Millisecond}},
				{"n3", "n2", Verdict{Delay: 3 * time.Millisecond}},
				{"n3", "n1", Verdict{Delay: 4 * time.Millisecond}},
			},
		},
		{
			name: "a cut link is dropped, not delayed or duplicated",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.SetDelay("n1", "n2", time.Millisecond, 0))
				faultsMust(t, f.SetDuplicate("n1", "n2", 1))
				faultsMust(t, f.Partition([]string{"n1"}, []string{"n2"}))
			},
			checks: []check{{"n1", "n2", drop}},
		},
		{
			name: "clear removes every rule",
			setup: func(t *testing.T, f *Faults) {
				faultsMust(t, f.Partition([]string{"n1"}, []string{"n2"}))
				faultsMust(t, f.DropOneWay("n3", "n4"))
				faultsMust(t, f.SetDropProbability(AnyNode, AnyNode, 1))
				faultsMust(t, f.SetDelay(AnyNode, AnyNode, time.Second, 0))
				faultsMust(t, f.SetDuplicate(AnyNode, AnyNode, 1))
				f.Clear()
			},
			checks: []check{{"n1", "n2", pass}, {"n3", "n4", pass}, {"n5", "n6", pass}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFaults(1)
			tt.setup(t, f)
			for _, c := range tt.checks {
				if got := f.Decide(c.from, c.to); got != c.want {
					t.Errorf("Decide(%s, %s) = %+v, want %+v (rules: %s)", c.from, c.to, got, c.want, f)
				}
				if got, want := f.Cut(c.from, c.to), c.want.Drop && !tt.probabilistic; got != want {
					t.Errorf("Cut(%s, %s) = %v, want %v (rules: %s)", c.from, c.to, got, want, f)
				}
			}
		})
	}
}

func TestFaultsSameSeedSameVerdicts(t *testing.T) {
	sequence := func(seed int64) []Verdict {
		f := NewFaults(seed)
		faultsMust(t, f.SetDropProbability("n1", "n2", 0.3))
		faultsMust(t, f.SetDelay("n1", "n2", time.Millisecond, 10*time.Millisecond))
		faultsMust(t, f.SetDuplicate("n1", "n2", 0.5))
		faultsMust(t, f.DropOneWay("n3", "n1")) // deterministic: draws nothing
		out := make([]Verdict, 0, 2000)
		for range 1000 {
			out = append(out, f.Decide("n1", "n2"), f.Decide("n3", "n1"))
		}
		return out
	}
	a, b := sequence(42), sequence(42)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different verdict sequences")
	}
	if reflect.DeepEqual(a, sequence(43)) {
		t.Fatal("seeds 42 and 43 gave the same 2000 verdicts")
	}
	var zero Faults // the zero value behaves like NewFaults(0)
	faultsMust(t, zero.SetDropProbability("n1", "n2", 0.5))
	f0 := NewFaults(0)
	faultsMust(t, f0.SetDropProbability("n1", "n2", 0.5))
	for i := range 200 {
		if g, w := zero.Decide("n1", "n2"), f0.Decide("n1", "n2"); g != w {
			t.Fatalf("draw %d: zero value gave %+v, NewFaults(0) gave %+v", i, g, w)
		}
	}
}

func TestFaultsProbabilityFrequency(t *testing.T) {
	const draws = 10000
	for _, p := range []float64{0, 0.05, 0.3, 0.5, 0.9, 1} {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			f := NewFaults(7)
			faultsMust(t, f.SetDropProbability("n1", "n2", p))
			faultsMust(t, f.SetDuplicate("n2", "n1", p))
			var dropped, duplicated int
			for range draws {
				if f.Decide("n1", "n2").Drop {
					dropped++
				}
				if f.Decide("n2", "n1").Duplicate {
					duplicated++
				}
			}
			for what, n := range map[string]int{"dropped": dropped, "duplicated": duplicated} {
				got := float64(n) / draws
				switch p {
				case 0, 1:
					if got != p {
						t.Errorf("%s fraction %v, want exactly %v", what, got, p)
					}
				default:
					// 5 standard deviations of a binomial proportion.
					if tol := 5 * math.Sqrt(p*(1-p)/draws); math.Abs(got-p) > tol {
						t.Errorf("%s fraction %v, want %v ± %v", what, got, p, tol)
					}
				}
			}
		})
	}
}

func TestFaultsDelayRange(t *testing.T) {
	const base, jitter = 10 * time.Millisecond, 5 * time.Millisecond
	f := NewFaults(3)
	faultsMust(t, f.SetDelay("n1", "n2", base, jitter))
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for range 10000 {
		d := f.Decide("n1", "n2").Delay
		if d < base || d >= base+jitter {
			t.Fatalf("delay %v outside [%v, %v)", d, base, base+jitter)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	// Uniform over 5ms: 10k draws come within 50µs of both ends.
	if lo > base+50*time.Microsecond || hi < base+jitter-50*time.Microsecond {
		t.Errorf("delays span [%v, %v], want close to [%v, %v)", lo, hi, base, base+jitter)
	}
}

func TestFaultsInvalidArguments(t *testing.T) {
	f := NewFaults(1)
	tests := []struct {
		name string
		err  error
		want string // must appear in the error
	}{
		{"negative p", f.SetDropProbability("n1", "n2", -0.1), "p=-0.1"},
		{"p above 1", f.SetDropProbability("n1", "n2", 1.5), "p=1.5"},
		{"NaN p", f.SetDropProbability("n1", "n2", math.NaN()), "p=NaN"},
		{"duplicate p above 1", f.SetDuplicate("n1", "n2", 2), "p=2"},
		{"negative base", f.SetDelay("n1", "n2", -time.Millisecond, 0), "base=-1ms"},
		{"negative jitter", f.SetDelay("n1", "n2", 0, -time.Second), "jitter=-1s"},
		{"empty from", f.DropOneWay("", "n2"), "from is empty"},
		{"empty to", f.SetDelay("n1", "", time.Millisecond, 0), "to is empty"},
		{"same node", f.SetDuplicate("n1", "n1", 0.5), `both "n1"`},
		{"node in two groups", f.Partition([]string{"n1", "n2"}, []string{"n2"}), `"n2" is in partition groups 1 and 2`},
		{"wildcard in partition", f.Partition([]string{"n1"}, []string{AnyNode}), "wildcard"},
		{"empty name in partition", f.Partition([]string{"n1"}, []string{""}), "empty node name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatalf("no error, want one mentioning %q", tt.want)
			}
			if !strings.Contains(tt.err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", tt.err, tt.want)
			}
		})
	}
	if r := f.Rules(); len(r) != 0 {
		t.Errorf("rejected calls left rules behind: %q", r)
	}
}

func TestFaultsRulesAndStats(t *testing.T) {
	f := NewFaults(1)
	if got := f.String(); got != "no faults" {
		t.Errorf("String() = %q with no rules", got)
	}
	faultsMust(t, f.Partition([]string{"n1"}, []string{"n2", "n3"}))
	faultsMust(t, f.DropOneWay("n4", AnyNode))
	faultsMust(t, f.SetDropProbability(AnyNode, "n5", 0.25))
	faultsMust(t, f.SetDelay("n1", "n2", 10*time.Millisecond, 5*time.Millisecond))
	faultsMust(t, f.SetDelay("n2", "n1", time.Second, 0))
	faultsMust(t, f.SetDuplicate("n2", "n3", 1))
	want := []string{
		"partition {n1} | {n2 n3}",
		"drop n4→*",
		"drop *→n5 p=0.25",
		"delay n1→n2 10ms+[0,5ms)",
		"delay n2→n1 1s",
		"duplicate n2→n3 p=1",
	}
	if got := f.Rules(); !reflect.DeepEqual(got, want) {
		t.Errorf("Rules() =\n%q\nwant\n%q", got, want)
	}
	if got, want := f.String(), strings.Join(want, "; "); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	f.Decide("n1", "n2") // partition
	f.Decide("n4", "n1") // one-way
	f.Decide("n2", "n3") // duplicate
	f.Decide("n6", "n7") // nothing
	f.Decide("n3", "n3") // self
	f.Cut("n1", "n2")    // Cut does not count
	if got, want := f.Stats(), (FaultStats{Dropped: 2, Duplicated: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	f.Heal()
	f.Decide("n1", "n2") // now delayed
	f.Clear()
	if got, want := f.Stats(), (FaultStats{Dropped: 2, Delayed: 1, Duplicated: 1}); got != want {
		t.Errorf("Stats() after Clear = %+v, want %+v", got, want)
	}

	var nilFaults *Faults
	if v := nilFaults.Decide("n1", "n2"); v != (Verdict{}) || nilFaults.Cut("n1", "n2") ||
		nilFaults.String() != "no faults" || nilFaults.Stats() != (FaultStats{}) {
		t.Error("a nil *Faults is not an empty rule set")
	}
}

func TestFaultsOnChange(t *testing.T) {
	f := NewFaults(1)
	var mu sync.Mutex
	var got []string
	remove := f.OnChange(func(change string) {
		mu.Lock()
		got = append(got, change)
		mu.Unlock()
		_ = f.Rules() // a listener may read the rules: no lock is held
	})
	faultsMust(t, f.Partition([]string{"n1"}, []string{"n2"}))
	faultsMust(t, f.DropOneWay("n1", "n3"))
	f.UndropOneWay("n1", "n3")
	f.UndropOneWay("n1", "n3") // no such rule: no event
	faultsMust(t, f.SetDelay("n1", "n2", time.Millisecond, 0))
	_ = f.SetDelay("n1", "n2", -1, 0) // rejected: no event
	f.Heal()
	f.Clear()
	remove()
	faultsMust(t, f.DropOneWay("n1", "n2"))
	want := []string{
		"partition {n1} | {n2}",
		"drop n1→n3",
		"undrop n1→n3",
		"delay n1→n2 1ms",
		"heal",
		"clear",
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("changes =\n%q\nwant\n%q", got, want)
	}
}

func TestFaultsConcurrentUse(t *testing.T) {
	f := NewFaults(5)
	f.OnChange(func(string) {})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				from, to := fmt.Sprintf("n%d", g), fmt.Sprintf("n%d", i%4)
				f.Decide(from, to)
				f.Cut(to, from)
				switch i % 50 {
				case 0:
					_ = f.SetDropProbability(from, AnyNode, 0.1)
				case 10:
					_ = f.Partition([]string{"n0"}, []string{"n1", "n2"})
				case 20:
					_ = f.SetDelay(AnyNode, to, time.Millisecond, time.Millisecond)
				case 30:
					f.Heal()
					_ = f.Rules()
				case 40:
					f.Clear()
					_ = f.Stats()
				}
			}
		})
	}
	wg.Wait()
}

func TestFaultsLinkCutError(t *testing.T) {
	var err error = &LinkCutError{From: "n1", To: "n2"}
	if got, want := err.Error(), "cluster: fault injection: link n1→n2 is cut"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrLinkCut) {
		t.Error("LinkCutError is not ErrLinkCut")
	}
	var lc *LinkCutError
	if !errors.As(fmt.Errorf("wrapped: %w", err), &lc) || lc.To != "n2" {
		t.Error("errors.As does not find the LinkCutError")
	}
}

func ExampleFaults() {
	f := NewFaults(1)
	_ = f.Partition([]string{"n1"}, []string{"n2", "n3"})
	_ = f.DropOneWay("n3", "n4")
	fmt.Println(f)
	fmt.Println(f.Decide("n2", "n1").Drop, f.Decide("n2", "n3").Drop)
	fmt.Println(f.Decide("n3", "n4").Drop, f.Decide("n4", "n3").Drop)
	f.Clear()
	fmt.Println(f)
	// Output:
	// partition {n1} | {n2 n3}; drop n3→n4
	// true false
	// true false
	// no faults
}
