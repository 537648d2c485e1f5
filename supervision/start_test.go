package supervision_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/supervision"
)

// If a child fails to start, the ones already started are stopped in
// reverse order, the rest are not started, and Start returns the error.
func TestStartFailureAtInit(t *testing.T) {
	tests := []struct {
		name   string
		b      probeOpts
		events []string
		errs   []string
	}{
		{
			name:   "exit while starting",
			b:      probeOpts{failStart: "no database"},
			events: []string{"start:a", "fail:b", "stop:b:error", "stop:a:shutdown"},
			errs:   []string{`failed to start child "b"`, "no database"},
		},
		{
			name:   "panic while starting",
			b:      probeOpts{panicInit: true},
			events: []string{"start:a", "panic:b", "stop:b:error", "stop:a:shutdown"},
			errs:   []string{`failed to start child "b"`, "cannot start b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys, logs := newSystem(t)
			rec := newRecorder()
			specs := workers(rec, "a", "b", "c")
			specs[1].Props = probe(rec, "b", tt.b)
			pid, err := supervision.Start(sys, supervision.Spec{Strategy: supervision.OneForAll, Children: specs}, "root")
			mustContain(t, err, tt.errs...)
			if pid != nil {
				t.Fatalf("Start returned a PID with its error")
			}
			rec.expect(t, tt.events...)
			rec.noMore(t)
			if !logged(logs, "start_error", "b") {
				t.Fatal("no start_error report")
			}
			if _, ok := sys.WhereIs("root"); ok {
				t.Fatal("the failed supervisor's name is still registered")
			}
		})
	}
}

