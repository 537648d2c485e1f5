package main

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The arguments that deploy/k8s/statefulset.yaml passes to dist node are
// flags that dist node accepts.
func TestKubernetesArgsParse(t *testing.T) {
	b, err := os.ReadFile("../../deploy/k8s/statefulset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var sts struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Args []string `yaml:"args"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(b, &sts); err != nil {
		t.Fatal(err)
	}
	cs := sts.Spec.Template.Spec.Containers
	if len(cs) != 1 || len(cs[0].Args) < 2 || cs[0].Args[0] != "node" {
		t.Fatalf("containers: %+v", cs)
	}
	r := strings.NewReplacer("$(POD_NAME)", "dist-0", "$(POD_IP)", "10.0.0.7", "$(POD_NAMESPACE)", "default")
	var args []string
	for _, a := range cs[0].Args[1:] {
		args = append(args, r.Replace(a))
	}
	var f nodeFlags
	fs := nodeFlagSet(&f)
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		t.Fatalf("dist node rejects the StatefulSet's arguments %q: %v", args, err)
	}
	if f.name != "dist-0" || f.advertise != "10.0.0.7" || f.data != "/data" || !strings.Contains(f.join, "dist-headless.default.svc") {
		t.Fatalf("parsed: %+v", f)
	}
	if _, err := withAdvertise(f.listen, f.advertise); err != nil {
		t.Fatal(err)
	}
	// The Raft workload's peers name each pod's actor transport by the
	// address the pod advertises for it: a member reaches the others only
	// if the strings are equal.
	self, err := withAdvertise(f.listen, f.remoteAdvertise)
	if err != nil {
		t.Fatal(err)
	}
	names, addrs, err := parsePeers(f.peers)
	if err != nil || f.workload != "raft-kv" || len(names) != 3 {
		t.Fatalf("workload %q, peers %v (%v)", f.workload, names, err)
	}
	if addrs["dist-0"] != self || self != "dist-0.dist-headless.default.svc.cluster.local:7000" {
		t.Fatalf("dist-0 advertises %q, its peer entry is %q", self, addrs["dist-0"])
	}
}
