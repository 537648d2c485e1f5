package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestStory runs the demo and checks that it tells the seed's story, in
// order.
func TestStory(t *testing.T) {
	var buf bytes.Buffer
	out = &buf
	if err := run(); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, buf.String())
	}
	want := []string{
		"[INFO] Starting Saga transaction demo",
		"[INFO] Step 1: Reserve inventory - SUCCESS",
		"[INFO] Step 2: Process payment - SUCCESS",
		"[INFO] Step 3: Update order status - SUCCESS",
		"[INFO] Saga transaction completed successfully",
		"[INFO] Step 2: Process payment - FAILED",
		"[INFO] Compensating Step 1: Release inventory - SUCCESS",
		"[INFO] Saga transaction rolled back successfully",
		"killed during Step 2: Process payment",
		"Supervisor restarted the coordinator",
		"it resumes from the journal at Step 2",
		"[INFO] Step 2: Process payment - SUCCESS",
		"[INFO] Saga transaction completed successfully",
		"crashed during Step 3: Update order status",
		"started on the same data directory",
		"resuming at Step 3",
		"[INFO] Step 3: Update order status - SUCCESS",
		"[INFO] Saga transaction completed successfully",
		"[INFO] All participants agree with the saga outcomes",
	}
	text := buf.String()
	pos := 0
	for _, w := range want {
		i := strings.Index(text[pos:], w)
		if i < 0 {
			t.Fatalf("output lacks %q after offset %d:\n%s", w, pos, text)
		}
		pos += i + len(w)
	}
}
