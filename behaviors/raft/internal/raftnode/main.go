// Command raftnode runs one cluster node with one member of the Raft group
// "kv" serving a kv.Store, in its own process, for tests across real OS
// processes (kill -9, SIGSTOP).
//
//	raftnode --name n1 --id 1 --remote 127.0.0.1:7001 --peers 1=127.0.0.1:7001,2=...,3=... \
//	         --data DIR [--join gossip-addr,...] [--snapshot-entries N]
//
// The actor transport address must be fixed (--remote) because members name
// each other by it; a restarted process gets the same one. Logs go to
// stderr as JSON at warn level. Once the member runs it prints
//
//	READY <remote-address> <gossip-address>
//
// on stdout. SIGTERM or SIGINT make it leave the cluster and exit 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/distributed-go/distributed/behaviors/kv"
	"github.com/distributed-go/distributed/behaviors/raft"
	"github.com/distributed-go/distributed/behaviors/replog"
	"github.com/distributed-go/distributed/cluster"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "raftnode:", err)
		os.Exit(1)
	}
}

func parsePeers(s string) (map[uint64]string, error) {
	peers := map[uint64]string{}
	for _, p := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(p), "=")
		n, err := strconv.ParseUint(id, 10, 64)
		if !ok || err != nil || n == 0 || addr == "" {
			return nil, fmt.Errorf("--peers: %q is not id=host:port", p)
		}
		peers[n] = addr
	}
	return peers, nil
}

func run() error {
	name := flag.String("name", "", "node name (required)")
	id := flag.Uint64("id", 0, "member id (required)")
	remote := flag.String("remote", "", "actor transport host:port, fixed (required)")
	peersFlag := flag.String("peers", "", "every member as id=host:port, comma-separated (required)")
	data := flag.String("data", "", "data directory (required)")
	join := flag.String("join", "", "comma-separated gossip addresses of nodes to join")
	snapEvery := flag.Int("snapshot-entries", 0, "snapshot every N applied entries (0: default)")
	flag.Parse()
	if *name == "" || *id == 0 || *remote == "" || *peersFlag == "" || *data == "" {
		flag.Usage()
		return fmt.Errorf("--name, --id, --remote, --peers and --data are required")
	}
	peers, err := parsePeers(*peersFlag)
	if err != nil {
		return err
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.Lock(os.Stderr), zap.WarnLevel))
	defer func() { _ = log.Sync() }()

	cfg := cluster.Local(*name)
	cfg.RemoteBind, cfg.DataDir, cfg.Logger = *remote, *data, log
	for _, s := range strings.Split(*join, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Seeds = append(cfg.Seeds, s)
		}
	}
	node, err := cluster.NewNode(cfg)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = node.Start(ctx)
	cancel()
	if err != nil {
		return err
	}
	if _, err := raft.Start(node.System(), raft.Config{
		Group: "kv", ID: *id, Peers: peers, Dir: filepath.Join(node.DataDir(), "raft", "kv"),
		NewStateMachine: func() replog.StateMachine { return kv.NewStore() },
		SnapshotEntries: *snapEvery,
	}); err != nil {
		return err
	}
	fmt.Printf("READY %s %s\n", node.Address(), node.GossipAddress())
	<-sigs
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return node.Leave(ctx)
}
