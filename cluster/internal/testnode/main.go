// Command testnode runs one cluster node in its own process, for tests that
// need real OS processes (kill -9, SIGTERM) rather than nodes in one process.
//
//	testnode --name n2 --join 127.0.0.1:7946 [--remote 127.0.0.1:0] [--gossip 127.0.0.1:0] [--secret s]
//
// It uses the Local preset, logs JSON to stderr at warn level, and registers
// the kinds "echo", an actor that answers a *wrapperspb.StringValue v with
// "echo <v> from <node>", and "int64echo", which answers a
// *wrapperspb.Int64Value with itself (the remote benchmarks). Once started
// it prints one line
//
//	READY <remote-address> <gossip-address>
//
// on stdout. On SIGTERM or SIGINT it leaves the cluster gracefully and exits
// 0; killed, it just dies (a crash, as the other members see it).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/cluster"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testnode:", err)
		os.Exit(1)
	}
}

func run() error {
	name := flag.String("name", "", "node name, unique in the cluster (required)")
	remoteAddr := flag.String("remote", "127.0.0.1:0", "actor transport host:port")
	gossipAddr := flag.String("gossip", "127.0.0.1:0", "gossip host:port")
	join := flag.String("join", "", "comma-separated gossip addresses of nodes to join")
	secret := flag.String("secret", "", "cluster secret")
	flag.Parse()
	if *name == "" {
		flag.Usage()
		return fmt.Errorf("--name is required")
	}

	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.Lock(os.Stderr), zap.WarnLevel))
	defer func() { _ = log.Sync() }()

	cfg := cluster.Local(*name)
	cfg.RemoteBind = *remoteAddr
	cfg.GossipBind = *gossipAddr
	cfg.Secret = *secret
	cfg.Logger = log
	for _, s := range strings.Split(*join, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Seeds = append(cfg.Seeds, s)
		}
	}
	node, err := cluster.NewNode(cfg)
	if err != nil {
		return err
	}
	if err := node.RegisterKind("echo", echoKind(*name)); err != nil {
		return err
	}
	if err := node.RegisterKind("int64echo", int64Echo); err != nil {
		return err
	}

	// Subscribe before starting, so a signal during a slow join still
	// leads to a graceful exit.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = node.Start(ctx)
	cancel()
	if err != nil {
		return err
	}
	fmt.Printf("READY %s %s\n", node.Address(), node.GossipAddress())

	sig := <-sigs
	log.Warn("leaving", zap.String("node", *name), zap.Stringer("signal", sig))
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return node.Leave(ctx)
}

// echoKind answers "echo <value> from <node>".
func echoKind(node string) cluster.KindFunc {
	return func([]byte) (*actor.Props, error) {
		return actor.PropsFromFunc(func(c *actor.Context) {
			if m, ok := c.Message().(*wrapperspb.StringValue); ok {
				c.Reply(wrapperspb.String("echo " + m.GetValue() + " from " + node))
			}
		}, actor.WithKind("echo")), nil
	}
}

// int64Echo makes an actor that answers every *wrapperspb.Int64Value with
// itself.
func int64Echo([]byte) (*actor.Props, error) {
	return actor.PropsFromFunc(func(c *actor.Context) {
		if m, ok := c.Message().(*wrapperspb.Int64Value); ok {
			c.Reply(m)
		}
	}, actor.WithKind("int64echo")), nil
}
