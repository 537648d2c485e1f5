package query

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/query/querypb"
	"github.com/distributed-go/distributed/cluster"
	"github.com/distributed-go/distributed/supervision"
)

// ExecutorGroup is the process group (cluster.Node.JoinGroup) executors
// join, and where Cluster finds them.
const ExecutorGroup = "query-executors"

// Defaults of Cluster.
const (
	DefaultWindow        = 4
	DefaultMaxBatchBytes = 512 << 10
	// taskIdle bounds how long an executor task waits for a credit; a
	// coordinator that vanished without a Cancel is given up on then.
	taskIdle = 30 * time.Second
)

// runningTasks counts fragment tasks running in this process.
var runningTasks atomic.Int64

// ---- executors ----

// StartExecutors starts n executor actors on node under a one-for-one
// supervisor named "query-executors" (a crashed executor is restarted and
// rejoins the group); each serves fragments of queries against cat, which
// must hold the same tables as the coordinators' catalogs.
func StartExecutors(node *cluster.Node, cat *Catalog, n int) (*actor.PID, error) {
	if n < 1 {
		return nil, fmt.Errorf("query: %d executors", n)
	}
	spec := supervision.Spec{Strategy: supervision.OneForOne, MaxRestarts: 10, Period: 10 * time.Second}
	for k := 0; k < n; k++ {
		spec.Children = append(spec.Children, supervision.ChildSpec{
			ID:    fmt.Sprintf("executor-%d", k),
			Props: ExecutorProps(node, cat),
		})
	}
	return supervision.Start(node.System(), spec, "query-executors")
}

// ExecutorProps makes an executor actor: it joins ExecutorGroup when it
// starts and runs each Fragment it receives on its own goroutine, sending
// batches to the requester within the credit the requester grants.
func ExecutorProps(node *cluster.Node, cat *Catalog) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &executor{node: node, cat: cat, tasks: map[taskKey]*task{}}
	})
}

type taskKey struct {
	query string
	task  int64
}

type executor struct {
	node  *cluster.Node
	cat   *Catalog
	tasks map[taskKey]*task
}

type taskEnded struct{ key taskKey }

type task struct {
	cancel  context.CancelFunc
	credits chan struct{}
}

func (e *executor) Receive(c *actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		if err := e.node.JoinGroup(ExecutorGroup, c.Self()); err != nil {
			c.Logger().Warn("query executor: join group", zap.Error(err))
		}
	case *querypb.Fragment:
		coord := c.Sender()
		if coord == nil {
			return
		}
		key := taskKey{m.GetQueryId(), m.GetTask()}
		if _, dup := e.tasks[key]; dup {
			return
		}
		window := int(m.GetWindow())
		if window < 1 || window > 1024 {
			window = DefaultWindow
		}
		ctx, cancel := context.WithCancel(context.Background())
		t := &task{cancel: cancel, credits: make(chan struct{}, 2*window)}
		for k := 0; k < window; k++ {
			t.credits <- struct{}{}
		}
		e.tasks[key] = t
		sys, self := c.System(), c.Self()
		runningTasks.Add(1)
		go func() {
			defer runningTasks.Add(-1)
			defer cancel()
			runTask(ctx, sys, self, coord, e.cat, m, t)
			sys.Send(self, taskEnded{key})
		}()
	case *querypb.Credit:
		if t, ok := e.tasks[taskKey{m.GetQueryId(), m.GetTask()}]; ok {
			select {
			case t.credits <- struct{}{}:
			default: // more credit than granted: ignore
			}
		}
	case *querypb.Cancel:
		for k, t := range e.tasks {
			if k.query == m.GetQueryId() {
				t.cancel()
			}
		}
	case taskEnded:
		delete(e.tasks, m.key)
	case *actor.Stopping:
		for _, t := range e.tasks {
			t.cancel()
		}
	}
}

