package saga

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
)

// TestParallelStage: the actions of a stage are under way at the same time
// (each participant waits until both have arrived); a failure in one branch
// compensates the other branch and the steps before, in reverse order.
func TestParallelStage(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(map[bool]string{false: "commit", true: "one branch fails"}[fail], func(t *testing.T) {
			sys := newSystem(t)
			var mu sync.Mutex
			applied := map[string]int{}
			arrived := make(chan string, 4)
			release := make(chan struct{})
			handler := func(name string, wait, refuse bool) Handler {
				return Handler{
					Action: func(req Request) ([]byte, error) {
						if wait {
							arrived <- name
							<-release
						}
						if refuse {
							return nil, Failf("%s refused", name)
						}
						mu.Lock()
						applied[name]++
						mu.Unlock()
						return nil, nil
					},
					Compensate: func(req Request) error {
						mu.Lock()
						applied[name]--
						mu.Unlock()
						return nil
					},
				}
			}
			reserve := spawn(t, sys, ParticipantProps(NewBarrier(), handler("reserve", false, false)))
			pay := spawn(t, sys, ParticipantProps(NewBarrier(), handler("pay", true, false)))
			ship := spawn(t, sys, ParticipantProps(NewBarrier(), handler("ship", true, fail)))
			def := &Definition{Name: "p", Steps: []Step{
				{Name: "reserve", Participant: To(reserve)},
				{Name: "pay", Participant: To(pay)},
				{Name: "ship", Participant: To(ship), Parallel: true},
			}}
			m, err := Start(sys, Config{Dir: t.TempDir(), Definitions: []*Definition{def}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := m.Begin(ctx, "p", "s1", nil); err != nil {
				t.Fatal(err)
			}
			// Both branches are under way before either answers.
			got := map[string]bool{<-arrived: true, <-arrived: true}
			if !got["pay"] || !got["ship"] {
				t.Fatalf("arrived: %v", got)
			}
			close(release)
			in, err := m.Wait(ctx, "s1")
			if err != nil {
				t.Fatal(err)
			}
			h, _ := m.History("s1")
			k := kinds(h)
			if !fail {
				if in.Status != Committed {
					t.Fatalf("status %s: %v", in.Status, k)
				}
				if !reflect.DeepEqual(k[:6], []string{"STARTED", "SENT 0", "DONE 0", "SENT 1", "SENT 2", k[5]}) {
					t.Fatalf("history %v", k)
				}
				if applied["reserve"] != 1 || applied["pay"] != 1 || applied["ship"] != 1 {
					t.Fatalf("applied %v", applied)
				}
				return
			}
			if in.Status != Compensated {
				t.Fatalf("status %s: %v", in.Status, k)
			}
			// ship refused; pay and reserve were compensated, in that order.
			var comps []int
			for _, ev := range h {
				if ev.Kind == sagapb.EventKind_EVENT_DONE && ev.Phase == sagapb.Phase_PHASE_COMPENSATION {
					comps = append(comps, ev.Step)
				}
			}
			if !reflect.DeepEqual(comps, []int{1, 0}) {
				t.Fatalf("compensated steps %v; history %v", comps, k)
			}
			if applied["reserve"] != 0 || applied["pay"] != 0 || applied["ship"] != 0 {
				t.Fatalf("applied %v", applied)
			}
		})
	}
}

func TestParallelFirstStepIsRejected(t *testing.T) {
	def := &Definition{Name: "p", Steps: []Step{{Name: "a", Participant: To(nil), Parallel: true}}}
	if _, err := def.normalize(); err == nil {
		t.Fatal("a Parallel first step was accepted")
	}
}
