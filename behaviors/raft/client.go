package raft

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"github.com/distributed-go/distributed/behaviors/raft/rpcpb"
	"github.com/distributed-go/distributed/behaviors/replog"
)

// ClientOptions tune a Client. Zero values mean the defaults.
type ClientOptions struct {
	// AttemptTimeout bounds one request to one member before the client
	// tries again (possibly elsewhere). Default 1 s.
	AttemptTimeout time.Duration
	// MinBackoff and MaxBackoff bound the pause between attempts, which
	// doubles from MinBackoff up to MaxBackoff, with full jitter. Defaults
	// 5 ms and 250 ms.
	MinBackoff, MaxBackoff time.Duration
	// StaleReads makes Read ask any member for its own state, without
	// ReadIndex: faster, but a read may miss writes that completed before
	// it (and see them vanish on the next read). For demonstrations of what
	// linearizable reads buy.
	StaleReads bool
}

// Client sends proposals and reads to a Raft group and implements
// replog.Log. It finds the leader (following members' redirects), retries
// with backoff and jitter until its context ends, and remembers the leader
// for the next request. Safe for concurrent use.
type Client struct {
	sys   *actor.System
	group string
	opts  ClientOptions

	// leader is the leader last found and its PID: read without the lock
	// by every request.
	leader atomic.Pointer[leaderRef]

	mu      sync.Mutex
	members map[uint64]string
	ids     []uint64
	pids    map[uint64]*actor.PID // by member id, for its current address
}

type leaderRef struct {
	id  uint64
	pid *actor.PID
}

var _ replog.Log = (*Client)(nil)

// NewClient returns a client of the group whose members run on the nodes
// in members (id → node address, as Config.Peers), sending from sys.
func NewClient(sys *actor.System, group string, members map[uint64]string, opts ClientOptions) *Client {
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 5 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(250*time.Millisecond, opts.MinBackoff)
	}
	c := &Client{sys: sys, group: group, opts: opts, members: map[uint64]string{}}
	for id, a := range members {
		c.members[id] = a
		c.ids = append(c.ids, id)
	}
	slices.Sort(c.ids)
	return c
}

// Propose appends command to the group's log and returns the state
// machine's result. On failure the error wraps replog.ErrOutcomeUnknown if
// the command may have been applied (or may still be), or
// replog.ErrNoLeader if no member accepted it.
func (c *Client) Propose(ctx context.Context, command []byte) ([]byte, error) {
	r, err := c.do(ctx, &rpcpb.ProposeRequest{Command: command}, true)
	if err != nil {
		return nil, err
	}
	return r.(*rpcpb.ProposeResponse).Result, nil
}

// Read evaluates query on the state machine, linearizably through the
// leader's ReadIndex (or from any member with ClientOptions.StaleReads).
func (c *Client) Read(ctx context.Context, query []byte) ([]byte, error) {
	r, err := c.do(ctx, &rpcpb.ReadRequest{Query: query, Stale: c.opts.StaleReads}, false)
	if err != nil {
		return nil, err
	}
	return r.(*rpcpb.ReadResponse).Result, nil
}

// AddVoter adds a voting member id running on the node at address (or
// promotes the learner id), and returns the configuration after the change.
// Add a new member as a learner first and promote it once it has caught up,
// so that the group keeps its quorum meanwhile. The new member is started
// with Config.Join.
func (c *Client) AddVoter(ctx context.Context, id uint64, address string) (*raftpb.ConfState, error) {
	return c.changeMembership(ctx, raftpb.ConfChangeType_CONF_CHANGE_TYPE_ADD_NODE, id, address)
}

// AddLearner adds a learner (it receives the log, never votes) id on the
// node at address, or demotes the voter id to learner.
func (c *Client) AddLearner(ctx context.Context, id uint64, address string) (*raftpb.ConfState, error) {
	return c.changeMembership(ctx, raftpb.ConfChangeType_CONF_CHANGE_TYPE_ADD_LEARNER_NODE, id, address)
}

// RemoveMember removes the voter or learner id from the group.
func (c *Client) RemoveMember(ctx context.Context, id uint64) (*raftpb.ConfState, error) {
	return c.changeMembership(ctx, raftpb.ConfChangeType_CONF_CHANGE_TYPE_REMOVE_NODE, id, "")
}

// changeMembership asks the leader for one membership change. Retrying
// one is safe: adding a member twice or removing an absent one changes
// nothing.
func (c *Client) changeMembership(ctx context.Context, t raftpb.ConfChangeType, id uint64, address string) (*raftpb.ConfState, error) {
	r, err := c.do(ctx, &rpcpb.MembershipRequest{Type: t, NodeId: id, Address: address}, true)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if t == raftpb.ConfChangeType_CONF_CHANGE_TYPE_REMOVE_NODE {
		c.forget(id)
		delete(c.members, id)
		if i := slices.Index(c.ids, id); i >= 0 {
			c.ids = slices.Delete(c.ids, i, i+1)
		}
	} else if _, ok := c.members[id]; !ok {
		c.members[id] = address
		c.ids = append(c.ids, id)
		slices.Sort(c.ids)
	}
	c.mu.Unlock()
	return r.(*rpcpb.MembershipResponse).ConfState, nil
}

