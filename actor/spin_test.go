package actor

import "testing"

// An emptied mailbox yields while yielding catches messages, stops after a
// run of misses, probes every 64 idle transitions, and a catch re-enables it.
func TestSpinPolicy(t *testing.T) {
	var p spinPolicy
	for i := 0; i < spinMisses; i++ {
		if !p.try() {
			t.Fatalf("idle %d: no yield before %d misses", i, spinMisses)
		}
		p.record(false)
	}
	yields := 0
	for i := 0; i < 128; i++ {
		if p.try() {
			yields++
			p.record(false)
		}
	}
	if yields != 2 {
		t.Fatalf("%d yields in 128 idle transitions after the misses, want 2 (one probe per 64)", yields)
	}
	for !p.try() {
	}
	p.record(true)
	if !p.try() {
		t.Fatal("a caught message did not re-enable yielding")
	}
}
