package saga

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/saga/journal"
	"github.com/distributed-go/distributed/behaviors/saga/sagapb"
	"github.com/distributed-go/distributed/supervision"
)

// Errors callers branch on with errors.Is.
var (
	// ErrExists: a saga with that id was started before (whatever its
	// state). Starting a saga is idempotent by id: a client that retries
	// Begin after an unclear failure gets ErrExists, not a second saga.
	ErrExists = errors.New("saga: a saga with this id exists")
	// ErrNotFound: no saga has that id.
	ErrNotFound = errors.New("saga: no such saga")
	// ErrUnknownDefinition: no definition is registered under that name.
	ErrUnknownDefinition = errors.New("saga: unknown definition")
	// ErrNotStuck: Resume was called for a saga that is not stuck.
	ErrNotStuck = errors.New("saga: saga is not stuck")
	// ErrClosed: the manager is closed.
	ErrClosed = errors.New("saga: manager closed")
	// ErrInvalid: a malformed request (an empty or oversized id or input).
	ErrInvalid = errors.New("saga: invalid request")
	// ErrUnavailable: a saga service could not take a request now (it is
	// closed, overloaded or cannot write its journal); a retry may work.
	ErrUnavailable = errors.New("saga: service unavailable")
)

// Config configures a Manager.
type Config struct {
	// Dir is the journal's directory, normally the "saga" directory under
	// the node's data directory (cluster.Node.DataDir). Required.
	Dir string
	// Definitions are the saga definitions this manager runs. Every
	// definition that an unfinished saga in the journal uses must be here
	// when the manager starts, or Start fails.
	Definitions []*Definition
	// Journal tunes the journal (group commit, segment size).
	Journal journal.Options
	// Name registers the coordinators' supervisor under this name in the
	// actor system. Default "saga".
	Name string
	// MaxRestarts and Period are the restart intensity of the
	// coordinators' supervisor: more than MaxRestarts coordinator restarts
	// within Period shut it down (OTP semantics). Default 100 within 1s.
	MaxRestarts int
	Period      time.Duration
	// Registerer receives the saga metrics. Default: the actor system's
	// registry (System.Gatherer), when it is a Registerer. The metric names
	// are fixed, so a second Manager on the same actor system needs a
	// Registerer of its own.
	Registerer prometheus.Registerer
	// CompactEvery, if positive, compacts the journal this often (see
	// Manager.Compact), dropping the sagas finished more than Retention ago.
	CompactEvery time.Duration
	// Retention is how long a finished saga stays in the journal and in
	// queries when the journal is compacted automatically. Default 24h.
	Retention time.Duration
	// OnEvent, if set, is called with each event once it is durable, in
	// journal order. It runs on the journal's writer goroutine: it must
	// not block or call the Manager's methods that wait.
	OnEvent func(Event)
}

// Event is one entry of a saga's history.
type Event struct {
	Saga string
	Kind sagapb.EventKind
	// Step is the step's index (from 0), or -1 for events of the whole saga.
	Step int
	// StepName is the action's name, or the compensation's name for
	// events of the compensation phase and STUCK.
	StepName string
	Phase    sagapb.Phase
	Attempt  int
	Error    string
	// Business marks a FAILED event caused by a business failure (as
	// opposed to retries exhausted with an unknown outcome).
	Business bool
	Time     time.Time
}

// String renders the event for logs, for example
// "order-1 SENT step 1 (Process payment) action attempt 1".
func (e Event) String() string {
	var b strings.Builder
	b.WriteString(e.Saga)
	b.WriteByte(' ')
	b.WriteString(strings.TrimPrefix(e.Kind.String(), "EVENT_"))
	if e.Step >= 0 {
		fmt.Fprintf(&b, " step %d (%s)", e.Step, e.StepName)
	}
	if e.Phase != sagapb.Phase_PHASE_UNSPECIFIED {
		b.WriteString(" " + strings.ToLower(strings.TrimPrefix(e.Phase.String(), "PHASE_")))
	}
	if e.Attempt > 0 {
		fmt.Fprintf(&b, " attempt %d", e.Attempt)
	}
	if e.Business {
		b.WriteString(" business failure")
	}
	if e.Error != "" {
		b.WriteString(": " + e.Error)
	}
	return b.String()
}

