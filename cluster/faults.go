package cluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AnyNode is the wildcard that a fault rule accepts in place of a from or to
// node name: DropOneWay("n1", AnyNode) cuts everything n1 sends, and
// SetDelay(AnyNode, AnyNode, ...) slows every link. Partitions do not accept
// it: a partition lists its members by name.
const AnyNode = "*"

// ErrLinkCut is matched (with errors.Is) by the error a fault-injecting
// transport returns when it refuses to open a connection over a link that a
// partition, a one-way drop or a drop probability has cut.
var ErrLinkCut = errors.New("cluster: fault injection: link is cut")

// LinkCutError is the error a fault-injecting transport returns instead of
// dialling a peer whose link is cut. It unwraps to ErrLinkCut.
type LinkCutError struct {
	From, To string
}

// Error reports the cut link, for example
// "cluster: fault injection: link n1→n2 is cut".
func (e *LinkCutError) Error() string {
	return fmt.Sprintf("cluster: fault injection: link %s→%s is cut", e.From, e.To)
}

// Unwrap returns ErrLinkCut so callers can branch with errors.Is.
func (e *LinkCutError) Unwrap() error { return ErrLinkCut }

// Verdict is what Faults.Decide says should happen to one message sent from
// one node to another.
type Verdict struct {
	// Drop means the message is lost. When Drop is set the other fields
	// are zero.
	Drop bool
	// Delay is how long to hold the message before sending it; zero means
	// send now.
	Delay time.Duration
	// Duplicate means the message is sent twice (both copies after Delay).
	Duplicate bool
}

// FaultStats are running totals of the faults a Faults has injected since it
// was created. They only grow; Clear does not reset them.
type FaultStats struct {
	// Dropped counts messages dropped by Decide, plus messages and
	// connections that a transport refused on receive (see Faults.Cut).
	Dropped uint64
	// Delayed counts verdicts with a non-zero Delay.
	Delayed uint64
	// Duplicated counts verdicts with Duplicate set.
	Duplicated uint64
}

// faultLink is a directed pair of node names; either side may be AnyNode.
type faultLink struct{ from, to string }

func (l faultLink) String() string { return l.from + "→" + l.to }

type faultDelay struct{ base, jitter time.Duration }

// Faults is a seeded, run-time switchable set of fault rules between named
// nodes: partitions, one-way drops, and per-link drop probability, delay and
// duplication. Transports (gossip, actor messages) ask Decide what to do with
// each message they send.
//
// Deterministic rules (partitions and one-way drops) always give the same
// verdict. Probabilistic rules draw from one pseudo-random source seeded by
// NewFaults, so for a given seed and a given sequence of calls the verdicts are
// the same on every run. With concurrent callers the interleaving, and
// therefore the sequence, is up to the scheduler.
//
// When several rules of the same kind match a link, the most specific one
// wins: from→to, then from→*, then *→to, then *→*.
//
// Traffic from a node to itself is never faulted. All methods are safe for
// concurrent use. The zero value has no rules and behaves like NewFaults(0); a
// nil *Faults has no rules and its Decide, Cut, Rules, String and Stats work.
type Faults struct {
	mu     sync.Mutex
	seed   int64
	rng    *rand.Rand // created on first use so the zero value works
	groups map[string]int
	// partition keeps the groups as given, for Rules.
	partition [][]string
	oneWay    map[faultLink]struct{}
	dropP     map[faultLink]float64
	dupP      map[faultLink]float64
	delay     map[faultLink]faultDelay

	listeners    map[int]func(change string)
	nextListener int

	dropped, delayed, duplicated atomic.Uint64
	// active is false while there is no rule at all: the common case,
	// answered without taking the lock on every message.
	active atomic.Bool
}

// NewFaults returns a Faults with no rules whose probabilistic verdicts come
// from a pseudo-random source seeded with seed.
func NewFaults(seed int64) *Faults {
	return &Faults{seed: seed}
}

