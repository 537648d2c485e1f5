package core

import (
	"errors"
	"fmt"
	"log"
	"math"
)

// None is the node id that stands for "no node": no vote cast, no leader
// known.
const None uint64 = 0

// Defaults applied by Config.withDefaults to zero-valued fields.
const (
	// DefaultElectionTick is the default Config.ElectionTick.
	DefaultElectionTick = 10
	// DefaultHeartbeatTick is the default Config.HeartbeatTick.
	DefaultHeartbeatTick = 1
	// DefaultMaxSizePerMsg is the default Config.MaxSizePerMsg (1 MiB).
	DefaultMaxSizePerMsg = 1 << 20
	// DefaultMaxInflightMsgs is the default Config.MaxInflightMsgs.
	DefaultMaxInflightMsgs = 256
	// DefaultMaxSnapshotChunkSize is the default Config.MaxSnapshotChunkSize
	// (1 MiB).
	DefaultMaxSnapshotChunkSize = 1 << 20
)

// Config configures one Raft node. Zero values of the tunables mean their
// defaults; ID and Storage are required.
type Config struct {
	// ID is this node's id. Required, never 0 (0 is None).
	ID uint64

	// Peers are the voters the cluster was bootstrapped with: the
	// configuration at log index 0. Give every node of a cluster the same
	// list, on every start; a node added later by a membership change is
	// given it too (its own id then absent) and learns the later changes
	// from the log. When Storage holds a snapshot, its configuration
	// replaces Peers, which may then be empty. Changes after the bootstrap
	// (or after the snapshot) are re-applied from the log by the
	// application, through ApplyConfChange.
	Peers []uint64

	// Storage is the read-only view of the persisted log and hard state.
	// The caller keeps it up to date: it appends Ready.Entries and sets
	// Ready.HardState before calling Advance. Required.
	Storage Storage

	// ElectionTick is the election timeout in ticks. A follower that hears
	// from no leader for a randomized timeout in [ElectionTick,
	// 2*ElectionTick) ticks starts an election; a leader with CheckQuorum
	// steps down after ElectionTick ticks without hearing from a quorum.
	// Must exceed HeartbeatTick. Default 10.
	ElectionTick int

	// HeartbeatTick is the number of ticks between a leader's heartbeats.
	// Default 1.
	HeartbeatTick int

	// PreVote makes a node that timed out first ask whether it could win
	// (Raft thesis §9.6) before it increments its term, so that a node
	// rejoining from a partition cannot depose a working leader. Default
	// off.
	PreVote bool

	// CheckQuorum makes a leader step down when it has not heard from a
	// quorum of voters within an election timeout, and makes followers that
	// hear from a leader ignore vote requests for the rest of that timeout.
	// Default off.
	CheckQuorum bool

	// ReadOnlyLeaseBased makes a leader answer ReadIndex from its lease,
	// without a heartbeat round, while a quorum acknowledged a heartbeat
	// recently enough that no other leader can have been elected since
	// (followers refuse votes for an election timeout after hearing from
	// their leader). This trades a round trip for an assumption: all nodes
	// tick at the same rate, within a tick of each other. With clocks that
	// drift, reads may be stale. Requires CheckQuorum, and must be set on
	// every node: it also makes a node that just started refuse votes for
	// an election timeout, since before a crash it may have promised a
	// leader not to vote. Default off.
	ReadOnlyLeaseBased bool

	// MaxSizePerMsg bounds, in bytes, the entries carried by one append
	// message; one entry is always sent even if larger. It also bounds the
	// bytes of committed entries in one Ready. Default 1 MiB.
	MaxSizePerMsg uint64

	// MaxSnapshotChunkSize bounds the snapshot data carried by one
	// InstallSnapshot (SNAP) message. A leader sends a snapshot in chunks of
	// at most this size, at most four of them unacknowledged.
	// Default 1 MiB.
	MaxSnapshotChunkSize uint64

	// MaxInflightMsgs bounds how many append messages a leader keeps in
	// flight to one follower while replicating optimistically. Default 256.
	MaxInflightMsgs int

	// MaxInflightBytes bounds the entry bytes in flight to one follower;
	// 0 means no bound other than MaxInflightMsgs.
	MaxInflightBytes uint64

	// Applied is the last index the application has already applied (for a
	// state machine that survives restarts). Committed entries at or below
	// it are not returned again. Default 0: apply from the first entry
	// after the storage's snapshot (the state machine is restored from the
	// snapshot; an Applied below it changes nothing). The configuration
	// the core starts with is the snapshot's (or Peers): an application
	// that sets Applied past the snapshot must not skip membership changes
	// between the two, or pass their result some other way.
	Applied uint64

	// RandSeed seeds the source of randomized election timeouts so that
	// runs can be replayed. 0 means a seed derived from ID.
	RandSeed uint64

	// Logger receives diagnostics. Default: discard.
	Logger Logger
}