// Info is a snapshot of one saga.
type Info struct {
	ID         string
	Definition string
	Status     Status
	// Step is the index of the step being worked on (or the last one),
	// -1 before the first send.
	Step int
	// Error is the last failure recorded, if any.
	Error   string
	Started time.Time
	Updated time.Time
	// Events is the number of events in its history.
	Events int
}

type entry struct {
	st      *state
	def     *Definition // nil if not registered (only for final sagas)
	history []*sagapb.Event
	pending int      // events queued in the journal, not yet durable
	quiet   []func() // called when pending drops to 0
	settled chan struct{}
	coord   *actor.PID
	// resuming: a RESUMED event is on its way to the journal.
	resuming bool
	started  time.Time
	updated  time.Time
}

// Manager runs sagas on one node: a journal, a supervisor of coordinator
// actors (one per running saga), and an index of every saga in the journal
// for queries. It is safe for concurrent use.
type Manager struct {
	sys     *actor.System
	cfg     Config
	j       *journal.Journal
	defs    map[string]*Definition
	sup     *actor.PID
	metrics *metrics

	mu     sync.Mutex
	sagas  map[string]*entry
	closed bool

	stopCompact chan struct{} // closed by Close
	compactDone chan struct{} // closed when the compaction loop ends

	// life ends when the manager closes: service requests that wait use it.
	life     context.Context
	lifeDone context.CancelFunc
}

// CompactStats says what Manager.Compact did.
type CompactStats struct {
	// Kept is the number of sagas left in the journal.
	Kept int
	// Dropped is the number of finished sagas forgotten.
	Dropped int
	// Journal is what the journal's compaction did.
	Journal journal.CompactStats
}

// Compact rewrites the journal so that it holds only the sagas that are not
// committed or compensated, and those that finished less than retention
// ago; the others are forgotten, by the journal and by queries. Sagas keep
// running meanwhile: the rewrite happens between two journal writes.
//
// A forgotten saga's id can be used again: Begin's guarantee that an id
// starts at most one saga (ErrExists) lasts as long as the saga stays in
// the journal, so keep finished sagas longer than any client may retry a
// Begin.
func (m *Manager) Compact(retention time.Duration) (CompactStats, error) {
	var st CompactStats
	var dropped []string
	js, err := m.j.Compact(func() ([][]byte, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		cutoff := time.Now().Add(-retention)
		ids := make([]string, 0, len(m.sagas))
		for id, e := range m.sagas {
			if e.st.status.Final() && e.updated.Before(cutoff) {
				dropped = append(dropped, id)
				continue
			}
			ids = append(ids, id)
		}
		sort.Slice(ids, func(a, b int) bool { return m.sagas[ids[a]].started.Before(m.sagas[ids[b]].started) })
		var out [][]byte
		for _, id := range ids {
			e := m.sagas[id]
			if len(e.history) > 0 {
				st.Kept++
			}
			for _, ev := range e.history {
				b, err := proto.Marshal(ev)
				if err != nil {
					return nil, fmt.Errorf("encode event of saga %s: %w", id, err)
				}
				out = append(out, b)
			}
		}
		return out, nil
	})
	st.Journal = js
	if err != nil {
		return CompactStats{}, fmt.Errorf("saga: compact: %w", err)
	}
	// A final saga never changes again: forget the dropped ones now that
	// the journal no longer has them.
	m.mu.Lock()
	for _, id := range dropped {
		delete(m.sagas, id)
	}
	m.mu.Unlock()
	st.Dropped = len(dropped)
	return st, nil
}

func (m *Manager) compactLoop(every, retention time.Duration) {
	defer close(m.compactDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stopCompact:
			return
		case <-t.C:
			if st, err := m.Compact(retention); err != nil {
				m.sys.Logger().Error("saga journal compaction failed", zap.Error(err))
			} else if st.Dropped > 0 {
				m.sys.Logger().Info("saga journal compacted", zap.Int("kept", st.Kept), zap.Int("dropped", st.Dropped),
					zap.Int("removed_segments", st.Journal.RemovedSegments))
			}
		}
	}
}

