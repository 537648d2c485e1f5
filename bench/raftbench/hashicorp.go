package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/distributed-go/distributed/behaviors/kv"
	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// kvFSM runs the same state machine as ours (behaviors/kv's Store, with its
// client sessions) under hashicorp/raft, so both sides do the same work per
// command.
type kvFSM struct {
	mu sync.Mutex
	s  *kv.Store
}

func (f *kvFSM) Apply(l *hraft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.s.Apply(l.Index, l.Data)
}

func (f *kvFSM) Snapshot() (hraft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (f *kvFSM) Restore(r io.ReadCloser) error        { return r.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(s hraft.SnapshotSink) error { return s.Close() }
func (nopSnapshot) Release()                           {}

// hashicorp is three hashicorp/raft members in this process.
type hashicorp struct {
	rafts   []*hraft.Raft
	closes  []func()
	clients []*kv.Client
}

// hashicorpLog is replog.Log over hashicorp/raft: proposals are applied on
// the leader (hashicorp/raft does not forward to it), and reads are not
// used by this benchmark.
type hashicorpLog struct{ s *hashicorp }

func (l hashicorpLog) Propose(ctx context.Context, cmd []byte) ([]byte, error) {
	leader := l.s.leader()
	if leader == nil {
		return nil, fmt.Errorf("no leader")
	}
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := leader.Apply(cmd, timeout)
	if err := f.Error(); err != nil {
		return nil, err
	}
	res, _ := f.Response().([]byte)
	return res, nil
}

func (l hashicorpLog) Read(context.Context, []byte) ([]byte, error) {
	return nil, fmt.Errorf("reads are not measured")
}

func startHashicorp(ctx context.Context, dir string, disk bool, clients int) (system, error) {
	s := &hashicorp{}
	for range clients {
		s.clients = append(s.clients, kv.NewClient(hashicorpLog{s}))
	}
	var servers []hraft.Server
	type member struct {
		id    hraft.ServerID
		trans hraft.Transport
		logs  hraft.LogStore
		stab  hraft.StableStore
		snaps hraft.SnapshotStore
	}
	var members []member
	var inmem []*hraft.InmemTransport
	for i := 1; i <= 3; i++ {
		m := member{id: hraft.ServerID("h" + strconv.Itoa(i))}
		if disk {
			t, err := hraft.NewTCPTransport("127.0.0.1:0", nil, 8, 10*time.Second, io.Discard)
			if err != nil {
				return nil, err
			}
			store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, string(m.id)+".bolt")})
			if err != nil {
				return nil, err
			}
			snaps, err := hraft.NewFileSnapshotStore(filepath.Join(dir, string(m.id)), 1, io.Discard)
			if err != nil {
				return nil, err
			}
			m.trans, m.logs, m.stab, m.snaps = t, store, store, snaps
			s.closes = append(s.closes, func() { t.Close(); store.Close() })
		} else {
			addr, t := hraft.NewInmemTransport("")
			_ = addr
			inmem = append(inmem, t)
			store := hraft.NewInmemStore()
			m.trans, m.logs, m.stab, m.snaps = t, store, store, hraft.NewInmemSnapshotStore()
		}
		servers = append(servers, hraft.Server{ID: m.id, Address: m.trans.LocalAddr()})
		members = append(members, m)
	}
	for _, a := range inmem {
		for _, b := range inmem {
			if a != b {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
	for _, m := range members {
		cfg := hraft.DefaultConfig()
		cfg.LocalID = m.id
		cfg.Logger = hclog.NewNullLogger()
		if err := hraft.BootstrapCluster(cfg, m.logs, m.stab, m.snaps, m.trans, hraft.Configuration{Servers: servers}); err != nil {
			return nil, err
		}
		r, err := hraft.NewRaft(cfg, &kvFSM{s: kv.NewStore()}, m.logs, m.stab, m.snaps, m.trans)
		if err != nil {
			return nil, err
		}
		s.rafts = append(s.rafts, r)
	}
	for ctx.Err() == nil {
		if s.leader() != nil {
			return s, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.close()
	return nil, fmt.Errorf("hashicorp/raft elected no leader: %w", ctx.Err())
}

func (s *hashicorp) leader() *hraft.Raft {
	for _, r := range s.rafts {
		if r.State() == hraft.Leader {
			return r
		}
	}
	return nil
}

// put writes through a kv.Client (sessions, protobuf commands) applied on
// the leader, as ours does.
func (s *hashicorp) put(ctx context.Context, c int, key string, value []byte) error {
	return s.clients[c].Put(ctx, key, value)
}

func (s *hashicorp) close() {
	for _, r := range s.rafts {
		r.Shutdown().Error()
	}
	for _, c := range s.closes {
		c()
	}
}
