package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/distributed-go/distributed/cluster"
	"github.com/distributed-go/distributed/observer"
)

// exitCrashed is the exit status of a node that crashed on request (dist
// crash, the observer's crash button): whatever runs the process (dist
// demo, Kubernetes) restarts it from its data directory.
const exitCrashed = 75

// parsePeers parses --peers: comma-separated name or name=host:port.
func parsePeers(s string) (names []string, addrs map[string]string, err error) {
	addrs = map[string]string{}
	for _, p := range splitList(s) {
		name, addr, hasAddr := strings.Cut(p, "=")
		if name == "" || (hasAddr && addr == "") {
			return nil, nil, fmt.Errorf("--peers: %q is not name or name=host:port", p)
		}
		if hasAddr {
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return nil, nil, fmt.Errorf("--peers: %q: %w", p, err)
			}
			addrs[name] = addr
		}
		names = append(names, name)
	}
	return names, addrs, nil
}

// nodeFlags are dist node's flags.
type nodeFlags struct {
	name, listen, gossip, advertise, remoteAdvertise, join, data string
	http, secret                                                 string
	actions                                                      bool
	preset, logFormat, logLevel, workload, peers                 string
}

const nodeUsage = "node --name n1 [--listen host:port] [--gossip host:port] [--join host:port,...] [--data dir] [--http host:port] [--actions]"

// nodeFlagSet returns dist node's flags, bound to f.
func nodeFlagSet(f *nodeFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.StringVar(&f.name, "name", os.Getenv("DIST_NAME"), "the node's `name`, unique in the cluster ($DIST_NAME)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:7000", "actor transport (TCP) `host:port`")
	fs.StringVar(&f.gossip, "gossip", "127.0.0.1:7946", "gossip (UDP and TCP) `host:port`")
	fs.StringVar(&f.advertise, "advertise", os.Getenv("DIST_ADVERTISE"), "`host` other nodes reach this one at, when listening on 0.0.0.0 ($DIST_ADVERTISE)")
	fs.StringVar(&f.remoteAdvertise, "remote-advertise", os.Getenv("DIST_REMOTE_ADVERTISE"), "`host` (an IP or a DNS name) other nodes reach the actor transport at, if not --advertise: a stable name, such as a Kubernetes pod's, keeps PIDs and --peers valid when the IP changes ($DIST_REMOTE_ADVERTISE)")
	fs.StringVar(&f.join, "join", os.Getenv("DIST_JOIN"), "comma-separated gossip `addresses` of nodes to join; DNS names resolve to all their addresses ($DIST_JOIN)")
	fs.StringVar(&f.data, "data", "", "data `directory` (created if missing)")
	fs.StringVar(&f.http, "http", "127.0.0.1:8080", "observer, /metrics and /health `host:port`")
	fs.StringVar(&f.secret, "secret", os.Getenv("DIST_SECRET"), "cluster `secret` ($DIST_SECRET); empty: an open cluster")
	fs.BoolVar(&f.actions, "actions", false, "enable actions (kill, crash, partition, delay, drop) from the observer and the CLI")
	fs.StringVar(&f.preset, "preset", "lan", "gossip timing: lan (memberlist's LAN timing) or local (one machine: fast failure detection)")
	fs.StringVar(&f.logFormat, "log-format", "json", "log format: json or console")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.workload, "workload", "none", "workload to run: "+strings.Join(workloadNames(), ", "))
	fs.StringVar(&f.peers, "peers", os.Getenv("DIST_PEERS"), "all the nodes the cluster is expected to have, comma-separated `name[=host:port]` with each one's actor transport address (for workloads: raft-kv needs the addresses) ($DIST_PEERS)")
	return fs
}

func runNode(args []string, stdout, stderr io.Writer) int {
	var f nodeFlags
	fs := nodeFlagSet(&f)
	pos, code, done := parseFlags(fs, args, stderr, nodeUsage)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, nodeUsage, "unexpected arguments: %s", strings.Join(pos, " "))
	}
	if f.name == "" {
		return usageError(stderr, nodeUsage, "--name is required")
	}
	log, err := newLogger(f.logFormat, f.logLevel, stderr)
	if err != nil {
		return usageError(stderr, nodeUsage, "%v", err)
	}
	defer func() { _ = log.Sync() }()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	crashed := make(chan struct{})
	var crashOnce sync.Once
	if err := serveNode(f, log, sigs, func() { crashOnce.Do(func() { close(crashed) }) }, crashed); err != nil {
		log.Error("node failed", zap.Error(err))
		fmt.Fprintln(stderr, "dist node:", err)
		var ce *crashError
		if errors.As(err, &ce) {
			return exitCrashed
		}
		return exitFailure
	}
	return exitOK
}

type crashError struct{}

func (*crashError) Error() string { return "crashed on request" }

