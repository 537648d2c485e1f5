package core

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
)

// Short names for the membership change types.
const (
	ccAddNode    = raftpb.ConfChangeType_CONF_CHANGE_TYPE_ADD_NODE
	ccRemoveNode = raftpb.ConfChangeType_CONF_CHANGE_TYPE_REMOVE_NODE
	ccAddLearner = raftpb.ConfChangeType_CONF_CHANGE_TYPE_ADD_LEARNER_NODE

	ccAuto          = raftpb.ConfChangeTransition_CONF_CHANGE_TRANSITION_AUTO
	ccJointImplicit = raftpb.ConfChangeTransition_CONF_CHANGE_TRANSITION_JOINT_IMPLICIT
	ccJointExplicit = raftpb.ConfChangeTransition_CONF_CHANGE_TRANSITION_JOINT_EXPLICIT
)

// ErrInvalidConfChange wraps every error about a membership change that
// cannot be applied to the current configuration.
var ErrInvalidConfChange = errors.New("raft: invalid membership change")

// ErrConfChangePending is returned by ProposeConfChange while an earlier
// membership change is not yet applied: only one may be in the log,
// uncommitted or unapplied, at a time.
var ErrConfChangePending = fmt.Errorf("%w: a membership change is already pending", ErrProposalDropped)

// membership is a cluster configuration as the core uses it. While joint,
// decisions need a majority of voters and a majority of outgoing.
type membership struct {
	voters       []uint64 // incoming voters, sorted
	outgoing     []uint64 // outgoing voters while joint, sorted; nil otherwise
	learners     []uint64 // sorted
	learnersNext []uint64 // outgoing voters that become learners on leaving, sorted
	autoLeave    bool
}

func (c membership) joint() bool { return len(c.outgoing) > 0 }

func has(list []uint64, id uint64) bool {
	_, ok := slices.BinarySearch(list, id)
	return ok
}

func insert(list []uint64, id uint64) []uint64 {
	i, ok := slices.BinarySearch(list, id)
	if ok {
		return list
	}
	return slices.Insert(slices.Clone(list), i, id)
}

func remove(list []uint64, id uint64) []uint64 {
	i, ok := slices.BinarySearch(list, id)
	if !ok {
		return list
	}
	return slices.Delete(slices.Clone(list), i, i+1)
}

// isVoter reports whether id votes in either half of the configuration.
func (c membership) isVoter(id uint64) bool { return has(c.voters, id) || has(c.outgoing, id) }

// isLearner reports whether id is a learner and no voter.
func (c membership) isLearner(id uint64) bool {
	return !c.isVoter(id) && (has(c.learners, id) || has(c.learnersNext, id))
}

// voterIDs returns every voter of either half, sorted.
func (c membership) voterIDs() []uint64 {
	out := slices.Clone(c.voters)
	for _, id := range c.outgoing {
		out = insert(out, id)
	}
	return out
}

// ids returns every member, voters and learners, sorted.
func (c membership) ids() []uint64 {
	out := c.voterIDs()
	for _, id := range c.learners {
		out = insert(out, id)
	}
	for _, id := range c.learnersNext {
		out = insert(out, id)
	}
	return out
}

// isSingle reports whether id is the one and only voter.
func (c membership) isSingle(id uint64) bool {
	return !c.joint() && len(c.voters) == 1 && c.voters[0] == id
}

func (c membership) confState() *raftpb.ConfState {
	cs := &raftpb.ConfState{
		Voters:         slices.Clone(c.voters),
		Learners:       slices.Clone(c.learners),
		VotersOutgoing: slices.Clone(c.outgoing),
		LearnersNext:   slices.Clone(c.learnersNext),
		AutoLeave:      c.autoLeave,
	}
	return cs
}

func (c membership) String() string {
	s := fmt.Sprintf("voters=%v", c.voters)
	if c.joint() {
		s += fmt.Sprintf("&&%v", c.outgoing)
	}
	if len(c.learners) > 0 {
		s += fmt.Sprintf(" learners=%v", c.learners)
	}
	if len(c.learnersNext) > 0 {
		s += fmt.Sprintf(" learners_next=%v", c.learnersNext)
	}
	if c.autoLeave {
		s += " autoleave"
	}
	return s
}