// Start opens the journal in cfg.Dir, rebuilds every saga from it, starts
// the coordinators' supervisor, and starts a coordinator for every saga
// that was running or compensating: each resumes from its journal.
func Start(sys *actor.System, cfg Config) (*Manager, error) {
	if sys == nil {
		return nil, errors.New("saga: nil actor system")
	}
	if cfg.Dir == "" {
		return nil, errors.New("saga: Config.Dir is required")
	}
	if cfg.Name == "" {
		cfg.Name = "saga"
	}
	if cfg.MaxRestarts == 0 {
		cfg.MaxRestarts = 100
	}
	if cfg.Period == 0 {
		cfg.Period = time.Second
	}
	m := &Manager{sys: sys, cfg: cfg, defs: map[string]*Definition{}, sagas: map[string]*entry{}}
	m.life, m.lifeDone = context.WithCancel(context.Background())
	for _, d := range cfg.Definitions {
		nd, err := d.normalize()
		if err != nil {
			return nil, err
		}
		if _, dup := m.defs[nd.Name]; dup {
			return nil, fmt.Errorf("saga: definition %q is given twice", nd.Name)
		}
		m.defs[nd.Name] = nd
	}
	reg := cfg.Registerer
	if reg == nil {
		if r, ok := sys.Gatherer().(prometheus.Registerer); ok {
			reg = r
		} else {
			reg = prometheus.NewRegistry()
		}
	}
	j, err := journal.Open(cfg.Dir, cfg.Journal, m.replay)
	if err != nil {
		return nil, fmt.Errorf("saga: open journal: %w", err)
	}
	m.j = j
	var resume []string
	var stuck int
	for id, e := range m.sagas {
		switch {
		case e.st.status == Stuck:
			stuck++
		case e.st.status.Final():
		case e.def == nil:
			j.Close()
			return nil, fmt.Errorf("saga: saga %s is unfinished and its definition %q is not registered: %w", id, e.st.def, ErrUnknownDefinition)
		default:
			resume = append(resume, id)
		}
	}
	m.metrics, err = newMetrics(reg, sys.Name(), j)
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("saga: metrics: %w", err)
	}
	m.metrics.stuck.Set(float64(stuck))
	spec := supervision.Spec{
		Strategy:    supervision.SimpleOneForOne,
		MaxRestarts: cfg.MaxRestarts,
		Period:      cfg.Period,
		Children: []supervision.ChildSpec{{
			ID:      "coordinator",
			Restart: supervision.Transient,
			Factory: func(arg any) (*actor.Props, error) {
				id, ok := arg.(string)
				if !ok {
					return nil, fmt.Errorf("saga: coordinator argument %T, want a saga id", arg)
				}
				return actor.PropsFromProducer(func() actor.Actor { return &coordinator{m: m, id: id} },
					actor.WithKind("saga-coordinator")), nil
			},
		}},
	}
	m.sup, err = supervision.Start(sys, spec, cfg.Name)
	if err != nil {
		m.metrics.unregister()
		j.Close()
		return nil, fmt.Errorf("saga: start supervisor: %w", err)
	}
	m.stopCompact, m.compactDone = make(chan struct{}), make(chan struct{})
	if cfg.CompactEvery > 0 {
		if cfg.Retention <= 0 {
			cfg.Retention = 24 * time.Hour
		}
		go m.compactLoop(cfg.CompactEvery, cfg.Retention)
	} else {
		close(m.compactDone)
	}
	sort.Strings(resume)
	for _, id := range resume {
		if err := m.startCoordinator(context.Background(), id); err != nil {
			m.Close(context.Background())
			return nil, fmt.Errorf("saga: resume %s: %w", id, err)
		}
	}
	return m, nil
}

// replay folds one journal record into the index.
func (m *Manager) replay(payload []byte) error {
	ev := &sagapb.Event{}
	if err := proto.Unmarshal(payload, ev); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	id := ev.GetSagaId()
	if id == "" || len(id) > MaxNameLen {
		return fmt.Errorf("event with saga id of %d bytes", len(id))
	}
	e := m.sagas[id]
	if e == nil {
		if ev.Kind != sagapb.EventKind_EVENT_STARTED {
			return fmt.Errorf("saga %s: first event is %s, not STARTED", id, ev.Kind)
		}
		e = &entry{st: newState(id), settled: make(chan struct{}), def: m.defs[ev.Definition]}
		m.sagas[id] = e
	}
	return m.applyLocked(e, ev, false)
}

