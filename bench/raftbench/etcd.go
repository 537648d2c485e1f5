package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcd is three etcd processes (Debian's etcd-server) on loopback.
type etcd struct {
	procs   []*exec.Cmd
	clients []*clientv3.Client
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startEtcd(ctx context.Context, dir string, _ bool, clients int) (system, error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, fmt.Errorf("etcd not installed (apt-get install etcd-server): %w", err)
	}
	var peers, cl, initial []string
	for i := 1; i <= 3; i++ {
		p, err := freeAddr()
		if err != nil {
			return nil, err
		}
		c, err := freeAddr()
		if err != nil {
			return nil, err
		}
		peers, cl = append(peers, "http://"+p), append(cl, "http://"+c)
		initial = append(initial, fmt.Sprintf("e%d=http://%s", i, p))
	}
	s := &etcd{}
	for i := range 3 {
		name := fmt.Sprintf("e%d", i+1)
		cmd := exec.Command(bin, "--name", name, "--data-dir", filepath.Join(dir, name),
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--listen-client-urls", cl[i], "--advertise-client-urls", cl[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "raftbench", "--log-level", "error", "--logger", "zap")
		if err := cmd.Start(); err != nil {
			s.close()
			return nil, err
		}
		s.procs = append(s.procs, cmd)
	}
	for range clients {
		c, err := clientv3.New(clientv3.Config{Endpoints: cl, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			s.close()
			return nil, err
		}
		s.clients = append(s.clients, c)
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := s.clients[0].Put(pctx, "warm", "up")
		cancel()
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			s.close()
			return nil, fmt.Errorf("etcd did not start: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *etcd) put(ctx context.Context, c int, key string, value []byte) error {
	_, err := s.clients[c].Put(ctx, key, string(value))
	return err
}

func (s *etcd) close() {
	for _, c := range s.clients {
		c.Close()
	}
	for _, p := range s.procs {
		p.Process.Kill()
		p.Wait()
	}
}