// changesString renders changes as "add-voter 4, remove 2".
func changesString(changes []*raftpb.ConfChangeSingle) string {
	var b []byte
	for i, ch := range changes {
		if i > 0 {
			b = append(b, ", "...)
		}
		switch ch.GetType() {
		case ccAddNode:
			b = append(b, "add-voter"...)
		case ccAddLearner:
			b = append(b, "add-learner"...)
		case ccRemoveNode:
			b = append(b, "remove"...)
		default:
			b = fmt.Appendf(b, "change-type-%d", int32(ch.GetType()))
		}
		b = fmt.Appendf(b, " %d", ch.GetNodeId())
	}
	return "[" + string(b) + "]"
}

func confStateString(cs *raftpb.ConfState) string {
	return fmt.Sprintf("voters=%v outgoing=%v learners=%v learners_next=%v auto_leave=%v",
		cs.GetVoters(), cs.GetVotersOutgoing(), cs.GetLearners(), cs.GetLearnersNext(), cs.GetAutoLeave())
}

// membershipFrom checks and converts a ConfState. An empty ConfState is a
// valid empty membership (a node that knows no configuration yet).
func membershipFrom(cs *raftpb.ConfState) (membership, error) {
	var c membership
	if cs == nil {
		return c, nil
	}
	bad := func(why string, args ...any) (membership, error) {
		return membership{}, fmt.Errorf("%w: conf state %s: %s", ErrInvalidConfChange, confStateString(cs), fmt.Sprintf(why, args...))
	}
	sorted := func(name string, ids []uint64) ([]uint64, error) {
		out := slices.Sorted(slices.Values(ids))
		for i, id := range out {
			if id == None {
				return nil, fmt.Errorf("%s contains 0", name)
			}
			if i > 0 && out[i-1] == id {
				return nil, fmt.Errorf("%s lists %d twice", name, id)
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	}
	var err error
	if c.voters, err = sorted("voters", cs.Voters); err != nil {
		return bad("%v", err)
	}
	if c.outgoing, err = sorted("voters_outgoing", cs.VotersOutgoing); err != nil {
		return bad("%v", err)
	}
	if c.learners, err = sorted("learners", cs.Learners); err != nil {
		return bad("%v", err)
	}
	if c.learnersNext, err = sorted("learners_next", cs.LearnersNext); err != nil {
		return bad("%v", err)
	}
	c.autoLeave = cs.AutoLeave
	for _, id := range c.learners {
		if c.isVoter(id) {
			return bad("%d is both a voter and a learner", id)
		}
	}
	for _, id := range c.learnersNext {
		if has(c.voters, id) || !has(c.outgoing, id) || has(c.learners, id) {
			return bad("learner-next %d must be an outgoing voter only", id)
		}
	}
	if !c.joint() && (len(c.learnersNext) > 0 || c.autoLeave) {
		return bad("learners_next and auto_leave need a joint configuration")
	}
	if len(c.voters) == 0 && (c.joint() || len(c.learners) > 0) {
		return bad("no voters")
	}
	return c, nil
}

// apply returns the configuration cc leads to, or an error wrapping
// ErrInvalidConfChange if cc does not apply to c.
func (c membership) apply(cc *raftpb.ConfChange) (membership, error) {
	bad := func(why string, args ...any) (membership, error) {
		return c, fmt.Errorf("%w: %s", ErrInvalidConfChange, fmt.Sprintf(why, args...))
	}
	if len(c.voters) == 0 {
		return bad("no configuration to change")
	}
	if len(cc.Changes) == 0 {
		// Leave the joint configuration (§4.3: C_old,new to C_new).
		if !c.joint() {
			return bad("leaving a joint configuration, but the configuration is not joint")
		}
		n := membership{voters: c.voters, learners: c.learners}
		for _, id := range c.learnersNext {
			n.learners = insert(n.learners, id)
		}
		return n, nil
	}
	if c.joint() {
		return bad("%s: the configuration is joint; leave it first", changesString(cc.Changes))
	}
	if cc.Transition != ccAuto && cc.Transition != ccJointImplicit && cc.Transition != ccJointExplicit {
		return bad("unknown transition %v", cc.Transition)
	}
	joint := cc.Transition != ccAuto || len(cc.Changes) > 1
	n := membership{voters: c.voters, learners: c.learners}
	if joint {
		n.outgoing = c.voters
		n.autoLeave = cc.Transition != ccJointExplicit
	}
	for _, ch := range cc.Changes {
		id := ch.NodeId
		if id == None {
			return bad("change %v names node 0", ch.Type)
		}
		switch ch.Type {
		case ccAddNode:
			n.voters = insert(n.voters, id)
			n.learners = remove(n.learners, id)
			n.learnersNext = remove(n.learnersNext, id)
		case ccAddLearner:
			n.voters = remove(n.voters, id)
			n.learners = remove(n.learners, id)
			n.learnersNext = remove(n.learnersNext, id)
			// An outgoing voter stays a voter until the joint
			// configuration is left, then becomes a learner.
			if has(n.outgoing, id) {
				n.learnersNext = insert(n.learnersNext, id)
			} else {
				n.learners = insert(n.learners, id)
			}
		case ccRemoveNode:
			n.voters = remove(n.voters, id)
			n.learners = remove(n.learners, id)
			n.learnersNext = remove(n.learnersNext, id)
		default:
			return bad("unknown change type %v", ch.Type)
		}
	}
	if len(n.voters) == 0 {
		return bad("%s would remove every voter", changesString(cc.Changes))
	}
	if !joint {
		// A single-server change (§4.1): the old and the new majorities
		// overlap only if at most one voter changes.
		diff := 0
		for _, id := range n.voters {
			if !has(c.voters, id) {
				diff++
			}
		}
		for _, id := range c.voters {
			if !has(n.voters, id) {
				diff++
			}
		}
		if diff > 1 {
			return bad("%s changes more than one voter without joint consensus", changesString(cc.Changes))
		}
	}
	if len(n.voters) == 0 {
		n.voters = nil
	}
	return n, nil
}

// majorityIndex returns the largest index matched by a majority of voters
// (math.MaxUint64 for no voters, so that it never limits a joint minimum).
func majorityIndex(voters []uint64, match func(id uint64) uint64) uint64 {
	if len(voters) == 0 {
		return math.MaxUint64
	}
	m := make([]uint64, len(voters))
	for i, id := range voters {
		m[i] = match(id)
	}
	return quorumIndex(m)
}

// committed is the largest index matched by a quorum: a majority of
// voters and, while joint, a majority of outgoing voters too.
func (c membership) committed(match func(id uint64) uint64) uint64 {
	if len(c.voters) == 0 {
		return 0
	}
	return min(majorityIndex(c.voters, match), majorityIndex(c.outgoing, match))
}

// hasQuorum reports whether the voters for which ok holds form a quorum.
func (c membership) hasQuorum(ok func(id uint64) bool) bool {
	count := func(voters []uint64) bool {
		if len(voters) == 0 {
			return true
		}
		n := 0
		for _, id := range voters {
			if ok(id) {
				n++
			}
		}
		return n >= len(voters)/2+1
	}
	return len(c.voters) > 0 && count(c.voters) && count(c.outgoing)
}

// voteResult is the outcome of an election in c so far: won if both halves
// granted a majority, lost if either half refused a majority.
func (c membership) voteResult(votes map[uint64]bool) voteResult {
	r1 := tallyVotes(c.voters, votes)
	if !c.joint() {
		return r1
	}
	r2 := tallyVotes(c.outgoing, votes)
	switch {
	case r1 == voteWon && r2 == voteWon:
		return voteWon
	case r1 == voteLost || r2 == voteLost:
		return voteLost
	}
	return votePending
}