// nsteps is the number of steps events of e may refer to.
func (e *entry) nsteps() int {
	if e.def != nil {
		return len(e.def.Steps)
	}
	return -1 // unknown definition: only a final saga, kept for queries
}

// applyLocked folds a durable event into e. live is false during replay.
func (m *Manager) applyLocked(e *entry, ev *sagapb.Event, live bool) error {
	before := e.st.status
	if err := e.st.apply(ev, e.nsteps()); err != nil {
		return err
	}
	e.history = append(e.history, ev)
	t := time.Unix(0, ev.UnixNanos)
	if ev.Kind == sagapb.EventKind_EVENT_STARTED {
		e.started = t
	}
	e.updated = t
	after := e.st.status
	if after != before {
		if after.Final() || after == Stuck {
			close(e.settled)
		}
		if before == Stuck {
			e.settled = make(chan struct{})
		}
	}
	if !live || after == before && ev.Kind != sagapb.EventKind_EVENT_STARTED {
		return nil
	}
	switch {
	case ev.Kind == sagapb.EventKind_EVENT_STARTED:
		m.metrics.started.Inc()
	case after == Committed:
		m.metrics.committed.Inc()
	case after == Compensated:
		m.metrics.compensated.Inc()
	case after == Stuck:
		m.metrics.stuck.Inc()
	}
	if before == Stuck {
		m.metrics.stuck.Dec()
	}
	return nil
}

// persist appends ev to the journal; once it is durable it is applied to
// the index, handed to OnEvent, and then done is called.
func (m *Manager) persist(ev *sagapb.Event, done func(error)) {
	ev.UnixNanos = time.Now().UnixNano()
	b, err := proto.Marshal(ev)
	if err != nil {
		done(fmt.Errorf("saga: encode event: %w", err))
		return
	}
	m.mu.Lock()
	e := m.sagas[ev.SagaId]
	if e == nil {
		m.mu.Unlock()
		done(fmt.Errorf("saga %s: %w", ev.SagaId, ErrNotFound))
		return
	}
	e.pending++
	m.mu.Unlock()
	m.j.Append(b, func(err error) {
		m.mu.Lock()
		e.pending--
		if err == nil {
			err = m.applyLocked(e, ev, true)
		}
		var quiet []func()
		if e.pending == 0 {
			quiet, e.quiet = e.quiet, nil
		}
		def := e.def
		m.mu.Unlock()
		if err == nil && m.cfg.OnEvent != nil {
			m.cfg.OnEvent(toEvent(ev, def))
		}
		done(err)
		for _, f := range quiet {
			f()
		}
	})
}

func (m *Manager) persistSync(ev *sagapb.Event) error {
	ch := make(chan error, 1)
	m.persist(ev, func(err error) { ch <- err })
	return <-ch
}

// attach records a coordinator incarnation and calls ready once no event of
// its saga is pending in the journal (a killed predecessor's last append),
// so that the index it loads is complete. It returns false, and records
// nothing, if another live coordinator runs the saga.
func (m *Manager) attach(id string, pid *actor.PID, ready func()) bool {
	m.mu.Lock()
	e := m.sagas[id]
	if e == nil {
		m.mu.Unlock()
		ready() // the coordinator finds out that the saga is unknown
		return true
	}
	if e.coord != nil && !e.coord.Equal(pid) && m.sys.Alive(e.coord) {
		m.mu.Unlock()
		return false
	}
	e.coord = pid
	if e.pending == 0 {
		m.mu.Unlock()
		ready()
		return true
	}
	e.quiet = append(e.quiet, ready)
	m.mu.Unlock()
	return true
}

// startCoordinator starts a coordinator for the saga id. A start can fail
// because the new coordinator was killed before it finished starting
// (fault injection does that); the start is then tried again, so that a
// recorded saga is not left without a coordinator.
func (m *Manager) startCoordinator(ctx context.Context, id string) error {
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		if _, err = supervision.StartChildWith(ctx, m.sys, m.sup, id); err == nil {
			return nil
		}
		m.mu.Lock()
		closed := m.closed
		m.mu.Unlock()
		if closed || ctx.Err() != nil || !m.sys.Alive(m.sup) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return err
}