// Partition splits the listed nodes into groups that cannot reach each other
// in either direction; traffic within a group, and traffic of nodes not
// listed in any group, is unaffected. It replaces any earlier partition; with
// fewer than two non-empty groups nothing is cut. A node listed in two
// groups, an empty name or the wildcard is an error, and then the current
// partition is kept.
func (f *Faults) Partition(groups ...[]string) error {
	byNode := make(map[string]int)
	var kept [][]string
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		idx := len(kept)
		for _, n := range g {
			if n == "" {
				return fmt.Errorf("cluster: faults: partition group %d has an empty node name", idx+1)
			}
			if n == AnyNode {
				return fmt.Errorf("cluster: faults: partition group %d lists the wildcard %q; list nodes by name", idx+1, AnyNode)
			}
			if other, ok := byNode[n]; ok && other != idx {
				return fmt.Errorf("cluster: faults: node %q is in partition groups %d and %d", n, other+1, idx+1)
			}
			byNode[n] = idx
		}
		kept = append(kept, slices.Clone(g))
	}
	f.mu.Lock()
	if len(kept) < 2 {
		f.groups, f.partition = nil, nil
	} else {
		f.groups, f.partition = byNode, kept
	}
	f.mu.Unlock()
	f.changed("partition " + describeFaultPartition(kept))
	return nil
}

// Heal removes the partition. Other rules stay.
func (f *Faults) Heal() {
	f.mu.Lock()
	f.groups, f.partition = nil, nil
	f.mu.Unlock()
	f.changed("heal")
}

// DropOneWay drops all traffic from→to; traffic to→from is not affected.
// Either name may be AnyNode. The rule stays until UndropOneWay or Clear.
func (f *Faults) DropOneWay(from, to string) error {
	l, err := checkFaultLink("one-way drop", from, to)
	if err != nil {
		return err
	}
	f.mu.Lock()
	if f.oneWay == nil {
		f.oneWay = make(map[faultLink]struct{})
	}
	f.oneWay[l] = struct{}{}
	f.mu.Unlock()
	f.changed("drop " + l.String())
	return nil
}

// UndropOneWay removes the one-way drop from→to set by DropOneWay with the
// same arguments. It does nothing if there is no such rule.
func (f *Faults) UndropOneWay(from, to string) {
	l := faultLink{from, to}
	f.mu.Lock()
	_, ok := f.oneWay[l]
	delete(f.oneWay, l)
	f.mu.Unlock()
	if ok {
		f.changed("undrop " + l.String())
	}
}

// SetDropProbability makes Decide drop each message from→to with probability
// p. Either name may be AnyNode. p must be in [0, 1]; p = 0 removes the rule.
func (f *Faults) SetDropProbability(from, to string, p float64) error {
	l, err := checkFaultLink("drop probability", from, to)
	if err != nil {
		return err
	}
	if err := checkFaultProbability("drop probability", l, p); err != nil {
		return err
	}
	f.mu.Lock()
	setOrDeleteFaultRule(&f.dropP, l, p, p == 0)
	f.mu.Unlock()
	f.changed(fmt.Sprintf("drop probability %s p=%g", l, p))
	return nil
}

// SetDuplicate makes Decide duplicate each message from→to with probability
// p. Either name may be AnyNode. p must be in [0, 1]; p = 0 removes the rule.
func (f *Faults) SetDuplicate(from, to string, p float64) error {
	l, err := checkFaultLink("duplicate probability", from, to)
	if err != nil {
		return err
	}
	if err := checkFaultProbability("duplicate probability", l, p); err != nil {
		return err
	}
	f.mu.Lock()
	setOrDeleteFaultRule(&f.dupP, l, p, p == 0)
	f.mu.Unlock()
	f.changed(fmt.Sprintf("duplicate %s p=%g", l, p))
	return nil
}

// SetDelay makes Decide delay each message from→to by base plus a uniform
// random duration in [0, jitter). Either name may be AnyNode. Negative
// durations are an error; base = jitter = 0 removes the rule.
func (f *Faults) SetDelay(from, to string, base, jitter time.Duration) error {
	l, err := checkFaultLink("delay", from, to)
	if err != nil {
		return err
	}
	if base < 0 {
		return fmt.Errorf("cluster: faults: delay %s: base=%v is negative", l, base)
	}
	if jitter < 0 {
		return fmt.Errorf("cluster: faults: delay %s: jitter=%v is negative", l, jitter)
	}
	d := faultDelay{base, jitter}
	f.mu.Lock()
	setOrDeleteFaultRule(&f.delay, l, d, base == 0 && jitter == 0)
	f.mu.Unlock()
	f.changed("delay " + l.String() + " " + describeFaultDelay(d))
	return nil
}