// runTask runs a fragment over its partitions and streams the output.
func runTask(ctx context.Context, sys *actor.System, self, coord *actor.PID, cat *Catalog, m *querypb.Fragment, t *task) {
	fail := func(err error) {
		if ctx.Err() != nil {
			return
		}
		sys.Send(coord, &querypb.FragmentError{QueryId: m.GetQueryId(), Task: m.GetTask(), Error: err.Error()})
	}
	alive := func() bool { _, ok := sys.Info(self); return ok }
	p, err := Prepare(cat, m.GetSql())
	if err != nil {
		fail(err)
		return
	}
	maxBytes := int(m.GetMaxBatchBytes())
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBatchBytes
	}
	for _, part := range m.GetPartitions() {
		err := p.RunPartition(ctx, int(part), func(rec arrow.RecordBatch) error {
			for _, piece := range splitRecord(rec, maxBytes) {
				buf, err := encodeIPC(piece)
				piece.Release()
				if err != nil {
					return err
				}
				// The executor may have been killed: Go cannot stop this
				// goroutine, so it checks before each send.
				if !alive() {
					return context.Canceled
				}
				select {
				case <-t.credits:
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(taskIdle):
					return fmt.Errorf("query: no credit from coordinator %s for %s", coord, taskIdle)
				}
				sys.Send(coord, &querypb.Batch{QueryId: m.GetQueryId(), Task: m.GetTask(), Partition: part, Ipc: buf})
			}
			return nil
		})
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				fail(err)
			}
			return
		}
		if !alive() {
			return
		}
		sys.Send(coord, &querypb.PartitionDone{QueryId: m.GetQueryId(), Task: m.GetTask(), Partition: part})
	}
}

// encodeIPC returns rec as the messages of an Arrow IPC stream without its
// schema message: the receiver knows the schema, and does not parse one
// from the network (arrow-go sizes its field list from the schema message
// before checking it, so a forged one can exhaust memory).
func encodeIPC(rec arrow.RecordBatch) ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()), ipc.WithAllocator(memory.DefaultAllocator))
	if err := w.Write(rec); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	n, err := schemaMessageLen(b)
	if err != nil {
		return nil, err
	}
	return b[n:], nil
}

// schemaMessageLen is the length of the first message of an IPC stream
// (the schema): continuation marker, metadata length, metadata.
func schemaMessageLen(b []byte) (int, error) {
	if len(b) < 8 || binary.LittleEndian.Uint32(b) != 0xFFFFFFFF {
		return 0, errors.New("query: not an IPC stream")
	}
	n := 8 + int(int32(binary.LittleEndian.Uint32(b[4:])))
	if n < 8 || n > len(b) {
		return 0, errors.New("query: bad IPC schema message length")
	}
	return n, nil
}

// schemaMessage is the IPC schema message of s, made locally.
func schemaMessage(s *arrow.Schema) ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(s))
	if err := w.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	n, err := schemaMessageLen(b)
	if err != nil {
		return nil, err
	}
	return b[:n], nil
}

// decodeIPC reads one record batch of schema s (whose IPC schema message
// is schemaMsg) from b, as encodeIPC made it, within size limits.
func decodeIPC(schemaMsg []byte, b []byte, maxBody int64) (rec arrow.RecordBatch, err error) {
	defer func() {
		// Bytes from the network: a malformed stream is an error, never a
		// panic, whatever the IPC reader does with it.
		if r := recover(); r != nil {
			rec, err = nil, fmt.Errorf("query: malformed IPC batch: %v", r)
		}
	}()
	stream := make([]byte, 0, len(schemaMsg)+len(b))
	stream = append(append(stream, schemaMsg...), b...)
	rd, err := ipc.NewReader(bytes.NewReader(stream), ipc.WithAllocator(memory.DefaultAllocator),
		ipc.WithMetadataSizeLimit(1<<20), ipc.WithBodySizeLimit(maxBody))
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	if !rd.Next() {
		if err := rd.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("query: empty IPC batch")
	}
	rec = rd.RecordBatch()
	rec.Retain()
	return rec, nil
}

