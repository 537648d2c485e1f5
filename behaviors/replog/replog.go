// Package replog is the small interface between a replicated log and the
// state machine it drives. A consensus behaviour (behaviors/raft, and others
// later) implements Log on the client side and runs a StateMachine on every
// member; an application such as the key-value store (behaviors/kv) is
// written once against these two interfaces and so runs, and is tested, on
// every consensus behaviour alike.
package replog

import (
	"context"
	"errors"
)

// StateMachine is the deterministic application a replicated log drives.
// Every member applies the same commands in the same order and must reach
// the same state: Apply may not depend on time, randomness or anything
// outside its arguments and its own state.
//
// A member calls its StateMachine from one goroutine at a time.
type StateMachine interface {
	// Apply applies a command committed at index and returns its result.
	// Several commands may share an index (a leader batches the commands it
	// receives together into one log entry); they are applied in order.
	// A command the machine cannot interpret must not change the state; its
	// result should say why (an error inside the result), since every
	// member reaches the same verdict.
	Apply(index uint64, command []byte) []byte
	// Query evaluates a read-only query against the current state.
	Query(query []byte) ([]byte, error)
	// Snapshot returns the whole state (including whatever Apply uses to
	// deduplicate retried commands).
	Snapshot() ([]byte, error)
	// Restore replaces the state by a snapshot taken with Snapshot.
	Restore(snapshot []byte) error
}

// Log is the client's view of a replicated log service.
type Log interface {
	// Propose appends command to the log and returns the state machine's
	// result once it is applied. An error wrapping ErrOutcomeUnknown means
	// the command may or may not have been (or may yet be) applied.
	Propose(ctx context.Context, command []byte) ([]byte, error)
	// Read evaluates query linearizably: the result reflects every command
	// whose Propose returned before Read was called.
	Read(ctx context.Context, query []byte) ([]byte, error)
}

// ErrOutcomeUnknown is wrapped by the error of a Propose that gave up (its
// context ended, or the member that accepted it lost its leadership) without
// learning whether the command was applied. Retrying the same command is
// safe when the state machine deduplicates it (client sessions).
var ErrOutcomeUnknown = errors.New("replog: outcome unknown")

// ErrNoLeader is wrapped by errors of requests that found no leader (or
// coordinator) to serve them before their context ended.
var ErrNoLeader = errors.New("replog: no leader")