// snapshot returns a copy of a saga's durable state and its definition.
func (m *Manager) snapshot(id string) (*state, *Definition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.sagas[id]
	if e == nil {
		return nil, nil, fmt.Errorf("saga %s: %w", id, ErrNotFound)
	}
	if e.def == nil {
		return nil, nil, fmt.Errorf("saga %s: definition %q: %w", id, e.st.def, ErrUnknownDefinition)
	}
	return e.st.clone(), e.def, nil
}

// Begin starts a saga of the named definition with the given id and input.
// It returns once the saga is durably recorded and its coordinator runs;
// use Wait for the outcome. The id must be unique on this manager's journal
// (ErrExists otherwise), which makes Begin safe to retry.
func (m *Manager) Begin(ctx context.Context, definition, id string, input []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	def, ok := m.defs[definition]
	if !ok {
		return fmt.Errorf("saga: %q: %w", definition, ErrUnknownDefinition)
	}
	if id == "" || len(id) > MaxNameLen {
		return fmt.Errorf("%w: saga id of %d bytes (must be 1..%d)", ErrInvalid, len(id), MaxNameLen)
	}
	if len(input) > journal.MaxRecordSize/2 {
		return fmt.Errorf("%w: input of %d bytes exceeds %d", ErrInvalid, len(input), journal.MaxRecordSize/2)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if _, dup := m.sagas[id]; dup {
		m.mu.Unlock()
		return fmt.Errorf("saga %s: %w", id, ErrExists)
	}
	m.sagas[id] = &entry{st: newState(id), def: def, settled: make(chan struct{})}
	m.mu.Unlock()
	err := m.persistSync(&sagapb.Event{SagaId: id, Kind: sagapb.EventKind_EVENT_STARTED, Definition: def.Name, Data: input})
	if err != nil {
		m.mu.Lock()
		delete(m.sagas, id)
		m.mu.Unlock()
		return fmt.Errorf("saga %s: journal: %w", id, err)
	}
	if err := m.startCoordinator(ctx, id); err != nil {
		return fmt.Errorf("saga %s is recorded but its coordinator did not start (it resumes when the manager restarts): %w", id, err)
	}
	return nil
}

// Wait blocks until the saga is committed, compensated or stuck, or ctx
// ends, and returns its Info.
func (m *Manager) Wait(ctx context.Context, id string) (Info, error) {
	for {
		m.mu.Lock()
		e := m.sagas[id]
		if e == nil {
			m.mu.Unlock()
			return Info{}, fmt.Errorf("saga %s: %w", id, ErrNotFound)
		}
		ch := e.settled
		st := e.st.status
		info := m.infoLocked(id, e)
		m.mu.Unlock()
		if st.Final() || st == Stuck {
			return info, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return info, ctx.Err()
		}
	}
}

// Run is Begin followed by Wait.
func (m *Manager) Run(ctx context.Context, definition, id string, input []byte) (Info, error) {
	if err := m.Begin(ctx, definition, id, input); err != nil {
		return Info{}, err
	}
	return m.Wait(ctx, id)
}

// Resume restarts a stuck saga's compensations, for an operator who fixed
// the cause: the failure counts start again from zero.
func (m *Manager) Resume(ctx context.Context, id string) error {
	m.mu.Lock()
	e := m.sagas[id]
	switch {
	case m.closed:
		m.mu.Unlock()
		return ErrClosed
	case e == nil:
		m.mu.Unlock()
		return fmt.Errorf("saga %s: %w", id, ErrNotFound)
	case e.st.status != Stuck || e.resuming:
		s := e.st.status
		m.mu.Unlock()
		return fmt.Errorf("saga %s is %s: %w", id, s, ErrNotStuck)
	}
	// Only one RESUMED may be journaled per stuck period.
	e.resuming = true
	m.mu.Unlock()
	err := m.persistSync(&sagapb.Event{SagaId: id, Kind: sagapb.EventKind_EVENT_RESUMED})
	m.mu.Lock()
	e.resuming = false
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("saga %s: journal: %w", id, err)
	}
	if err := m.startCoordinator(ctx, id); err != nil {
		return fmt.Errorf("saga %s: start coordinator: %w", id, err)
	}
	return nil
}

