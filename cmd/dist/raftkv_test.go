package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func kvStatus(t *testing.T, addr string) []memberStatus {
	t.Helper()
	code, out, errOut := dist("kv", "status", "--addr", addr, "--json")
	if code != exitOK {
		return nil // a node may be restarting: the caller polls
	}
	var sts []memberStatus
	if err := json.Unmarshal([]byte(out), &sts); err != nil {
		t.Fatalf("dist kv status --json: %v\n%s%s", err, out, errOut)
	}
	return sts
}

func leaderOf(sts []memberStatus) (memberStatus, bool) {
	for _, s := range sts {
		if s.Role == "leader" {
			return s, true
		}
	}
	return memberStatus{}, false
}

// TestDemoRaftKV: dist demo runs the replicated key-value store by default;
// dist kv reads and writes it; killing the leader's actor with dist kill
// gives a new leader (a later term) and loses nothing; dist check judges a
// history recorded while leaders are killed.
func TestDemoRaftKV(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-process cluster")
	}
	d := startDemo(t)
	a := d.addr
	var lead memberStatus
	waitFor(t, "a Raft leader", 30*time.Second, func() bool {
		var ok bool
		lead, ok = leaderOf(kvStatus(t, a))
		return ok
	})
	// The tour is printed once the cluster is up, which can be after the
	// leader answers kv status.
	waitFor(t, "the tour to mention the Raft leader", 10*time.Second, func() bool {
		return strings.Contains(d.out.String(), "Kill the leader")
	})
	if code, out, errOut := dist("kv", "put", "--addr", a, "greeting", "hello"); code != exitOK || !strings.Contains(out, "OK") {
		t.Fatalf("kv put: %d %s %s", code, out, errOut)
	}
	if code, out, _ := dist("kv", "get", "--addr", a, "greeting"); code != exitOK || strings.TrimSpace(out) != "hello" {
		t.Fatalf("kv get: %d %q", code, out)
	}
	if code, _, errOut := dist("kv", "get", "--addr", a, "nothing-here"); code != exitNotFound || !strings.Contains(errOut, "not found") {
		t.Fatalf("kv get of a missing key: %d %s", code, errOut)
	}
	if code, out, _ := dist("kv", "cas", "--addr", a, "greeting", "hello", "bonjour"); code != exitOK || !strings.Contains(out, "swapped") {
		t.Fatalf("kv cas: %d %s", code, out)
	}
	if code, out, _ := dist("kv", "cas", "--addr", a, "greeting", "hello", "hi"); code != exitFailure || !strings.Contains(out, `"bonjour"`) {
		t.Fatalf("kv cas with a stale value: %d %s", code, out)
	}

	// Kill the leader's actor by its name.
	name := lead.Node + ":raft.kv." + string(rune('0'+lead.ID))
	if code, out, errOut := dist("kill", "--addr", a, name); code != exitOK {
		t.Fatalf("dist kill %s: %d %s %s", name, code, out, errOut)
	}
	waitFor(t, "a leader in a later term", 15*time.Second, func() bool {
		l, ok := leaderOf(kvStatus(t, a))
		return ok && l.Term > lead.Term
	})
	if code, out, _ := dist("kv", "get", "--addr", a, "greeting"); code != exitOK || strings.TrimSpace(out) != "bonjour" {
		t.Fatalf("kv get after the leader was killed: %d %q", code, out)
	}

	html := filepath.Join(t.TempDir(), "history.html")
	code, out, errOut := dist("check", "--addr", a, "--d", "3s", "--out", html)
	if code != exitOK || !strings.Contains(out, "porcupine: Ok") || !strings.Contains(out, "killed the leader") {
		t.Fatalf("dist check: %d\n%s%s", code, out, errOut)
	}
}
