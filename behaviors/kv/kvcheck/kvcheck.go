// Package kvcheck checks histories of the replicated key-value store
// (behaviors/kv) for linearizability with porcupine: a Recorder wraps
// kv.Clients and records every operation's call and return times and
// outcome, Run drives a random concurrent workload through it, and Check
// gives porcupine's verdict (and an HTML view of the history).
//
// Writes whose outcome is unknown (a timeout, a lost leader) are recorded as
// returning at the end of time, so that porcupine may place them anywhere
// after their call, or effectively never; reads that fail are left out (they
// have no effect). The history is partitioned by key, so each key is checked
// as an independent register.
//
// The package knows nothing of Raft: any replicated log that serves a kv.Store
// can be checked the same way.
package kvcheck

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/distributed-go/distributed/behaviors/kv"
)

// Op names a kind of operation.
type Op uint8

// The operations a history holds.
const (
	Get Op = iota
	Put
	Delete
	CAS
)

func (o Op) String() string {
	return [...]string{"get", "put", "delete", "cas"}[o]
}

// Input is what an operation asked for.
type Input struct {
	Op       Op
	Key      string
	Value    string // Put, CAS: the new value
	Expected string // CAS: the value compared
}

// Output is what it got back.
type Output struct {
	Found   bool   // Get: key present
	Value   string // Get: the value
	Swapped bool   // CAS: whether it swapped
	// Unknown: the write gave up without learning whether it was applied.
	Unknown bool
}

// register is the state of one key.
type register struct {
	present bool
	value   string
}

// Model is porcupine's model of the store, partitioned by key.
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(Input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return register{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(register), input.(Input), output.(Output)
		switch in.Op {
		case Get:
			return out.Found == s.present && (!s.present || out.Value == s.value), s
		case Put:
			return true, register{present: true, value: in.Value}
		case Delete:
			return true, register{}
		case CAS:
			match := s.present && s.value == in.Expected
			if out.Unknown {
				if match {
					return true, register{present: true, value: in.Value}
				}
				return true, s
			}
			if out.Swapped != match {
				return false, s
			}
			if match {
				return true, register{present: true, value: in.Value}
			}
			return true, s
		}
		return false, s
	},
	Equal: func(a, b any) bool { return a.(register) == b.(register) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		var res string
		switch {
		case out.Unknown:
			res = "?"
		case in.Op == Get && !out.Found:
			res = "absent"
		case in.Op == Get:
			res = strconv.Quote(out.Value)
		case in.Op == CAS:
			res = strconv.FormatBool(out.Swapped)
		default:
			res = "ok"
		}
		switch in.Op {
		case Get:
			return fmt.Sprintf("get(%s) → %s", in.Key, res)
		case Put:
			return fmt.Sprintf("put(%s, %q) → %s", in.Key, in.Value, res)
		case Delete:
			return fmt.Sprintf("delete(%s) → %s", in.Key, res)
		default:
			return fmt.Sprintf("cas(%s, %q→%q) → %s", in.Key, in.Expected, in.Value, res)
		}
	},
	DescribeState: func(state any) string {
		if s := state.(register); s.present {
			return strconv.Quote(s.value)
		}
		return "absent"
	},
}

// Recorder records a concurrent history. Safe for concurrent use.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	// Counts of outcomes, for reports.
	ok, unknown, failedReads, rejected int
}

// NewRecorder starts an empty history.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

func (r *Recorder) now() int64 { return int64(time.Since(r.start)) }

// Do runs one operation with c and records it. It returns what the
// operation got and its error, if any (an unknown outcome is recorded, a
// failed read is not).
func (r *Recorder) Do(ctx context.Context, client int, c *kv.Client, in Input) (Output, error) {
	call := r.now()
	var out Output
	var err error
	switch in.Op {
	case Get:
		var v []byte
		v, out.Found, err = c.Get(ctx, in.Key)
		out.Value = string(v)
	case Put:
		err = c.Put(ctx, in.Key, []byte(in.Value))
	case Delete:
		_, err = c.Delete(ctx, in.Key)
	case CAS:
		out.Swapped, _, _, err = c.CompareAndSwap(ctx, in.Key, []byte(in.Expected), []byte(in.Value))
	}
	ret := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.ok++
	case errors.Is(err, kv.ErrRejected):
		r.rejected++
		return out, err // refused before any effect
	case in.Op == Get:
		r.failedReads++
		return out, err
	default:
		// Unknown or not: a failed write may have been applied (only
		// replog.ErrNoLeader says it was not, and even then recording it
		// as unknown is merely weaker).
		out.Unknown, ret = true, math.MaxInt64
		r.unknown++
	}
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	return out, err
}

// History returns a copy of the recorded operations.
func (r *Recorder) History() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]porcupine.Operation(nil), r.ops...)
}

// Stats summarises the outcomes recorded.
type Stats struct {
	Recorded, OK, Unknown, FailedReads, Rejected int
}

// Stats returns the outcome counts.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{Recorded: len(r.ops), OK: r.ok, Unknown: r.unknown, FailedReads: r.failedReads, Rejected: r.rejected}
}

// Check runs porcupine on the history, for at most timeout (0: no limit).
// The result is porcupine.Ok, porcupine.Illegal or porcupine.Unknown (the
// check timed out).
func (r *Recorder) Check(timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	return porcupine.CheckOperationsVerbose(Model, r.History(), timeout)
}

// Visualize writes porcupine's HTML view of a checked history to path.
func Visualize(info porcupine.LinearizationInfo, path string) error {
	return porcupine.VisualizePath(Model, info, path)
}

// Workload describes a random workload.
type Workload struct {
	// Clients is the number of concurrent clients, each with its own
	// kv.Client session, issuing one operation at a time. Default 4.
	Clients int
	// Keys is the number of distinct keys. Few keys mean more contention
	// and a stronger check. Default 3.
	Keys int
	// OpTimeout bounds each operation. Default 2 s.
	OpTimeout time.Duration
	// Seed seeds the operation mix (0: random).
	Seed uint64
}

// Run drives the workload until ctx ends: each client picks random
// operations (reads 40%, puts 30%, CAS 20%, deletes 10%) with values unique
// in the history. newClient makes a client session over the log under test.
func (r *Recorder) Run(ctx context.Context, w Workload, newClient func() *kv.Client) {
	if w.Clients <= 0 {
		w.Clients = 4
	}
	if w.Keys <= 0 {
		w.Keys = 3
	}
	if w.OpTimeout <= 0 {
		w.OpTimeout = 2 * time.Second
	}
	seed := w.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	var wg sync.WaitGroup
	for i := range w.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			c := newClient()
			seen := map[string]string{} // the last value this client read, per key
			for n := 0; ctx.Err() == nil; n++ {
				in := Input{Key: "k" + strconv.Itoa(rng.IntN(w.Keys))}
				val := fmt.Sprintf("c%d-%d", i, n)
				switch p := rng.IntN(10); {
				case p < 4:
					in.Op = Get
				case p < 7:
					in.Op, in.Value = Put, val
				case p < 9:
					in.Op, in.Value = CAS, val
					in.Expected = seen[in.Key]
				default:
					in.Op = Delete
				}
				octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.OpTimeout)
				if out, err := r.Do(octx, i, c, in); err == nil && in.Op == Get {
					seen[in.Key] = out.Value
				}
				cancel()
			}
		}()
	}
	wg.Wait()
}
