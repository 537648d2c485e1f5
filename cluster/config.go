package cluster

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Config configures a Node. Start from a preset (LAN or Local) and set Name,
// the addresses and Seeds.
type Config struct {
	// Name is the node's name, unique in the cluster. Required.
	Name string
	// RemoteBind is the host:port the actor transport (TCP) listens on.
	// Port 0 picks a free port. Default "127.0.0.1:0".
	RemoteBind string
	// RemoteAdvertise is the host:port other nodes use to reach RemoteBind.
	// Required when RemoteBind's host is unspecified (0.0.0.0 or ::), since
	// such an address cannot be dialled. Default: RemoteBind.
	RemoteAdvertise string
	// GossipBind is the host:port membership gossip (UDP and TCP) listens
	// on. Port 0 picks a free port. Default "127.0.0.1:0".
	GossipBind string
	// GossipAdvertise is the host:port other nodes use to reach GossipBind.
	// Default: GossipBind (with the chosen port).
	GossipAdvertise string
	// Seeds are gossip addresses (host:port) of nodes to join. Empty for
	// the first node of a cluster.
	Seeds []string
	// JoinTimeout bounds Start's attempts to join the seeds. Default 10s.
	JoinTimeout time.Duration
	// Secret is the cluster secret (Erlang's cookie): gossip is encrypted
	// with a key derived from it, and actor-transport connections without
	// it are rejected. Empty means an open cluster (tests, demos).
	Secret string
	// TLS optionally enables mutual TLS for the actor transport.
	TLS TLSConfig
	// DataDir is the node's data directory, created if missing. Behaviours
	// keep their durable state under it. Optional.
	DataDir string
	// Logger receives the node's logs. Default: zap production logger.
	Logger *zap.Logger
	// Registerer receives the node's metrics (and its actor system's).
	// Default: a private registry, see Node.Gatherer.
	Registerer prometheus.Registerer
	// Faults are the fault-injection rules applied to this node's actor
	// messages and gossip. Nodes of one process may share one Faults.
	// Default: NewFaults(1), with no rules.
	Faults *Faults
	// Gossip is the memberlist timing. Set by the presets.
	Gossip GossipTiming
	// SendQueueSize is how many messages the actor transport queues for one
	// peer while its connection is busy or being opened; further messages
	// to that peer are dropped (and counted in
	// cluster_transport_dropped_total{reason="queue_full"}) until the queue
	// drains. The queue is also capped at 64 MiB. Default 65536.
	SendQueueSize int
	// BusyPoll makes the reader of each inbound connection poll its socket
	// for up to this long before it sleeps, as Erlang's schedulers
	// busy-wait (+sbwt). On an otherwise idle machine that saves the kernel
	// wake-up of a sleeping thread on every message, which is most of a
	// request/reply round trip between two processes; it costs CPU while it
	// polls, and on a busy machine that CPU is taken from other work, which
	// makes things slower. Adaptive: a connection stops polling after polls
	// that catch nothing, and at most GOMAXPROCS readers poll at once.
	// 0 (the default) never polls; at most 1 ms.
	BusyPoll time.Duration
}

// defaultSendQueueSize is Config.SendQueueSize's default.
const defaultSendQueueSize = 65536

// GossipTiming is the part of memberlist's configuration that decides how
// fast failures are detected and news spreads.
type GossipTiming struct {
	ProbeInterval    time.Duration // how often a random member is probed
	ProbeTimeout     time.Duration // how long to wait for a probe's ack
	SuspicionMult    int           // suspicion timeout multiplier
	GossipInterval   time.Duration // how often gossip is sent
	GossipNodes      int           // members gossiped to per interval
	PushPullInterval time.Duration // full state sync period (0 disables)
	TCPTimeout       time.Duration // timeout of stream connections
	RetransmitMult   int           // news is retransmitted RetransmitMult*log(N+1) times
	// ReconnectInterval is how often the node tries to join again the
	// members it sees as dead (not those that left): gossip never probes a
	// dead member, so without this a healed partition can stay split.
	ReconnectInterval time.Duration
	// ReconnectTimeout is how long a dead member is retried before it is
	// given up.
	ReconnectTimeout time.Duration
}

// LAN is the preset for nodes on a local network: memberlist's LAN timing
// (a crashed node is declared dead in about 5-6 s in a 3-node cluster).
func LAN(name string) Config {
	d := memberlist.DefaultLANConfig()
	return Config{Name: name, Gossip: GossipTiming{
		ProbeInterval: d.ProbeInterval, ProbeTimeout: d.ProbeTimeout, SuspicionMult: d.SuspicionMult,
		GossipInterval: d.GossipInterval, GossipNodes: d.GossipNodes,
		PushPullInterval: d.PushPullInterval, TCPTimeout: d.TCPTimeout, RetransmitMult: d.RetransmitMult,
		ReconnectInterval: 10 * time.Second, ReconnectTimeout: 24 * time.Hour,
	}}
}

// Local is the preset for nodes on one machine (tests, demos): a crashed node
// is declared dead in well under a second.
func Local(name string) Config {
	return Config{Name: name, Gossip: GossipTiming{
		ProbeInterval: 100 * time.Millisecond, ProbeTimeout: 50 * time.Millisecond, SuspicionMult: 2,
		GossipInterval: 20 * time.Millisecond, GossipNodes: 3,
		PushPullInterval: 5 * time.Second, TCPTimeout: 500 * time.Millisecond, RetransmitMult: 4,
		ReconnectInterval: 500 * time.Millisecond, ReconnectTimeout: 10 * time.Minute,
	}}
}

// withDefaults validates the config and fills in defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		return c, fmt.Errorf("cluster: Config.Name is required")
	}
	if c.RemoteBind == "" {
		c.RemoteBind = "127.0.0.1:0"
	}
	if c.GossipBind == "" {
		c.GossipBind = "127.0.0.1:0"
	}
	for field, v := range map[string]string{"RemoteBind": c.RemoteBind, "GossipBind": c.GossipBind} {
		if _, _, err := splitHostPort(v); err != nil {
			return c, fmt.Errorf("cluster: Config.%s %q: %w", field, v, err)
		}
	}
	if c.RemoteAdvertise == "" {
		h, _, _ := splitHostPort(c.RemoteBind)
		if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
			return c, fmt.Errorf("cluster: Config.RemoteAdvertise is required when RemoteBind %q listens on all interfaces (other nodes cannot dial %s)", c.RemoteBind, h)
		}
	}
	if c.Gossip.ProbeInterval == 0 {
		c.Gossip = LAN(c.Name).Gossip
	}
	if c.Gossip.RetransmitMult <= 0 {
		c.Gossip.RetransmitMult = 4
	}
	if c.JoinTimeout == 0 {
		c.JoinTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		l, err := zap.NewProduction()
		if err != nil {
			return c, err
		}
		c.Logger = l
	}
	if c.Faults == nil {
		c.Faults = NewFaults(1)
	}
	if c.SendQueueSize < 0 {
		return c, fmt.Errorf("cluster: Config.SendQueueSize %d is negative", c.SendQueueSize)
	}
	if c.SendQueueSize == 0 {
		c.SendQueueSize = defaultSendQueueSize
	}
	if c.BusyPoll < 0 || c.BusyPoll > time.Millisecond {
		return c, fmt.Errorf("cluster: Config.BusyPoll %v is outside 0..1ms", c.BusyPoll)
	}
	return c, nil
}

func splitHostPort(hp string) (string, int, error) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number in 0-65535", p)
	}
	return h, port, nil
}
