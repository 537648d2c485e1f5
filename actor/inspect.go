package actor

import (
	"slices"
	"strings"
	"time"
)

// ProcessInfo is a snapshot of one live actor, for observers and tools.
type ProcessInfo struct {
	PID          *PID
	Parent       *PID // nil for a top-level actor
	Kind         string
	Names        []string
	Children     []*PID // in start order
	Links        []*PID
	Monitors     int    // monitors on this actor
	MailboxDepth int    // messages waiting
	Processed    uint64 // messages handled so far
	Restarts     uint64 // restarts it performed as a supervisor
	Uptime       time.Duration
	Info         string // the summary set with Context.SetInfo
}

// Info returns a snapshot of a live local actor.
func (s *System) Info(pid *PID) (ProcessInfo, bool) {
	p := s.local(pid)
	if p == nil {
		return ProcessInfo{}, false
	}
	return p.snapshot(), true
}

// Processes returns snapshots of every live actor, sorted by id.
func (s *System) Processes() []ProcessInfo {
	var out []ProcessInfo
	s.procs.Range(func(_, v any) bool {
		out = append(out, v.(*process).snapshot())
		return true
	})
	slices.SortFunc(out, func(a, b ProcessInfo) int { return strings.Compare(a.PID.ID(), b.PID.ID()) })
	return out
}

// TopLevel lists the live top-level actors in spawn order: the roots for
// walking the tree with Info(...).Children.
func (s *System) TopLevel() []*PID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*PID, len(s.top))
	for i, p := range s.top {
		out[i] = p.pid
	}
	return out
}

func (p *process) snapshot() ProcessInfo {
	pi := ProcessInfo{
		PID:          p.pid,
		Kind:         p.kind,
		MailboxDepth: p.mb.UserMessageCount(),
		Processed:    p.mb.processed.Load(),
		Restarts:     p.restarts.Load(),
		Uptime:       time.Since(p.spawned),
	}
	if p.parent != nil {
		pi.Parent = p.parent.pid
	}
	p.mu.Lock()
	pi.Names = slices.Clone(p.names)
	for _, c := range p.children {
		pi.Children = append(pi.Children, c.pid)
	}
	for _, l := range p.links {
		pi.Links = append(pi.Links, l)
	}
	pi.Monitors = len(p.monitors)
	info := p.info
	p.mu.Unlock()
	slices.SortFunc(pi.Links, func(a, b *PID) int { return strings.Compare(a.ID(), b.ID()) })
	if info != nil {
		pi.Info = info()
	}
	return pi
}
