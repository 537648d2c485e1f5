package supervision_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/supervision"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait for a condition in these tests.
const waitLimit = 10 * time.Second

// newSystem starts a system whose logs go to the test log (Info and above)
// and to the returned observer, and shuts it down when the test ends.
func newSystem(t *testing.T) (*actor.System, *observer.ObservedLogs) {
	t.Helper()
	obs, logs := observer.New(zapcore.InfoLevel)
	tl := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	log := zap.New(zapcore.NewTee(tl.Core(), obs))
	s, err := actor.NewSystem(actor.Config{Name: "test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s, logs
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds, failing the test after waitLimit.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// recorder collects lifecycle events of test children, in order.
type recorder struct {
	mu      sync.Mutex
	events  []string
	next    int // first event not yet taken
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// expect waits for the next len(want) events and compares them with want.
func (r *recorder) expect(t testing.TB, want ...string) {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		r.mu.Lock()
		if len(r.events)-r.next >= len(want) {
			got := slices.Clone(r.events[r.next : r.next+len(want)])
			r.next += len(want)
			r.mu.Unlock()
			if !slices.Equal(got, want) {
				t.Fatalf("events:\n got %q\nwant %q", got, want)
			}
			return
		}
		got := slices.Clone(r.events[r.next:])
		r.mu.Unlock()
		select {
		case <-r.changed:
		case <-timer.C:
			t.Fatalf("timed out waiting for events %q; got %q", want, got)
		}
	}
}

// noMore checks that no event arrived beyond those taken by expect. Call it
// only once the supervisor has settled (everything it does on an exit
// happens in one message, so a settled state has no events in flight).
func (r *recorder) noMore(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if rest := r.events[r.next:]; len(rest) > 0 {
		t.Fatalf("unexpected events %q", rest)
	}
}

// Messages understood by probe children.
type (
	// exitWith makes the child exit with the reason.
	exitWith struct{ reason actor.Reason }
	// whoAreYou is answered with the child's id.
	whoAreYou struct{}
	// blockUntil makes the child's handler block: it closes entered, then
	// waits until release is closed.
	blockUntil struct{ entered, release chan struct{} }
)

// probeOpts tune a probe child.
type probeOpts struct {
	trap      bool   // trap exit signals and ignore them
	failStart string // exit with this error while starting
	panicInit bool   // panic while starting
	kind      string
}

// probe is a test child that records "start:id" and "stop:id:reason" (and,
// when trapping, "trapped:id:reason") and obeys the probe messages.
func probe(rec *recorder, id string, o probeOpts) *actor.Props {
	k := o.kind
	if k == "" {
		k = "probe"
	}
	opts := []actor.PropsOption{actor.WithKind(k)}
	if o.trap {
		opts = append(opts, actor.WithTrapExit())
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return actor.ReceiveFunc(func(c *actor.Context) {
			switch m := c.Message().(type) {
			case *actor.Started:
				switch {
				case o.panicInit:
					rec.add("panic:" + id)
					panic("cannot start " + id)
				case o.failStart != "":
					rec.add("fail:" + id)
					c.Exit(actor.Errorf("%s", o.failStart))
				default:
					rec.add("start:" + id)
				}
			case *actor.Stopping:
				rec.add("stop:" + id + ":" + m.Reason.Kind.String())
			case *actor.Exit:
				rec.add("trapped:" + id + ":" + m.Reason.Kind.String())
			case exitWith:
				c.Exit(m.reason)
			case whoAreYou:
				c.Reply(id)
			case blockUntil:
				close(m.entered)
				<-m.release
			}
		})
	}, opts...)
}

func worker(rec *recorder, id string) supervision.ChildSpec {
	return supervision.ChildSpec{ID: id, Props: probe(rec, id, probeOpts{})}
}

func workers(rec *recorder, ids ...string) []supervision.ChildSpec {
	var out []supervision.ChildSpec
	for _, id := range ids {
		out = append(out, worker(rec, id))
	}
	return out
}

func startSup(t testing.TB, sys *actor.System, spec supervision.Spec) *actor.PID {
	t.Helper()
	pid, err := supervision.Start(sys, spec, "")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return pid
}

// children returns the supervisor's children by id (oldest first in ids).
func children(t testing.TB, sys *actor.System, sup *actor.PID) (byID map[string]supervision.ChildInfo, ids []string) {
	t.Helper()
	list, err := supervision.WhichChildren(ctxT(t), sys, sup)
	if err != nil {
		t.Fatalf("WhichChildren: %v", err)
	}
	byID = make(map[string]supervision.ChildInfo)
	for i := len(list) - 1; i >= 0; i-- {
		byID[list[i].ID] = list[i]
		ids = append(ids, list[i].ID)
	}
	return byID, ids
}

// pidOf returns the running PID of child id.
func pidOf(t testing.TB, sys *actor.System, sup *actor.PID, id string) *actor.PID {
	t.Helper()
	byID, _ := children(t, sys, sup)
	c, ok := byID[id]
	if !ok || c.PID == nil {
		t.Fatalf("child %q is not running: %+v", id, byID)
	}
	return c.PID
}

// settled waits until no child of sup has the PID old any more: the
// supervisor has handled old's exit completely.
func settled(t testing.TB, sys *actor.System, sup *actor.PID, old *actor.PID) {
	t.Helper()
	eventually(t, "supervisor to handle the exit of "+old.String(), func() bool {
		list, err := supervision.WhichChildren(ctxT(t), sys, sup)
		if err != nil {
			t.Fatalf("WhichChildren: %v", err)
		}
		for _, c := range list {
			if c.PID.Equal(old) {
				return false
			}
		}
		return true
	})
}

// kill kills pid and waits until it is dead.
func kill(t testing.TB, sys *actor.System, pid *actor.PID) {
	t.Helper()
	if err := sys.Kill(pid); err != nil {
		t.Fatalf("Kill %s: %v", pid, err)
	}
	if _, err := sys.WaitExit(ctxT(t), pid); err != nil {
		t.Fatal(err)
	}
}

// crash makes pid exit with reason and waits until it is dead.
func crash(t testing.TB, sys *actor.System, pid *actor.PID, reason actor.Reason) {
	t.Helper()
	sys.Send(pid, exitWith{reason})
	if _, err := sys.WaitExit(ctxT(t), pid); err != nil {
		t.Fatal(err)
	}
}

// logged reports whether a log entry has the field report=report and,
// unless child is empty, child=child.
func logged(logs *observer.ObservedLogs, report, child string) bool {
	for _, e := range logs.All() {
		m := e.ContextMap()
		if m["report"] == report && (child == "" || m["child"] == child) {
			return true
		}
	}
	return false
}

func mustContain(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