// A nested supervisor that fails to start makes its parent fail to start.
func TestNestedStartFailure(t *testing.T) {
	sys, _ := newSystem(t)
	rec := newRecorder()
	sub, err := supervision.Props(supervision.Spec{Children: []supervision.ChildSpec{
		worker(rec, "x"),
		{ID: "y", Props: probe(rec, "y", probeOpts{failStart: "no disk"})},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = supervision.Start(sys, supervision.Spec{Children: []supervision.ChildSpec{
		worker(rec, "a"),
		{ID: "sub", Type: supervision.Supervisor, Props: sub},
		worker(rec, "b"),
	}}, "")
	mustContain(t, err, `failed to start child "sub"`, `failed to start child "y"`, "no disk")
	rec.expect(t, "start:a", "start:x", "fail:y", "stop:y:error", "stop:x:shutdown", "stop:a:shutdown")
	rec.noMore(t)
}

// slowInit is a child whose Started handler takes d, as a slow connect would.
func slowInit(d time.Duration) *actor.Props {
	return actor.PropsFromFunc(func(c *actor.Context) {
		if _, ok := c.Message().(*actor.Started); ok {
			time.Sleep(d)
		}
	})
}

// A child that takes longer than its StartTimeout fails to start. (It is
// killed, which takes effect when its slow Started handler returns.)
func TestStartTimeout(t *testing.T) {
	sys, _ := newSystem(t)
	_, err := supervision.Start(sys, supervision.Spec{Children: []supervision.ChildSpec{
		{ID: "slow", Props: slowInit(200 * time.Millisecond), StartTimeout: 20 * time.Millisecond},
	}}, "")
	mustContain(t, err, `failed to start child "slow"`, "did not start within")
}

func TestStartContextCancelled(t *testing.T) {
	sys, _ := newSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := supervision.StartContext(ctx, sys, supervision.Spec{Children: []supervision.ChildSpec{
		{ID: "slow", Props: slowInit(200 * time.Millisecond)},
	}}, "root")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("StartContext = %v, want a deadline error", err)
	}
	if pid, ok := sys.WhereIs("root"); ok {
		if r, err := sys.WaitExit(ctxT(t), pid); err != nil || r != actor.Killed {
			t.Fatalf("supervisor exit = %v, %v; want killed", r, err)
		}
	}
}

func TestValidation(t *testing.T) {
	props := actor.PropsFromFunc(func(*actor.Context) {})
	w := func(id string) supervision.ChildSpec { return supervision.ChildSpec{ID: id, Props: props} }
	factory := func(any) (*actor.Props, error) { return props, nil }
	tests := []struct {
		name string
		spec supervision.Spec
		want string
	}{
		{"duplicate id", supervision.Spec{Children: []supervision.ChildSpec{w("a"), w("b"), w("a")}},
			`supervision: children[2].ID "a" is duplicated`},
		{"empty id", supervision.Spec{Children: []supervision.ChildSpec{w("a"), w("")}},
			"supervision: children[1].ID is empty"},
		{"nil props", supervision.Spec{Children: []supervision.ChildSpec{{ID: "a"}}},
			"supervision: children[0].Props is nil (set Props or Factory)"},
		{"props and factory", supervision.Spec{Children: []supervision.ChildSpec{{ID: "a", Props: props, Factory: factory}}},
			"supervision: children[0]: set only one of Props and Factory"},
		{"zero period", supervision.Spec{MaxRestarts: 3},
			"supervision: Period must be > 0, got 0s"},
		{"negative period", supervision.Spec{MaxRestarts: 3, Period: -time.Second},
			"supervision: Period must be > 0, got -1s"},
		{"negative max restarts", supervision.Spec{MaxRestarts: -1, Period: time.Second},
			"supervision: MaxRestarts must be >= 0, got -1"},
		{"simple without spec", supervision.Spec{Strategy: supervision.SimpleOneForOne},
			"supervision: simple_one_for_one needs exactly one child spec, got 0"},
		{"simple with two specs", supervision.Spec{Strategy: supervision.SimpleOneForOne, Children: []supervision.ChildSpec{w("a"), w("b")}},
			"supervision: simple_one_for_one needs exactly one child spec, got 2"},
		{"simple with a name", supervision.Spec{Strategy: supervision.SimpleOneForOne, Children: []supervision.ChildSpec{{ID: "a", Props: props, Name: "n"}}},
			"supervision: children[0].Name must be empty for simple_one_for_one"},
		{"bad shutdown", supervision.Spec{Children: []supervision.ChildSpec{{ID: "a", Props: props, Shutdown: -5}}},
			"supervision: children[0].Shutdown must be > 0 or ShutdownBrutalKill"},
		{"bad start timeout", supervision.Spec{Children: []supervision.ChildSpec{{ID: "a", Props: props, StartTimeout: -1}}},
			"supervision: children[0].StartTimeout must be > 0"},
		{"unknown strategy", supervision.Spec{Strategy: 9}, "supervision: Strategy 9 is unknown"},
		{"unknown restart type", supervision.Spec{Children: []supervision.ChildSpec{{ID: "a", Props: props, Restart: 7}}},
			"supervision: children[0].Restart 7 is unknown"},
	}
	sys, _ := newSystem(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := supervision.Props(tt.spec)
			mustContain(t, err, tt.want)
			if !errors.Is(err, supervision.ErrInvalidSpec) {
				t.Fatalf("%v does not match ErrInvalidSpec", err)
			}
			// Start validates before it spawns anything.
			before := len(sys.Processes())
			if _, err := supervision.Start(sys, tt.spec, ""); !errors.Is(err, supervision.ErrInvalidSpec) {
				t.Fatalf("Start = %v", err)
			}
			if after := len(sys.Processes()); after != before {
				t.Fatalf("Start of an invalid spec spawned %d actors", after-before)
			}
		})
	}
	if _, err := supervision.Props(supervision.Spec{}); err != nil {
		t.Fatalf("the zero Spec is invalid: %v", err)
	}
	if _, err := supervision.Props(supervision.Spec{MaxRestarts: 0, Period: time.Second}); err != nil {
		t.Fatalf("MaxRestarts 0 with a Period is invalid: %v", err)
	}
}