// ---- coordinator ----

// Cluster runs partition fragments on executor actors of a cluster: the
// coordinator side of distributed execution.
//
// Partitions are dealt round-robin to the executors of ExecutorGroup. Each
// executor streams its output under credit-based flow control, so no more
// than Window batches of at most MaxBatchBytes per executor are in flight:
// memory stays bounded and each gRPC message stays under its 4 MiB limit.
//
// Faults: the coordinator monitors its executors. When one dies before the
// query ends, the partitions it had not finished are run again on the
// surviving executors; output of an unfinished partition is held back until
// the partition is done when the query aggregates or sorts, so re-running
// never counts a row twice. A query that streams rows straight to the
// client (no aggregation, no ORDER BY) cannot take back rows it has already
// passed on: if the lost executor had sent any, the query fails with
// ErrExecutorLost, as it does when no executor survives. Cancelling the
// context cancels the tasks on every executor.
type Cluster struct {
	// Node is the coordinator's node.
	Node *cluster.Node
	// Executors, if set, are the executors to use; otherwise the members
	// of ExecutorGroup at the start of each query.
	Executors []*actor.PID
	// Window is the number of batches an executor task may have in flight
	// (default DefaultWindow).
	Window int
	// MaxBatchBytes bounds one batch message's Arrow data (default
	// DefaultMaxBatchBytes).
	MaxBatchBytes int
	// IdleTimeout fails the query with ErrExecutorLost when no executor
	// message arrives for this long while partitions are unfinished
	// (default DefaultIdleTimeout). It catches messages lost without a
	// failure notice, such as during a partition the gossip layer has not
	// detected.
	IdleTimeout time.Duration
}

// DefaultIdleTimeout is Cluster's default IdleTimeout.
const DefaultIdleTimeout = 60 * time.Second

type partState struct {
	task     int64
	done     bool
	streamed bool
	held     []arrow.RecordBatch
}

type taskState struct {
	exec  *actor.PID
	parts []int32
	dead  bool
}

// collector messages (local only)
type dispatch struct {
	exec *actor.PID
	frag *querypb.Fragment
}

type sendTo struct {
	to  *actor.PID
	msg any
}

