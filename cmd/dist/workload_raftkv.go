package main

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/kv/kvcheck"
	"github.com/distributed-go/distributed/behaviors/raft"
	"github.com/distributed-go/distributed/behaviors/replog"
	"github.com/distributed-go/distributed/observer"
)

func init() {
	registerWorkload(raftKV{})
	kvCommand = runKVCommand
	checkCommand = runCheckCommand
}

// kvGroup is the Raft group of the raft-kv workload.
const kvGroup = "kv"

// raftKV runs one member of a Raft group serving the replicated key-value
// store (behaviors/raft, behaviors/kv) on every node, a writer that puts a
// few keys per second through it, and the HTTP endpoints behind dist kv
// and dist check:
//
//	GET /api/raft                         every member's status
//	GET|PUT|DELETE /api/kv/{key}          read (linearizable), write, delete
//	POST /api/kv/{key}?cas=<old>          compare-and-swap (body: new value)
//	POST /api/check?d=10s&stale=false     a linearizability check (JSON answer)
//
// Member ids are the positions of the node names in --peers, sorted, from 1;
// every name needs its actor transport address (name=host:port).
type raftKV struct{}

func (raftKV) Name() string { return "raft-kv" }

// kvNode is the workload's state on one node.
type kvNode struct {
	env    WorkloadEnv
	peers  map[uint64]string
	names  map[uint64]string
	client *raft.Client
	store  *kv.Client
}

func (raftKV) Start(ctx context.Context, env WorkloadEnv) (func(context.Context) error, error) {
	if env.DataDir == "" {
		return nil, errors.New("raft-kv: needs a data directory (--data): the Raft log lives there")
	}
	names := slices.Clone(env.Peers)
	slices.Sort(names)
	k := &kvNode{env: env, peers: map[uint64]string{}, names: map[uint64]string{}}
	var self uint64
	for i, name := range names {
		addr, ok := env.PeerAddrs[name]
		if !ok {
			return nil, fmt.Errorf("raft-kv: --peers must give every node's actor transport address as name=host:port (missing for %q)", name)
		}
		id := uint64(i + 1)
		k.peers[id], k.names[id] = addr, name
		if name == env.Node.Name() {
			self = id
		}
	}
	if self == 0 {
		return nil, fmt.Errorf("raft-kv: this node (%s) is not in --peers %v", env.Node.Name(), names)
	}
	sys := env.Node.System()
	sup, err := raft.Start(sys, raft.Config{
		Group: kvGroup, ID: self, Peers: k.peers,
		Dir:             filepath.Join(env.DataDir, "raft", kvGroup),
		NewStateMachine: func() replog.StateMachine { return kv.NewStore() },
	})
	if err != nil {
		return nil, err
	}
	k.client = raft.NewClient(sys, kvGroup, k.peers, raft.ClientOptions{AttemptTimeout: 500 * time.Millisecond})
	k.store = kv.NewClient(k.client)
	writer, err := sys.SpawnNamed(k.writerProps(), "kv-writer")
	if err != nil {
		return nil, err
	}
	if env.Mux != nil {
		env.Mux.HandleFunc("/api/raft", k.auth(k.serveStatus))
		env.Mux.HandleFunc("/api/kv/", k.auth(k.serveKV))
		env.Mux.HandleFunc("/api/check", k.auth(k.serveCheck))
	}
	env.Logger.Info("raft-kv member started", zap.Uint64("id", self), zap.Any("peers", k.names))
	return func(ctx context.Context) error {
		_ = sys.Stop(ctx, writer)
		return sys.Stop(ctx, sup)
	}, nil
}

type writeTick struct{}

type writeDone struct{ err error }

// writerProps is the steady workload: a put every 200 ms, one at a time,
// its outcome shown in the observer (Context.SetInfo).
func (k *kvNode) writerProps() *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		var ok, failed atomic.Int64
		var lastErr atomic.Value
		inFlight := false
		n := 0
		return actor.ReceiveFunc(func(c *actor.Context) {
			switch m := c.Message().(type) {
			case *actor.Started:
				c.SetInfo(func() string {
					s := fmt.Sprintf("kv writer: %d puts ok, %d failed", ok.Load(), failed.Load())
					if e, _ := lastErr.Load().(string); e != "" {
						s += " (last error: " + e + ")"
					}
					return s
				})
				c.Tick(200*time.Millisecond, writeTick{})
			case writeTick:
				if inFlight {
					return
				}
				inFlight = true
				n++
				key := fmt.Sprintf("%s-%d", k.env.Node.Name(), n%10)
				self, sys := c.Self(), c.System()
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					defer cancel()
					err := k.store.Put(ctx, key, fmt.Appendf(nil, "%d", n))
					sys.Send(self, writeDone{err})
				}()
			case writeDone:
				inFlight = false
				if m.err != nil {
					failed.Add(1)
					lastErr.Store(m.err.Error())
				} else {
					ok.Add(1)
				}
			}
		})
	}, actor.WithKind("kv-writer"))
}

// auth checks the cluster-secret token as the observer's API does.
func (k *kvNode) auth(h http.HandlerFunc) http.HandlerFunc {
	if k.env.Secret == "" {
		return h
	}
	want := observer.Token(k.env.Secret)
	return func(w http.ResponseWriter, r *http.Request) {
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "wrong or missing cluster secret (dist --secret or DIST_SECRET)"})
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// memberStatus is one member's view, as /api/raft reports it.
type memberStatus struct {
	ID       uint64 `json:"id"`
	Node     string `json:"node"`
	Role     string `json:"role,omitempty"`
	Term     uint64 `json:"term,omitempty"`
	Leader   uint64 `json:"leader,omitempty"`
	Commit   uint64 `json:"commit,omitempty"`
	Applied  uint64 `json:"applied,omitempty"`
	Snapshot uint64 `json:"snapshot_index,omitempty"`
	PID      string `json:"pid,omitempty"`
	Error    string `json:"error,omitempty"`

	pid *actor.PID // the member actor, for the check's nemesis
}

