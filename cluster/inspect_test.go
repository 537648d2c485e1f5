package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/cluster/clusterpb"
	"github.com/distributed-go/distributed/supervision"
)

// inspectWorker counts its messages and shows the count as its info.
func inspectWorker() *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		n := 0
		return actor.ReceiveFunc(func(c *actor.Context) {
			switch c.Message().(type) {
			case *actor.Started:
				c.SetInfo(func() string { return "ready" })
			case string:
				n++
			}
		})
	}, actor.WithKind("worker"))
}

func startInspectedNode(t *testing.T, name string, opts InspectOptions) (*Node, *actor.PID) {
	t.Helper()
	cfg := Local(name)
	cfg.Logger = testLogger(t)
	nd := startNode(t, cfg)
	if err := nd.ServeInspection(opts); err != nil {
		t.Fatal(err)
	}
	if err := nd.ServeInspection(opts); err == nil {
		t.Fatal("a second ServeInspection succeeded")
	}
	sup, err := supervision.Start(nd.System(), supervision.Spec{MaxRestarts: 10, Period: time.Minute,
		Children: []supervision.ChildSpec{{ID: "w", Props: inspectWorker()}}}, "services")
	if err != nil {
		t.Fatal(err)
	}
	return nd, sup
}

func findProcess(r *clusterpb.NodeReport, childID string) *clusterpb.ProcessReport {
	for _, p := range r.GetProcesses() {
		if p.GetChildId() == childID {
			return p
		}
	}
	return nil
}

func TestInspectReportsTreeInfoAndRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nd, sup := startInspectedNode(t, "n1", InspectOptions{AllowControl: true})
	r, err := nd.Inspect(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if r.GetNode() != "n1" || len(r.GetMembers()) != 1 || r.GetMembers()[0].GetState() != "alive" || !r.GetControlEnabled() {
		t.Fatalf("report header: %v", r)
	}
	w := findProcess(r, "w")
	if w == nil || w.GetInfo() != "ready" || w.GetChildType() != "worker" || w.GetChildRestarts() != 0 {
		t.Fatalf("worker in report: %v", w)
	}
	var root *clusterpb.ProcessReport
	for _, p := range r.GetProcesses() {
		if p.GetPid().GetId() == sup.ID() {
			root = p
		}
	}
	if root == nil || root.GetStrategy() != "one_for_one" || root.GetKind() != "supervisor" {
		t.Fatalf("root in report: %v", root)
	}

	// Kill the worker through the service: its supervisor restarts it.
	old, err := actor.PIDFromProto(w.GetPid())
	if err != nil {
		t.Fatal(err)
	}
	if err := nd.KillActor(ctx, old); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the worker restarted", 5*time.Second, func() bool {
		r, err := nd.Inspect(ctx, "n1")
		if err != nil {
			return false
		}
		w := findProcess(r, "w")
		return w != nil && w.GetChildRestarts() == 1 && w.GetPid().GetId() != old.ID()
	})
	// The old incarnation is gone: killing it again names the problem.
	if err := nd.KillActor(ctx, old); !errors.Is(err, ErrUnknownActor) {
		t.Fatalf("kill of a dead incarnation: %v, want ErrUnknownActor", err)
	}
	if _, err := nd.Inspect(ctx, "nope"); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("inspect of an unknown node: %v", err)
	}
	if err := nd.KillActor(ctx, actor.ServicePID("10.0.0.1:1", "x#1")); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("kill on an unknown address: %v", err)
	}
}

func TestInspectControlFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nd, _ := startInspectedNode(t, "n1", InspectOptions{AllowControl: true})
	part := &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Partition{Partition: &clusterpb.PartitionNodes{
		Groups: []*clusterpb.NodeGroup{{Nodes: []string{"n1"}}, {Nodes: []string{"n2", "n3"}}}}}}
	resp, err := nd.Control(ctx, "n1", part)
	if err != nil || len(resp.GetFaultRules()) != 1 || !strings.HasPrefix(resp.GetFaultRules()[0], "partition") {
		t.Fatalf("partition: %v %v", resp, err)
	}
	if !nd.Faults().Cut("n1", "n2") {
		t.Fatal("partition not applied")
	}
	delay := &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Delay{Delay: &clusterpb.SetLinkDelay{
		From: "n1", To: AnyNode, BaseNanos: int64(50 * time.Millisecond)}}}
	if errs := nd.ControlAll(ctx, delay); len(errs) != 0 {
		t.Fatal(errs)
	}
	drop := &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Drop{Drop: &clusterpb.SetLinkDrop{From: "n2", To: "n1", Probability: 1}}}
	if _, err := nd.Control(ctx, "n1", drop); err != nil {
		t.Fatal(err)
	}
	bad := &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Drop{Drop: &clusterpb.SetLinkDrop{From: "n2", To: "n1", Probability: 2}}}
	if _, err := nd.Control(ctx, "n1", bad); !errors.Is(err, ErrInvalidControl) {
		t.Fatalf("drop p=2: %v", err)
	}
	if got := fmt.Sprint(nd.Faults().Rules()); !strings.Contains(got, "delay n1→*") || !strings.Contains(got, "drop n2→n1") {
		t.Fatalf("rules: %s", got)
	}
	if _, err := nd.Control(ctx, "n1", &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Heal{Heal: &clusterpb.HealPartition{}}}); err != nil {
		t.Fatal(err)
	}
	if nd.Faults().Cut("n1", "n2") || len(nd.Faults().Rules()) != 2 {
		t.Fatalf("after heal: %v", nd.Faults().Rules())
	}
	if _, err := nd.Control(ctx, "n1", &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Clear{Clear: &clusterpb.ClearFaults{}}}); err != nil {
		t.Fatal(err)
	}
	if len(nd.Faults().Rules()) != 0 {
		t.Fatalf("after clear: %v", nd.Faults().Rules())
	}
	if _, err := nd.Control(ctx, "n1", &clusterpb.ControlRequest{}); !errors.Is(err, ErrInvalidControl) {
		t.Fatalf("empty request: %v", err)
	}

}

// A node without control refuses, and says how to enable it.
func TestInspectControlDisabled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	part := &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Partition{Partition: &clusterpb.PartitionNodes{
		Groups: []*clusterpb.NodeGroup{{Nodes: []string{"n1"}}, {Nodes: []string{"n2", "n3"}}}}}}
	ro, _ := startInspectedNode(t, "ro", InspectOptions{})
	_, err := ro.Control(ctx, "ro", part)
	if !errors.Is(err, ErrControlDisabled) || !strings.Contains(err.Error(), "--actions") {
		t.Fatalf("control on a read-only node: %v", err)
	}
	if ro.Faults().Cut("n1", "n2") {
		t.Fatal("a refused partition was applied")
	}
}

func TestInspectCrashCallsHook(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	crashed := make(chan struct{})
	nd, _ := startInspectedNode(t, "n1", InspectOptions{AllowControl: true, OnCrash: func() { close(crashed) }})
	if _, err := nd.Control(ctx, "n1", &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Crash{Crash: &clusterpb.CrashNode{}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-crashed:
	case <-ctx.Done():
		t.Fatal("OnCrash was not called")
	}
}

func TestInspectCapsProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nd, _ := startInspectedNode(t, "n1", InspectOptions{MaxProcesses: 1})
	r, err := nd.Inspect(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GetProcesses()) != 1 || int(r.GetProcessesOmitted()) != len(nd.System().Processes())-1 || r.GetProcessesOmitted() == 0 {
		t.Fatalf("%d processes, %d omitted, %d live", len(r.GetProcesses()), r.GetProcessesOmitted(), len(nd.System().Processes()))
	}
}

func TestInspectBeforeStart(t *testing.T) {
	nd, err := NewNode(Local("n1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := nd.ServeInspection(InspectOptions{}); err == nil {
		t.Error("ServeInspection before Start succeeded")
	}
	if _, err := nd.Inspect(ctx, "n1"); err == nil {
		t.Error("Inspect before Start succeeded")
	}
	if _, err := nd.Control(ctx, "n1", &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Heal{Heal: &clusterpb.HealPartition{}}}); err == nil {
		t.Error("Control before Start succeeded")
	}
}
