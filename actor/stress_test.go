package actor_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/distributed-go/distributed/actor"
)

// Many goroutines ask an actor while it is killed: every Ask ends with a
// reply or ErrDeadActor, none waits for its (absent) deadline.
func TestConcurrentAsksDuringKillNeverHang(t *testing.T) {
	s := newSystem(t)
	for round := 0; round < 20; round++ {
		pid, _ := s.Spawn(echoProps())
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					if _, err := actor.Ask[int](context.Background(), s, pid, i); err != nil {
						if !errors.Is(err, actor.ErrDeadActor) {
							errs <- err
						}
						return
					}
				}
			}()
		}
		_ = s.Kill(pid)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// Property: in a random forest of linked actors, killing one actor kills
// exactly the actors of its link component that do not trap exits, and a
// trapping actor stops the propagation (it receives an Exit message).
func TestLinkPropagationProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		s, err := actor.NewSystem(actor.Config{Name: "prop", Logger: quietLogger()})
		if err != nil {
			rt.Fatal(err)
		}
		defer s.Shutdown(context.Background())
		n := rapid.IntRange(2, 12).Draw(rt, "n")
		traps := make([]bool, n)
		pids := make([]*actor.PID, n)
		for i := range pids {
			traps[i] = rapid.Float64Range(0, 1).Draw(rt, "trapProb") < 0.3
			opts := []actor.PropsOption{}
			if traps[i] {
				opts = append(opts, actor.WithTrapExit())
			}
			pids[i], _ = s.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
				if p, ok := c.Message().(*actor.PID); ok {
					c.Link(p)
					c.Reply(true)
				}
			}, opts...))
		}
		adj := make([][]int, n)
		for i := 1; i < n; i++ {
			j := rapid.IntRange(0, i-1).Draw(rt, "parent")
			if _, err := actor.Ask[bool](context.Background(), s, pids[i], pids[j]); err != nil {
				rt.Fatal(err)
			}
			adj[i] = append(adj[i], j)
			adj[j] = append(adj[j], i)
		}
		victim := rapid.IntRange(0, n-1).Draw(rt, "victim")
		// Expected dead set: flood from the victim through non-trapping actors.
		dead := make([]bool, n)
		dead[victim] = true
		stack := []int{victim}
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, w := range adj[v] {
				if !dead[w] && !traps[w] {
					dead[w] = true
					stack = append(stack, w)
				}
			}
		}
		_ = s.Kill(pids[victim])
		for i, p := range pids {
			if dead[i] {
				if r, _ := s.WaitExit(context.Background(), p); r != actor.Killed {
					rt.Fatalf("actor %d exited %v, want killed", i, r)
				}
			}
		}
		// Every propagation has happened once the dead set is dead: the
		// survivors' exits would have been decided by signals already sent.
		// Check with a round trip through each survivor's mailbox.
		for i, p := range pids {
			if dead[i] {
				continue
			}
			if _, err := actor.Ask[bool](context.Background(), s, p, p); err != nil {
				rt.Fatalf("actor %d (trap=%v) should be alive: %v", i, traps[i], err)
			}
		}
	})
}