func (k *kvNode) statuses(ctx context.Context) []memberStatus {
	out := make([]memberStatus, 0, len(k.peers))
	for id := range k.peers {
		ms := memberStatus{ID: id, Node: k.names[id]}
		sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		st, err := k.client.Status(sctx, id)
		cancel()
		if err != nil {
			ms.Error = err.Error()
		} else {
			ms.Role, ms.Term, ms.Leader, ms.Commit, ms.Applied, ms.Snapshot =
				st.Role, st.Term, st.LeaderId, st.Commit, st.Applied, st.SnapshotIndex
			if pid, err := actor.PIDFromProto(st.Pid); err == nil {
				ms.pid, ms.PID = pid, observer.FormatPID(ms.Node, pid.ID())
			}
		}
		out = append(out, ms)
	}
	slices.SortFunc(out, func(a, b memberStatus) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (k *kvNode) serveStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, k.statuses(r.Context()))
}

// kvResult is the JSON answer of /api/kv/.
type kvResult struct {
	Key     string `json:"key"`
	Found   bool   `json:"found"`
	Value   string `json:"value,omitempty"`
	Swapped *bool  `json:"swapped,omitempty"`
	Error   string `json:"error,omitempty"`
}

func (k *kvNode) serveKV(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.URL.Path, "/api/kv/")
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	res := kvResult{Key: key}
	var err error
	switch r.Method {
	case http.MethodGet:
		var v []byte
		v, res.Found, err = k.store.Get(ctx, key)
		res.Value = string(v)
	case http.MethodPut, http.MethodPost, http.MethodDelete:
		body, rerr := io.ReadAll(io.LimitReader(r.Body, kv.MaxValueSize+1))
		if rerr != nil {
			writeJSON(w, http.StatusBadRequest, kvResult{Key: key, Error: "reading the value: " + rerr.Error()})
			return
		}
		switch {
		case r.Method == http.MethodDelete:
			res.Found, err = k.store.Delete(ctx, key)
		case r.Method == http.MethodPost && r.URL.Query().Has("cas"):
			var sw bool
			var prev []byte
			sw, prev, res.Found, err = k.store.CompareAndSwap(ctx, key, []byte(r.URL.Query().Get("cas")), body)
			res.Swapped, res.Value = &sw, string(prev)
		default:
			err = k.store.Put(ctx, key, body)
			res.Found, res.Value = err == nil, string(body)
		}
	default:
		writeJSON(w, http.StatusMethodNotAllowed, kvResult{Key: key, Error: "use GET, PUT, POST ?cas= or DELETE"})
		return
	}
	code := http.StatusOK
	if err != nil {
		res.Error = err.Error()
		code = http.StatusServiceUnavailable
		if errors.Is(err, kv.ErrRejected) {
			code = http.StatusBadRequest
		}
	}
	writeJSON(w, code, res)
}

// checkResult is the JSON answer of /api/check.
type checkResult struct {
	Verdict    string   `json:"verdict"`
	Operations int      `json:"operations"`
	OK         int      `json:"ok"`
	Unknown    int      `json:"unknown_outcome"`
	Faults     []string `json:"faults"`
	Stale      bool     `json:"stale_reads"`
	HTML       string   `json:"html,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// serveCheck runs a linearizability check: concurrent clients on this node
// record a history while a nemesis kills the leader's actor (its supervisor
// restarts it) every second; porcupine judges the history.
func (k *kvNode) serveCheck(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, checkResult{Error: "use POST"})
		return
	}
	d, err := time.ParseDuration(r.URL.Query().Get("d"))
	if err != nil || d <= 0 || d > 10*time.Minute {
		writeJSON(w, http.StatusBadRequest, checkResult{Error: "d must be a duration between 0 and 10m, like d=10s"})
		return
	}
	stale := r.URL.Query().Get("stale") == "true"
	ctx, cancel := context.WithTimeout(r.Context(), d)
	defer cancel()
	var mu sync.Mutex
	var faults []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for _, st := range k.statuses(ctx) {
				if st.Role == "leader" && st.pid != nil && k.env.Node.System().Kill(st.pid) == nil {
					mu.Lock()
					faults = append(faults, "killed the leader's actor on "+st.Node)
					mu.Unlock()
				}
			}
			t := time.NewTimer(time.Second + rand.N(500*time.Millisecond))
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}()
	rec := kvcheck.NewRecorder()
	rec.Run(ctx, kvcheck.Workload{Clients: 4, Keys: 3, OpTimeout: 2 * time.Second}, func() *kv.Client {
		return kv.NewClient(raft.NewClient(k.env.Node.System(), kvGroup, k.peers,
			raft.ClientOptions{AttemptTimeout: 500 * time.Millisecond, StaleReads: stale}))
	})
	<-done
	res, info := rec.Check(time.Minute)
	st := rec.Stats()
	out := checkResult{Verdict: string(res), Operations: st.Recorded, OK: st.OK, Unknown: st.Unknown, Stale: stale}
	mu.Lock()
	out.Faults = faults
	mu.Unlock()
	if f, err := os.CreateTemp("", "dist-check-*.html"); err == nil {
		name := f.Name()
		f.Close()
		if kvcheck.Visualize(info, name) == nil {
			if b, err := os.ReadFile(name); err == nil {
				out.HTML = string(b)
			}
		}
		os.Remove(name)
	}
	if res == porcupine.Unknown {
		out.Error = "the checker timed out; the history is too long to judge"
	}
	writeJSON(w, http.StatusOK, out)
}