// RunFragments implements Runner.
func (cl *Cluster) RunFragments(ctx context.Context, p *Plan, emit func(arrow.RecordBatch) error) error {
	execs := cl.Executors
	if len(execs) == 0 {
		execs = cl.Node.GroupMembers(ExecutorGroup)
	}
	if len(execs) == 0 {
		return fmt.Errorf("query: no executors in group %q", ExecutorGroup)
	}
	window := cl.Window
	if window <= 0 {
		window = DefaultWindow
	}
	maxBytes := cl.MaxBatchBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBatchBytes
	}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	qid := hex.EncodeToString(idb[:])

	events := make(chan any, 256)
	quit := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(quit) }) }
	defer stop()
	monitored := map[string]bool{}
	sys := cl.Node.System()
	coll, err := sys.Spawn(actor.PropsFromFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case dispatch:
			if !monitored[m.exec.String()] {
				monitored[m.exec.String()] = true
				c.Monitor(m.exec)
			}
			c.Request(m.exec, m.frag)
		case sendTo:
			c.Send(m.to, m.msg)
		case *actor.Started, *actor.Stopping:
		default:
			select {
			case events <- m:
			case <-quit:
			}
		}
	}))
	if err != nil {
		return fmt.Errorf("query: coordinator: %w", err)
	}
	defer func() {
		for _, e := range execs {
			sys.Send(e, &querypb.Cancel{QueryId: qid})
		}
		stop()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sys.Stop(sctx, coll)
	}()

	schemaMsg, err := schemaMessage(p.fragment)
	if err != nil {
		return err
	}
	n := p.Partitions()
	parts := make([]partState, n)
	tasks := map[int64]*taskState{}
	var nextTask int64
	live := append([]*actor.PID(nil), execs...)
	hold := p.agg || len(p.order) > 0

	assign := func(idx []int32) {
		byExec := map[int][]int32{}
		for k, i := range idx {
			byExec[k%len(live)] = append(byExec[k%len(live)], i)
		}
		for e, ps := range byExec {
			nextTask++
			tasks[nextTask] = &taskState{exec: live[e], parts: ps}
			for _, i := range ps {
				parts[i].task = nextTask
			}
			sys.Send(coll, dispatch{live[e], &querypb.Fragment{
				QueryId: qid, Task: nextTask, Sql: p.SQL, Partitions: ps,
				Window: int32(window), MaxBatchBytes: int64(maxBytes),
			}})
		}
	}
	all := make([]int32, n)
	for i := range all {
		all[i] = int32(i)
	}
	assign(all)
	remaining := n

	release := func(ps *partState) {
		for _, r := range ps.held {
			r.Release()
		}
		ps.held = nil
	}
	defer func() {
		for i := range parts {
			release(&parts[i])
		}
	}()

	idle := cl.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for remaining > 0 {
		var ev any
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("%w: no message from the executors for %s with %d of %d partitions unfinished", ErrExecutorLost, idle, remaining, n)
		case ev = <-events:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(idle)
		}
		switch m := ev.(type) {
		case *querypb.Batch:
			t := tasks[m.GetTask()]
			if m.GetQueryId() != qid || t == nil || t.dead {
				continue
			}
			sys.Send(coll, sendTo{t.exec, &querypb.Credit{QueryId: qid, Task: m.GetTask()}})
			i := int(m.GetPartition())
			if i < 0 || i >= n || parts[i].task != m.GetTask() || parts[i].done {
				continue
			}
			rec, err := decodeIPC(schemaMsg, m.GetIpc(), int64(4*maxBytes)+(1<<16))
			if err != nil {
				return fmt.Errorf("query: batch from %s: %w", t.exec, err)
			}
			if !rec.Schema().Equal(p.fragment) {
				rec.Release()
				return fmt.Errorf("query: batch from %s has schema %s, want %s", t.exec, rec.Schema(), p.fragment)
			}
			if hold {
				parts[i].held = append(parts[i].held, rec)
				continue
			}
			parts[i].streamed = true
			err = emit(rec)
			rec.Release()
			if err != nil {
				return err
			}
		case *querypb.PartitionDone:
			i := int(m.GetPartition())
			if m.GetQueryId() != qid || i < 0 || i >= n || parts[i].task != m.GetTask() || parts[i].done {
				continue
			}
			if t := tasks[m.GetTask()]; t == nil || t.dead {
				continue
			}
			parts[i].done = true
			remaining--
			for _, r := range parts[i].held {
				if err := emit(r); err != nil {
					return err
				}
			}
			release(&parts[i])
		case *querypb.FragmentError:
			if t := tasks[m.GetTask()]; m.GetQueryId() != qid || t == nil || t.dead {
				continue
			}
			return fmt.Errorf("query: executor: %s", m.GetError())
		case *actor.Down:
			var lost []int32
			for id, t := range tasks {
				if t.dead || !t.exec.Equal(m.PID) {
					continue
				}
				t.dead = true
				for _, i := range t.parts {
					ps := &parts[i]
					if ps.done || ps.task != id {
						continue
					}
					if ps.streamed {
						return fmt.Errorf("%w: %s died (%s) after partition %d had sent rows to the client", ErrExecutorLost, m.PID, m.Reason, i)
					}
					release(ps)
					lost = append(lost, i)
				}
			}
			kept := live[:0]
			for _, e := range live {
				if !e.Equal(m.PID) {
					kept = append(kept, e)
				}
			}
			live = kept
			if len(lost) > 0 {
				if len(live) == 0 {
					return fmt.Errorf("%w: %s died (%s) and no executor is left for %d partitions", ErrExecutorLost, m.PID, m.Reason, len(lost))
				}
				assign(lost)
			}
		}
	}
	return nil
}
