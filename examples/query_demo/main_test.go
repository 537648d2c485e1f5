//go:build !race

package main

import (
	"strings"
	"testing"
)

// The demo runs three cluster nodes in one process (built without -race,
// as the cluster package's multi-node tests).
func TestDemo(t *testing.T) {
	var out strings.Builder
	if err := run(&out, 20000, nil); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"passenger_count|", "count(*)|", "PartialAggregate", "check: every count matches"} {
		if !strings.Contains(s, want) {
			t.Fatalf("output lacks %q:\n%s", want, s)
		}
	}
}
