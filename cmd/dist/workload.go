package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/cluster"
	"github.com/distributed-go/distributed/supervision"
)

// Workload is a steady load that dist runs on every node: what `dist demo`
// shows in the observer, and what `dist node --workload` starts.
//
// A workload is added by a file of this package that registers it in an
// init function:
//
//	func init() { registerWorkload(raftKV{}) }
//
// and, if it serves the key-value commands, sets kvCommand and
// checkCommand. `dist demo` runs the workload named by defaultWorkload.
type Workload interface {
	// Name is what --workload selects.
	Name() string
	// Start starts the workload's part on one node, after the node has
	// started and possibly before it has joined the others (members come
	// and go; a workload must cope). It returns once that part runs; the
	// node is reported ready (/health) only then. stop ends it.
	Start(ctx context.Context, env WorkloadEnv) (stop func(context.Context) error, err error)
}

// WorkloadEnv is what a workload gets from the node that runs it.
type WorkloadEnv struct {
	Node *cluster.Node
	// DataDir is the node's data directory ("" if none): durable state goes
	// under it, so that a crashed node restarts with it.
	DataDir string
	// Peers are the names of the nodes that the cluster is expected to
	// have, this one included, when they are known (dist demo).
	Peers []string
	// PeerAddrs maps those names to their actor transport addresses, when
	// --peers gives them (name=host:port).
	PeerAddrs map[string]string
	Logger    *zap.Logger
	// Mux serves the node's HTTP endpoints (the observer's under "/"): a
	// workload may add its own under /api/<workload>/.
	Mux *http.ServeMux
	// Secret is the cluster secret ("" for an open cluster): endpoints a
	// workload adds check observer.Token(Secret) as the observer does.
	Secret string
}

var workloads = map[string]Workload{}

// registerWorkload makes a workload selectable by name.
func registerWorkload(w Workload) {
	if _, dup := workloads[w.Name()]; dup {
		panic("dist: workload " + w.Name() + " registered twice")
	}
	workloads[w.Name()] = w
}

// defaultWorkload is the workload dist demo runs: the replicated key-value
// store when it is built in, else the demo services.
func defaultWorkload() string {
	if _, ok := workloads["raft-kv"]; ok {
		return "raft-kv"
	}
	return "services"
}

func workloadNames() []string {
	names := []string{"none"}
	for n := range workloads {
		names = append(names, n)
	}
	sort.Strings(names[1:])
	return names
}

func init() { registerWorkload(servicesWorkload{}) }

// servicesWorkload is a small supervised service on every node: a counter
// in the process group "demo.counters", a pinger that sends increments to
// the counters of every node round-robin, and a pool of two workers under
// a nested supervisor. Every actor reports its state (Context.SetInfo), so
// the observer shows it, and killing any of them shows its supervisor at
// work.
type servicesWorkload struct{}

func (servicesWorkload) Name() string { return "services" }

const counterGroup = "demo.counters"

type pingTick struct{}

func (servicesWorkload) Start(ctx context.Context, env WorkloadEnv) (func(context.Context) error, error) {
	n := env.Node
	counter := actor.PropsFromProducer(func() actor.Actor {
		var total, fromOthers atomic.Int64
		return actor.ReceiveFunc(func(c *actor.Context) {
			switch m := c.Message().(type) {
			case *actor.Started:
				c.SetInfo(func() string {
					return fmt.Sprintf("count=%d (%d from other nodes)", total.Load(), fromOthers.Load())
				})
				if err := n.JoinGroup(counterGroup, c.Self()); err != nil {
					c.Logger().Warn("join group", zap.Error(err))
				}
			case *wrapperspb.Int64Value:
				t := total.Add(m.GetValue())
				if s := c.Sender(); s != nil && s.Address() != c.Self().Address() {
					fromOthers.Add(m.GetValue())
				}
				c.Reply(wrapperspb.Int64(t))
			}
		})
	}, actor.WithKind("counter"))
	pinger := actor.PropsFromProducer(func() actor.Actor {
		var sent, acked atomic.Int64
		var targets atomic.Int32
		next := 0
		return actor.ReceiveFunc(func(c *actor.Context) {
			switch c.Message().(type) {
			case *actor.Started:
				c.SetInfo(func() string {
					return fmt.Sprintf("sent=%d acked=%d counters=%d", sent.Load(), acked.Load(), targets.Load())
				})
				c.Tick(50*time.Millisecond, pingTick{})
			case pingTick:
				members := n.GroupMembers(counterGroup)
				targets.Store(int32(len(members)))
				if len(members) == 0 {
					return
				}
				next = (next + 1) % len(members)
				c.Request(members[next], wrapperspb.Int64(1))
				sent.Add(1)
			case *wrapperspb.Int64Value:
				acked.Add(1)
			}
		})
	}, actor.WithKind("pinger"))
	worker := func() *actor.Props {
		return actor.PropsFromProducer(func() actor.Actor {
			var jobs atomic.Int64
			return actor.ReceiveFunc(func(c *actor.Context) {
				switch c.Message().(type) {
				case *actor.Started:
					c.SetInfo(func() string { return fmt.Sprintf("jobs=%d", jobs.Load()) })
					c.Tick(200*time.Millisecond, pingTick{})
				case pingTick:
					jobs.Add(1)
				}
			})
		}, actor.WithKind("worker"))
	}
	pool, err := supervision.Props(supervision.Spec{Strategy: supervision.OneForOne, MaxRestarts: 10, Period: 10 * time.Second,
		Children: []supervision.ChildSpec{{ID: "worker-1", Props: worker()}, {ID: "worker-2", Props: worker()}}})
	if err != nil {
		return nil, err
	}
	sup, err := supervision.StartContext(ctx, n.System(), supervision.Spec{
		Strategy: supervision.OneForOne, MaxRestarts: 20, Period: 10 * time.Second,
		Children: []supervision.ChildSpec{
			{ID: "counter", Props: counter},
			{ID: "pinger", Props: pinger},
			{ID: "workers", Props: pool, Type: supervision.Supervisor},
		},
	}, "services")
	if err != nil {
		return nil, fmt.Errorf("services workload: %w", err)
	}
	return func(ctx context.Context) error { return n.System().Stop(ctx, sup) }, nil
}
