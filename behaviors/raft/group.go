package raft

import (
	"fmt"
	"time"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/supervision"
)

// ChildSpec returns the child specification of a member for a supervisor of
// your own: a permanent worker registered under ActorName(cfg.Group, cfg.ID), so that
// a killed member is restarted from its log and peers reach it again by
// name.
func ChildSpec(cfg Config) (supervision.ChildSpec, error) {
	props, err := Props(cfg)
	if err != nil {
		return supervision.ChildSpec{}, err
	}
	return supervision.ChildSpec{
		ID:           "raft." + cfg.Group,
		Props:        props,
		Name:         ActorName(cfg.Group, cfg.ID),
		Restart:      supervision.Permanent,
		Shutdown:     5 * time.Second,
		StartTimeout: 30 * time.Second, // replaying a long log takes a while
	}, nil
}

// Start runs a member of cfg.Group on sys under its own one_for_one
// supervisor (registered as ActorName(group, id) + ".sup") and returns the
// supervisor's PID. The supervisor restarts a member that crashes or is
// killed up to 20 times in 10 seconds.
//
// Unless cfg.Registerer is set, the member's metrics go to the system's
// registry (System.Registerer).
func Start(sys *actor.System, cfg Config) (*actor.PID, error) {
	if cfg.Registerer == nil {
		cfg.Registerer = sys.Registerer()
	}
	child, err := ChildSpec(cfg)
	if err != nil {
		return nil, err
	}
	sup, err := supervision.Start(sys, supervision.Spec{
		Strategy:    supervision.OneForOne,
		MaxRestarts: 20,
		Period:      10 * time.Second,
		Children:    []supervision.ChildSpec{child},
	}, ActorName(cfg.Group, cfg.ID)+".sup")
	if err != nil {
		return nil, fmt.Errorf("raft: start member %d of %s: %w", cfg.ID, cfg.Group, err)
	}
	return sup, nil
}