// Clear removes every rule: the partition, one-way drops, probabilities and
// delays. Stats are kept.
func (f *Faults) Clear() {
	f.mu.Lock()
	f.groups, f.partition = nil, nil
	f.oneWay, f.dropP, f.dupP, f.delay = nil, nil, nil, nil
	f.mu.Unlock()
	f.changed("clear")
}

// Cut reports whether a partition or a one-way drop cuts from→to. Unlike
// Decide it draws no random numbers, ignores probabilities and does not count
// in Stats, so a receiver can apply it to traffic that the sender may already
// have filtered without changing the sender's odds or double-counting.
func (f *Faults) Cut(from, to string) bool {
	if f == nil || from == to || !f.active.Load() {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cutLocked(from, to)
}

// Decide returns the verdict for one message from→to, and counts it in
// Stats. Partitions and one-way drops are checked first and draw nothing;
// then the drop probability, the delay jitter and the duplicate probability
// each draw from the seeded source, in that order, only when the matching
// rule needs a random number (0 < p < 1, jitter > 0).
func (f *Faults) Decide(from, to string) Verdict {
	return f.decide(from, to, true)
}

// decide is Decide; withDuplicate false skips the duplicate rule, for
// transports (streams) that cannot duplicate.
func (f *Faults) decide(from, to string, withDuplicate bool) Verdict {
	if f == nil || from == to || !f.active.Load() {
		return Verdict{}
	}
	f.mu.Lock()
	var v Verdict
	switch {
	case f.cutLocked(from, to):
		v.Drop = true
	case f.chanceLocked(f.dropP, from, to):
		v.Drop = true
	default:
		if d, ok := lookupFaultRule(f.delay, from, to); ok {
			v.Delay = d.base
			if d.jitter > 0 {
				v.Delay += time.Duration(f.rngLocked().Int64N(int64(d.jitter)))
			}
		}
		if withDuplicate {
			v.Duplicate = f.chanceLocked(f.dupP, from, to)
		}
	}
	f.mu.Unlock()
	if v.Drop {
		f.dropped.Add(1)
	}
	if v.Delay > 0 {
		f.delayed.Add(1)
	}
	if v.Duplicate {
		f.duplicated.Add(1)
	}
	return v
}

// Stats returns the totals of injected faults.
func (f *Faults) Stats() FaultStats {
	if f == nil {
		return FaultStats{}
	}
	return FaultStats{
		Dropped:    f.dropped.Load(),
		Delayed:    f.delayed.Load(),
		Duplicated: f.duplicated.Load(),
	}
}

// Rules describes the active rules, one per element, in a stable order (the
// partition first, then by kind and link), for logs and the observer. It is
// empty when no rule is active.
func (f *Faults) Rules() []string {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	if f.partition != nil {
		out = append(out, "partition "+describeFaultPartition(f.partition))
	}
	for _, l := range sortedFaultLinks(f.oneWay) {
		out = append(out, "drop "+l.String())
	}
	for _, l := range sortedFaultLinks(f.dropP) {
		out = append(out, fmt.Sprintf("drop %s p=%g", l, f.dropP[l]))
	}
	for _, l := range sortedFaultLinks(f.delay) {
		out = append(out, "delay "+l.String()+" "+describeFaultDelay(f.delay[l]))
	}
	for _, l := range sortedFaultLinks(f.dupP) {
		out = append(out, fmt.Sprintf("duplicate %s p=%g", l, f.dupP[l]))
	}
	return out
}

// String is Rules joined with "; ", or "no faults".
func (f *Faults) String() string {
	r := f.Rules()
	if len(r) == 0 {
		return "no faults"
	}
	return strings.Join(r, "; ")
}

// OnChange registers fn to be called after every rule change with a short
// description of the change (for example "drop n1→n2" or "heal"), so that a
// node can log it. fn runs in the goroutine that made the change, after the
// change is in effect and without locks held; it must not block for long.
// With concurrent changes the calls may arrive in a different order than the
// changes took effect. The returned function unregisters fn.
func (f *Faults) OnChange(fn func(change string)) (remove func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listeners == nil {
		f.listeners = make(map[int]func(string))
	}
	id := f.nextListener
	f.nextListener++
	f.listeners[id] = fn
	return func() {
		f.mu.Lock()
		delete(f.listeners, id)
		f.mu.Unlock()
	}
}

func (f *Faults) changed(change string) {
	f.mu.Lock()
	f.active.Store(len(f.groups) > 0 || len(f.oneWay) > 0 || len(f.dropP) > 0 || len(f.dupP) > 0 || len(f.delay) > 0)
	ids := make([]int, 0, len(f.listeners))
	for id := range f.listeners {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	fns := make([]func(string), 0, len(ids))
	for _, id := range ids {
		fns = append(fns, f.listeners[id])
	}
	f.mu.Unlock()
	for _, fn := range fns {
		fn(change)
	}
}

func (f *Faults) cutLocked(from, to string) bool {
	if f.groups != nil {
		gf, okf := f.groups[from]
		gt, okt := f.groups[to]
		if okf && okt && gf != gt {
			return true
		}
	}
	_, ok := lookupFaultRule(f.oneWay, from, to)
	return ok
}

// chanceLocked looks up the probability rule for from→to in rules and draws
// against it; p = 1 needs no draw.
func (f *Faults) chanceLocked(rules map[faultLink]float64, from, to string) bool {
	p, ok := lookupFaultRule(rules, from, to)
	switch {
	case !ok || p <= 0:
		return false
	case p >= 1:
		return true
	default:
		return f.rngLocked().Float64() < p
	}
}

func (f *Faults) rngLocked() *rand.Rand {
	if f.rng == nil {
		s := uint64(f.seed)
		f.rng = rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
	}
	return f.rng
}

// lookupFaultRule finds the most specific rule for from→to.
func lookupFaultRule[V any](rules map[faultLink]V, from, to string) (V, bool) {
	for _, l := range [...]faultLink{{from, to}, {from, AnyNode}, {AnyNode, to}, {AnyNode, AnyNode}} {
		if v, ok := rules[l]; ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}

func setOrDeleteFaultRule[V any](m *map[faultLink]V, l faultLink, v V, remove bool) {
	if remove {
		delete(*m, l)
		return
	}
	if *m == nil {
		*m = make(map[faultLink]V)
	}
	(*m)[l] = v
}

func checkFaultLink(rule, from, to string) (faultLink, error) {
	switch {
	case from == "":
		return faultLink{}, fmt.Errorf("cluster: faults: %s: from is empty; name a node or use %q", rule, AnyNode)
	case to == "":
		return faultLink{}, fmt.Errorf("cluster: faults: %s: to is empty; name a node or use %q", rule, AnyNode)
	case from == to && from != AnyNode:
		return faultLink{}, fmt.Errorf("cluster: faults: %s: from and to are both %q; traffic to oneself is never faulted", rule, from)
	}
	return faultLink{from, to}, nil
}

func checkFaultProbability(rule string, l faultLink, p float64) error {
	if !(p >= 0 && p <= 1) { // also rejects NaN
		return fmt.Errorf("cluster: faults: %s %s: p=%v is outside [0, 1]", rule, l, p)
	}
	return nil
}

func sortedFaultLinks[V any](m map[faultLink]V) []faultLink {
	links := make([]faultLink, 0, len(m))
	for l := range m {
		links = append(links, l)
	}
	sort.Slice(links, func(i, j int) bool {
		if links[i].from != links[j].from {
			return links[i].from < links[j].from
		}
		return links[i].to < links[j].to
	})
	return links
}

func describeFaultPartition(groups [][]string) string {
	if len(groups) < 2 {
		return "(none)"
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = "{" + strings.Join(g, " ") + "}"
	}
	return strings.Join(parts, " | ")
}

func describeFaultDelay(d faultDelay) string {
	if d.jitter == 0 {
		return d.base.String()
	}
	return fmt.Sprintf("%v+[0,%v)", d.base, d.jitter)
}