func newLogger(format, level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	case "console":
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, fmt.Errorf("--log-format %q: want json or console", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}

// withAdvertise returns host:port with the host replaced by advertise.
func withAdvertise(hostPort, advertise string) (string, error) {
	_, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(advertise, port), nil
}

// serveNode runs a node until a signal (graceful leave) or a crash request.
func serveNode(f nodeFlags, log *zap.Logger, sigs <-chan os.Signal, crash func(), crashed <-chan struct{}) error {
	var cfg cluster.Config
	switch f.preset {
	case "lan":
		cfg = cluster.LAN(f.name)
	case "local":
		cfg = cluster.Local(f.name)
	default:
		return fmt.Errorf("--preset %q: want lan or local", f.preset)
	}
	var w Workload
	if f.workload != "none" && f.workload != "" {
		var ok bool
		if w, ok = workloads[f.workload]; !ok {
			return fmt.Errorf("--workload %q: want one of %s", f.workload, strings.Join(workloadNames(), ", "))
		}
	}
	cfg.RemoteBind, cfg.GossipBind, cfg.Secret, cfg.DataDir, cfg.Logger = f.listen, f.gossip, f.secret, f.data, log
	if f.advertise != "" {
		var err error
		if cfg.RemoteAdvertise, err = withAdvertise(f.listen, f.advertise); err != nil {
			return fmt.Errorf("--listen %q: %w", f.listen, err)
		}
		if cfg.GossipAdvertise, err = withAdvertise(f.gossip, f.advertise); err != nil {
			return fmt.Errorf("--gossip %q: %w", f.gossip, err)
		}
	}
	if f.remoteAdvertise != "" {
		var err error
		if cfg.RemoteAdvertise, err = withAdvertise(f.listen, f.remoteAdvertise); err != nil {
			return fmt.Errorf("--listen %q: %w", f.listen, err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Registerer = reg
	node, err := cluster.NewNode(cfg)
	if err != nil {
		return err
	}
	// Start alone, then join in the background: the first nodes of a
	// cluster (a StatefulSet's pods, the demo's processes) start together
	// and each may come up before its seeds.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = node.Start(ctx)
	cancel()
	if err != nil {
		return err
	}
	if err := node.ServeInspection(cluster.InspectOptions{AllowControl: f.actions, OnCrash: crash}); err != nil {
		node.Stop()
		return err
	}
	var (
		mu         sync.Mutex
		joined     = f.join == ""
		workloadUp = w == nil
		notReady   = "joining"
	)
	ready := func() error {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !joined:
			return fmt.Errorf("not joined yet: %s", notReady)
		case !workloadUp:
			return errors.New("workload " + f.workload + " is starting")
		}
		return nil
	}
	obs, err := observer.New(observer.Options{Node: node, Actions: f.actions, Secret: f.secret, Gatherer: reg,
		Registerer: reg, Ready: ready, Logger: log.Named("observer")})
	if err != nil {
		node.Stop()
		return err
	}
	ln, err := net.Listen("tcp", f.http)
	if err != nil {
		node.Stop()
		return fmt.Errorf("--http %s: %w", f.http, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", obs.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("observer listening", zap.String("url", "http://"+ln.Addr().String()+"/"), zap.Bool("actions", f.actions))

	stop := make(chan struct{})
	var bg sync.WaitGroup
	if seeds := splitList(f.join); len(seeds) > 0 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			joinLoop(node, seeds, log, stop, func(ok bool, why string) {
				mu.Lock()
				joined, notReady = ok, why
				mu.Unlock()
			})
		}()
	}
	var stopWorkload func(context.Context) error
	if w != nil {
		wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
		names, addrs, perr := parsePeers(f.peers)
		if perr != nil {
			wcancel()
			close(stop)
			bg.Wait()
			_ = srv.Close()
			node.Stop()
			return perr
		}
		stopWorkload, err = w.Start(wctx, WorkloadEnv{Node: node, DataDir: f.data, Peers: names, PeerAddrs: addrs,
			Logger: log.Named(w.Name()), Mux: mux, Secret: f.secret})
		wcancel()
		if err != nil {
			close(stop)
			bg.Wait()
			_ = srv.Close()
			node.Stop()
			return err
		}
		mu.Lock()
		workloadUp = true
		mu.Unlock()
		log.Info("workload started", zap.String("workload", w.Name()))
	}

	select {
	case sig := <-sigs:
		log.Info("leaving the cluster", zap.Stringer("signal", sig))
		close(stop)
		bg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if stopWorkload != nil {
			if err := stopWorkload(ctx); err != nil {
				log.Warn("stopping the workload", zap.Error(err))
			}
		}
		lctx, lcancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer lcancel()
		if err := node.Leave(lctx); err != nil {
			// The others learn of the departure anyway (as a failure).
			log.Warn("leave was not acknowledged", zap.Error(err))
		}
		return nil
	case <-crashed:
		log.Warn("crashed on request: exiting without a goodbye", zap.Int("status", exitCrashed))
		node.Crash()
		return &crashError{}
	}
}

// joinLoop joins the seeds, retrying with backoff until the node sees
// another alive member; then the node counts as joined. It keeps watching:
// whenever the node is alone again (all others dead), it tries the seeds
// again.
func joinLoop(node *cluster.Node, seeds []string, log *zap.Logger, stop <-chan struct{}, set func(bool, string)) {
	backoff := 200 * time.Millisecond
	joined, logged := false, false
	for {
		others := 0
		for _, m := range node.Members() {
			if m.Name != node.Name() && m.State == cluster.Alive {
				others++
			}
		}
		if others > 0 {
			if !joined {
				log.Info("joined the cluster", zap.Int("members_alive", others+1))
			}
			joined, logged = true, false
			set(true, "")
			backoff = 200 * time.Millisecond
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := node.Join(ctx, seeds...)
			cancel()
			why := "waiting for another member"
			if err != nil {
				why = err.Error()
				if !logged {
					log.Warn("cannot join the seeds yet; retrying", zap.Strings("seeds", seeds), zap.Error(err))
					logged = true
				}
			}
			if !joined {
				set(false, why)
			}
			backoff = min(backoff*2, 5*time.Second)
		}
		t := time.NewTimer(backoff)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}