// Status asks member id for its view of the group.
func (c *Client) Status(ctx context.Context, id uint64) (*rpcpb.Status, error) {
	c.mu.Lock()
	addr, ok := c.members[id]
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("raft: no member %d in group %s", id, c.group)
	}
	return actor.Ask[*rpcpb.Status](ctx, c.sys, c.pid(addr, id), &rpcpb.StatusRequest{})
}

// Leader returns the leader the client last found (0 if none yet).
func (c *Client) Leader() uint64 {
	if l := c.leader.Load(); l != nil {
		return l.id
	}
	return 0
}

// forget forgets member id as the leader, if it is the one.
func (c *Client) forget(id uint64) {
	if l := c.leader.Load(); l != nil && l.id == id {
		c.leader.CompareAndSwap(l, nil)
	}
}

// pid returns the PID of member id at addr, built once.
func (c *Client) pid(addr string, id uint64) *actor.PID {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pids[id]; ok && p.Address() == addr {
		return p
	}
	if c.pids == nil {
		c.pids = map[uint64]*actor.PID{}
	}
	p := actor.NamedPID(addr, ActorName(c.group, id))
	c.pids[id] = p
	return p
}

func (c *Client) do(ctx context.Context, req proto.Message, write bool) (proto.Message, error) {
	stale := !write && c.opts.StaleReads
	var target uint64
	var pid *actor.PID
	if l := c.leader.Load(); l != nil && !stale {
		target, pid = l.id, l.pid
	} else {
		c.mu.Lock()
		target = c.ids[rand.IntN(len(c.ids))]
		addr := c.members[target]
		c.mu.Unlock()
		pid = c.pid(addr, target)
	}
	backoff := c.opts.MinBackoff
	maybeApplied := false
	var last error
	for attempt := 0; ; attempt++ {
		reply, err := actor.AskTimeout[proto.Message](ctx, c.sys, pid, req, c.opts.AttemptTimeout)
		redirected := false
		switch r := reply.(type) {
		case *rpcpb.ProposeResponse, *rpcpb.ReadResponse, *rpcpb.MembershipResponse:
			if err == nil {
				if l := c.leader.Load(); !stale && (l == nil || l.id != target || l.pid != pid) {
					c.leader.Store(&leaderRef{id: target, pid: pid})
				}
				return r, nil
			}
		case *rpcpb.Redirect:
			last = fmt.Errorf("member %d is not the leader", target)
			if r.LeaderId != 0 && r.LeaderId != target {
				target = r.LeaderId
				addr := r.LeaderAddress
				c.mu.Lock()
				if a, ok := c.members[target]; ok {
					addr = a
				}
				c.mu.Unlock()
				pid = c.pid(addr, target)
				redirected = true
			} else {
				last = fmt.Errorf("member %d knows no leader", target)
			}
		case *rpcpb.Retry:
			last = fmt.Errorf("member %d: %s", target, r.Reason)
			maybeApplied = maybeApplied || r.UnknownOutcome
		default:
			if err == nil {
				err = fmt.Errorf("unexpected reply %T", reply)
			}
		}
		if err != nil {
			last = fmt.Errorf("member %d: %w", target, err)
			// The request may have reached the member before it failed.
			maybeApplied = true
		}
		if ctx.Err() != nil {
			return nil, c.giveUp(ctx, write && maybeApplied, last)
		}
		if redirected {
			continue
		}
		// Try another member after a pause: the leader may be gone.
		c.forget(target)
		c.mu.Lock()
		target = c.ids[(slices.Index(c.ids, target)+1+rand.IntN(len(c.ids)))%len(c.ids)]
		addr := c.members[target]
		c.mu.Unlock()
		pid = c.pid(addr, target)
		t := time.NewTimer(rand.N(backoff) + 1)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, c.giveUp(ctx, write && maybeApplied, last)
		case <-t.C:
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
	}
}

func (c *Client) giveUp(ctx context.Context, unknown bool, last error) error {
	if unknown {
		return fmt.Errorf("raft %s: %w (%w; last: %v)", c.group, replog.ErrOutcomeUnknown, ctx.Err(), last)
	}
	if last == nil {
		last = errors.New("no attempt made")
	}
	return fmt.Errorf("raft %s: %w (%w; last: %v)", c.group, replog.ErrNoLeader, ctx.Err(), last)
}