// Logger is the logging interface used by the core. *log.Logger satisfies
// it through LoggerFrom.
type Logger interface {
	Debugf(format string, args ...any)
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

type discardLogger struct{}

func (discardLogger) Debugf(string, ...any) {}
func (discardLogger) Infof(string, ...any)  {}
func (discardLogger) Warnf(string, ...any)  {}

type stdLogger struct{ l *log.Logger }

func (s stdLogger) Debugf(f string, a ...any) { s.l.Printf("DEBUG "+f, a...) }
func (s stdLogger) Infof(f string, a ...any)  { s.l.Printf("INFO "+f, a...) }
func (s stdLogger) Warnf(f string, a ...any)  { s.l.Printf("WARN "+f, a...) }

// LoggerFrom adapts a standard library logger.
func LoggerFrom(l *log.Logger) Logger { return stdLogger{l} }

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("raft: invalid config")

// Validate reports the first problem with c, naming the field. It checks c
// as given, after applying defaults to zero-valued tunables.
func (c *Config) Validate() error {
	d := c.withDefaults()
	bad := func(field, why string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(why, args...))
	}
	if d.ID == None {
		return bad("ID", "must not be 0 (0 means no node)")
	}
	if d.Storage == nil {
		return bad("Storage", "is required")
	}
	seen := make(map[uint64]bool, len(d.Peers))
	for _, p := range d.Peers {
		if p == None {
			return bad("Peers", "contains 0 (0 means no node)")
		}
		if seen[p] {
			return bad("Peers", "lists %d twice", p)
		}
		seen[p] = true
	}
	if d.HeartbeatTick <= 0 {
		return bad("HeartbeatTick", "must be positive, got %d", d.HeartbeatTick)
	}
	if d.ElectionTick <= d.HeartbeatTick {
		return bad("ElectionTick", "must be greater than HeartbeatTick (%d), got %d", d.HeartbeatTick, d.ElectionTick)
	}
	if d.ElectionTick > math.MaxInt32 {
		return bad("ElectionTick", "is too large: %d", d.ElectionTick)
	}
	if d.ReadOnlyLeaseBased && !d.CheckQuorum {
		return bad("ReadOnlyLeaseBased", "requires CheckQuorum")
	}
	if d.MaxInflightMsgs <= 0 {
		return bad("MaxInflightMsgs", "must be positive, got %d", d.MaxInflightMsgs)
	}
	return nil
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.ElectionTick == 0 {
		d.ElectionTick = DefaultElectionTick
	}
	if d.HeartbeatTick == 0 {
		d.HeartbeatTick = DefaultHeartbeatTick
	}
	if d.MaxSizePerMsg == 0 {
		d.MaxSizePerMsg = DefaultMaxSizePerMsg
	}
	if d.MaxInflightMsgs == 0 {
		d.MaxInflightMsgs = DefaultMaxInflightMsgs
	}
	if d.MaxSnapshotChunkSize == 0 {
		d.MaxSnapshotChunkSize = DefaultMaxSnapshotChunkSize
	}
	if d.RandSeed == 0 {
		d.RandSeed = d.ID*0x9E3779B97F4A7C15 + 1
	}
	if d.Logger == nil {
		d.Logger = discardLogger{}
	}
	return d
}
