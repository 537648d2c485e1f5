package raft

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/distributed-go/distributed/behaviors/replog"
)

// Defaults of the tunables. An election timeout is randomized in
// [ElectionTicks, 2*ElectionTicks) ticks: 240–480 ms by default, short
// enough for a quick failover and, with PreVote and CheckQuorum, long enough
// not to depose a healthy leader on a loaded 2-core machine.
const (
	DefaultTickInterval   = 30 * time.Millisecond
	DefaultElectionTicks  = 8
	DefaultHeartbeatTicks = 2
	// DefaultSnapshotEntries is how often (in applied entries) a member
	// snapshots its state machine and compacts its log.
	DefaultSnapshotEntries = 10000
	// DefaultCompactKeep is how many entries a compaction leaves before the
	// snapshot.
	DefaultCompactKeep = 1000
)

// Config configures one member of a Raft group.
type Config struct {
	// Group names the Raft group. The member's actor is registered on its
	// node as ActorName(Group, ID), and peers reach each other by that name
	// (actor.NamedPID), so they keep reaching a member across restarts.
	// Required; letters, digits, '-', '_' and '.'.
	Group string
	// ID is this member's id, never 0, unique in the group.
	ID uint64
	// Peers maps every voting member's id (this one included) to the
	// address of the node it runs on (actor.System.Address). The same map
	// must be given to every member, and on every restart.
	Peers map[uint64]string
	// Dir is the member's data directory (its write-ahead log). Required;
	// typically cluster.Node.DataDir()/raft/<group>.
	Dir string
	// NewStateMachine makes a fresh state machine each time the member
	// starts; the member rebuilds its state by applying the log. Required.
	NewStateMachine func() replog.StateMachine

	// TickInterval is the length of one logical tick. Default
	// DefaultTickInterval.
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks. Default
	// DefaultElectionTicks.
	ElectionTicks int
	// HeartbeatTicks is the leader's heartbeat interval in ticks. Default
	// DefaultHeartbeatTicks.
	HeartbeatTicks int
	// DisablePreVote turns PreVote off (on by default: a member coming back
	// from a partition cannot depose a working leader).
	DisablePreVote bool
	// DisableCheckQuorum turns CheckQuorum off (on by default: a leader cut
	// off from a quorum steps down within an election timeout).
	DisableCheckQuorum bool
	// Join says this member is being added to a running group: Peers lists
	// the members the group was started with (this one not among them), and
	// the member waits for the leader to add it (Client.AddMember) and send
	// it the log.
	Join bool
	// SnapshotEntries: the member snapshots its state machine and compacts
	// its log each time it has applied this many entries since the last
	// snapshot. Default DefaultSnapshotEntries; negative disables snapshots
	// (the log then grows without bound).
	SnapshotEntries int
	// CompactKeep is how many entries before a snapshot stay in the log, so
	// that a follower lagging a little catches up from the log instead of
	// a snapshot. Default DefaultCompactKeep.
	CompactKeep int
	// InMemory keeps the log in process memory instead of a WAL under Dir
	// (Dir may then be empty): it survives the member being killed and
	// restarted by its supervisor, not a crash of the process. For tests,
	// benchmarks and groups whose state may be lost with their nodes.
	InMemory bool
	// NoSync skips fsync (benchmarks of the protocol without the disk only;
	// acknowledged writes may then be lost in a crash).
	NoSync bool

	// Registerer receives the member's metrics. Default: none (Start uses
	// the system's registry).
	Registerer prometheus.Registerer
}

func (c *Config) validate() error {
	var errs []error
	if c.Group == "" || strings.ContainsFunc(c.Group, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) {
		errs = append(errs, fmt.Errorf("Group %q must be non-empty letters, digits, '-', '_' or '.'", c.Group))
	}
	if c.ID == 0 {
		errs = append(errs, errors.New("ID must not be 0"))
	}
	if _, ok := c.Peers[c.ID]; !ok && !c.Join {
		errs = append(errs, fmt.Errorf("Peers must include this member (id %d), unless it Joins", c.ID))
	}
	if _, ok := c.Peers[c.ID]; ok && c.Join {
		errs = append(errs, fmt.Errorf("a joining member (id %d) must not be in Peers", c.ID))
	}
	for id, addr := range c.Peers {
		if id == 0 || addr == "" {
			errs = append(errs, fmt.Errorf("Peers: member %d at %q: ids must be non-zero and addresses non-empty", id, addr))
		}
	}
	if c.Dir == "" && !c.InMemory {
		errs = append(errs, errors.New("Dir is required (unless InMemory)"))
	}
	if c.NewStateMachine == nil {
		errs = append(errs, errors.New("NewStateMachine is required"))
	}
	if c.TickInterval < 0 || c.ElectionTicks < 0 || c.HeartbeatTicks < 0 {
		errs = append(errs, errors.New("TickInterval, ElectionTicks and HeartbeatTicks must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("raft: invalid config: %w", err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.TickInterval == 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = DefaultElectionTicks
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = DefaultHeartbeatTicks
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = DefaultSnapshotEntries
	}
	if c.CompactKeep <= 0 {
		c.CompactKeep = DefaultCompactKeep
	}
	return c
}

// ActorName returns the name member id of group is registered under on its
// node: "raft.<group>.<id>". Several members (of one group or several) can
// share a node.
func ActorName(group string, id uint64) string {
	return "raft." + group + "." + strconv.FormatUint(id, 10)
}

func (c *Config) peerIDs() []uint64 {
	ids := make([]uint64, 0, len(c.Peers))
	for id := range c.Peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
