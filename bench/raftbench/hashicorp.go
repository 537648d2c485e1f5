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
	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// kvFSM is a map from keys to values: the same state machine work as ours.
type kvFSM struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (f *kvFSM) Apply(l *hraft.Log) any {
	// Log data is "key\x00value".
	for i, b := range l.Data {
		if b == 0 {
			f.mu.Lock()
			f.m[string(l.Data[:i])] = append([]byte(nil), l.Data[i+1:]...)
			f.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("malformed command")
}

func (f *kvFSM) Snapshot() (hraft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (f *kvFSM) Restore(r io.ReadCloser) error        { return r.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(s hraft.SnapshotSink) error { return s.Close() }
func (nopSnapshot) Release()                           {}

// hashicorp is three hashicorp/raft members in this process.
type hashicorp struct {
	rafts  []*hraft.Raft
	closes []func()
}

func startHashicorp(ctx context.Context, dir string, disk bool, _ int) (system, error) {
	s := &hashicorp{}
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
		r, err := hraft.NewRaft(cfg, &kvFSM{m: map[string][]byte{}}, m.logs, m.stab, m.snaps, m.trans)
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

// put applies on the leader (hashicorp/raft does not forward to it).
func (s *hashicorp) put(ctx context.Context, _ int, key string, value []byte) error {
	l := s.leader()
	if l == nil {
		return fmt.Errorf("no leader")
	}
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	data := append(append([]byte(key), 0), value...)
	return l.Apply(data, timeout).Error()
}

func (s *hashicorp) close() {
	for _, r := range s.rafts {
		r.Shutdown().Error()
	}
	for _, c := range s.closes {
		c()
	}
}
