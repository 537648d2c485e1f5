package actor

import (
	"fmt"
	"slices"
	"sync"
)

// registry is the local name registry (Erlang's register/whereis).
type registry struct {
	mu    sync.Mutex
	names map[string]*process
}

func (r *registry) register(name string, p *process) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.names[name]; ok && !old.dead.Load() {
		return fmt.Errorf("%w: %q is %s", ErrNameTaken, name, old.pid)
	}
	if r.names == nil {
		r.names = make(map[string]*process)
	}
	r.names[name] = p
	return nil
}

func (r *registry) unregisterIf(name string, p *process) {
	if name == "" {
		return
	}
	r.mu.Lock()
	if r.names[name] == p {
		delete(r.names, name)
	}
	r.mu.Unlock()
}

func (r *registry) lookup(name string) (*process, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.names[name]
	if !ok || p.dead.Load() {
		return nil, false
	}
	return p, true
}

// Register binds name to a live local actor. A name maps to one actor; an
// actor may have several names. Names are freed when the actor dies. Other
// nodes (and this one) reach the holder of a name through NamedPID.
func (s *System) Register(name string, pid *PID) error {
	if err := validName(name); err != nil {
		return err
	}
	p := s.local(pid)
	if p == nil {
		return &DeadActorError{PID: pid}
	}
	if err := s.names.register(name, p); err != nil {
		return err
	}
	p.mu.Lock()
	exited := p.exited
	if !exited {
		p.names = append(p.names, name)
	}
	p.mu.Unlock()
	if exited {
		s.names.unregisterIf(name, p)
		return &DeadActorError{PID: pid}
	}
	s.exposeName(name)
	return nil
}

// Unregister frees name. It reports whether the name was registered.
func (s *System) Unregister(name string) bool {
	p, ok := s.names.lookup(name)
	if !ok {
		return false
	}
	s.names.unregisterIf(name, p)
	p.mu.Lock()
	if i := slices.Index(p.names, name); i >= 0 {
		p.names = slices.Delete(p.names, i, i+1)
	}
	p.mu.Unlock()
	return true
}

// WhereIs returns the live actor registered under name.
func (s *System) WhereIs(name string) (*PID, bool) {
	p, ok := s.names.lookup(name)
	if !ok {
		return nil, false
	}
	return p.pid, true
}

// Registered lists the registered names, sorted.
func (s *System) Registered() []string {
	s.names.mu.Lock()
	out := make([]string, 0, len(s.names.names))
	for n, p := range s.names.names {
		if !p.dead.Load() {
			out = append(out, n)
		}
	}
	s.names.mu.Unlock()
	slices.Sort(out)
	return out
}