func (m *Manager) infoLocked(id string, e *entry) Info {
	in := Info{ID: id, Definition: e.st.def, Status: e.st.status, Error: e.st.lastErr,
		Started: e.started, Updated: e.updated, Events: len(e.history), Step: -1}
	if e.def != nil && e.st.status != Stuck {
		in.Step = e.st.currentStep(e.def)
	}
	if e.st.status == Stuck && len(e.history) > 0 {
		in.Step = int(e.history[len(e.history)-1].Step)
	}
	if in.Status == Committed {
		in.Error = ""
	}
	return in
}

// Get returns a snapshot of one saga.
func (m *Manager) Get(id string) (Info, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.sagas[id]
	if e == nil {
		return Info{}, false
	}
	return m.infoLocked(id, e), true
}

// List returns the sagas in any of the given states (all sagas if none is
// given), oldest first.
func (m *Manager) List(statuses ...Status) []Info {
	m.mu.Lock()
	var out []Info
	for id, e := range m.sagas {
		if e.st.status == 0 {
			continue // Begin in progress
		}
		if len(statuses) > 0 {
			match := false
			for _, s := range statuses {
				match = match || s == e.st.status
			}
			if !match {
				continue
			}
		}
		out = append(out, m.infoLocked(id, e))
	}
	m.mu.Unlock()
	sort.Slice(out, func(a, b int) bool {
		if !out[a].Started.Equal(out[b].Started) {
			return out[a].Started.Before(out[b].Started)
		}
		return out[a].ID < out[b].ID
	})
	return out
}

// History returns a saga's durable events, oldest first.
func (m *Manager) History(id string) ([]Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.sagas[id]
	if e == nil {
		return nil, fmt.Errorf("saga %s: %w", id, ErrNotFound)
	}
	out := make([]Event, len(e.history))
	for i, ev := range e.history {
		out[i] = toEvent(ev, e.def)
	}
	return out, nil
}

func toEvent(ev *sagapb.Event, def *Definition) Event {
	out := Event{Saga: ev.SagaId, Kind: ev.Kind, Step: int(ev.Step), Phase: ev.Phase, Attempt: int(ev.Attempt),
		Error: ev.Error, Business: ev.Business, Time: time.Unix(0, ev.UnixNanos)}
	switch ev.Kind {
	case sagapb.EventKind_EVENT_STARTED, sagapb.EventKind_EVENT_COMMITTED, sagapb.EventKind_EVENT_COMPENSATED,
		sagapb.EventKind_EVENT_RESUMED:
		out.Step = -1
	}
	if out.Step >= 0 && def != nil && out.Step < len(def.Steps) {
		s := def.Steps[out.Step]
		out.StepName = s.Name
		if ev.Phase == sagapb.Phase_PHASE_COMPENSATION || ev.Kind == sagapb.EventKind_EVENT_STUCK {
			out.StepName = s.Compensation
		}
	}
	return out
}

// Coordinator returns the PID of the saga's live coordinator, for
// inspection and fault injection (System.Kill).
func (m *Manager) Coordinator(id string) (*actor.PID, bool) {
	m.mu.Lock()
	e := m.sagas[id]
	var pid *actor.PID
	if e != nil {
		pid = e.coord
	}
	m.mu.Unlock()
	if pid == nil || !m.sys.Alive(pid) {
		return nil, false
	}
	return pid, true
}

// Supervisor is the PID of the coordinators' supervisor.
func (m *Manager) Supervisor() *actor.PID { return m.sup }

// JournalStats returns the journal's running totals (appends, fsyncs).
func (m *Manager) JournalStats() journal.Stats { return m.j.Stats() }

// Close stops the coordinators (their sagas stay in the journal and resume
// when a manager starts on the same directory), makes every queued journal
// append durable, and closes the journal. It is safe to call after the
// actor system or node has stopped.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.lifeDone()
	close(m.stopCompact)
	<-m.compactDone
	if m.sys.Alive(m.sup) {
		if err := m.sys.Stop(ctx, m.sup); err != nil && !errors.Is(err, actor.ErrDeadActor) && !errors.Is(err, actor.ErrSystemStopped) {
			m.j.Close()
			m.metrics.unregister()
			return fmt.Errorf("saga: stop supervisor: %w", err)
		}
	}
	err := m.j.Close()
	m.metrics.unregister()
	return err
}
