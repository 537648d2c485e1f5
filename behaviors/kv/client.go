package kv

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/distributed-go/distributed/behaviors/kv/kvpb"
	"github.com/distributed-go/distributed/behaviors/replog"
)

// ErrRejected is wrapped by the error of a command the store refused (for
// example a key that is too long); the store is unchanged.
var ErrRejected = errors.New("kv: command rejected")

// Client is a typed client of a replicated Store. It is one client session:
// it numbers its commands so that the replicated log may retry them safely.
// It is safe for concurrent use.
type Client struct {
	log replog.Log
	id  uint64

	mu          sync.Mutex
	next        uint64
	outstanding map[uint64]struct{}
}

// NewClient returns a client with a new random session id that sends its
// commands through log.
func NewClient(log replog.Log) *Client {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
		if id := binary.LittleEndian.Uint64(b[:]); id != 0 {
			return &Client{log: log, id: id, next: 1, outstanding: map[uint64]struct{}{}}
		}
	}
}

// ID returns the client's session id.
func (c *Client) ID() uint64 { return c.id }

// Put sets key to value.
func (c *Client) Put(ctx context.Context, key string, value []byte) error {
	_, err := c.write(ctx, &command{op: opPut, key: []byte(key), value: value})
	return err
}

// Delete removes key and reports whether it existed.
func (c *Client) Delete(ctx context.Context, key string) (existed bool, err error) {
	r, err := c.write(ctx, &command{op: opDelete, key: []byte(key)})
	return r.found, err
}

// CompareAndSwap sets key to value if its current value is old. It reports
// whether it swapped, and the value before (nil, with found false, if the
// key was absent).
func (c *Client) CompareAndSwap(ctx context.Context, key string, old, value []byte) (swapped bool, prev []byte, found bool, err error) {
	if old == nil {
		old = []byte{}
	}
	r, err := c.write(ctx, &command{op: opCas, key: []byte(key), expected: old, value: value})
	return r.swapped, r.value, r.found, err
}

// PutIfAbsent sets key to value if key is absent and reports whether it did.
func (c *Client) PutIfAbsent(ctx context.Context, key string, value []byte) (bool, error) {
	r, err := c.write(ctx, &command{op: opCas, key: []byte(key), expectAbsent: true, value: value})
	return r.swapped, err
}

// Get reads key linearizably: the value reflects every write that completed
// before Get was called.
func (c *Client) Get(ctx context.Context, key string) (value []byte, found bool, err error) {
	if err := checkKey(key); err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	q, err := proto.Marshal(&kvpb.Query{Key: key})
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	b, err := c.log.Read(ctx, q)
	if err != nil {
		return nil, false, err
	}
	var r result
	if err := decodeResult(b, &r); err != nil {
		return nil, false, fmt.Errorf("kv: malformed result: %w", err)
	}
	return r.value, r.found, nil
}

// write numbers cmd, proposes it and decodes its result.
func (c *Client) write(ctx context.Context, cmd *command) (result, error) {
	// A key must be a string (valid UTF-8) to be encoded; the store checks
	// the rest, and so does validateOp, to refuse before proposing.
	if !utf8.Valid(cmd.key) {
		return result{}, fmt.Errorf("%w: key %q is not valid UTF-8", ErrRejected, cmd.key)
	}
	if err := validateOp(cmd); err != nil {
		return result{}, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	c.mu.Lock()
	seq := c.next
	c.next++
	acked := seq
	for s := range c.outstanding {
		acked = min(acked, s)
	}
	c.outstanding[seq] = struct{}{}
	c.mu.Unlock()
	// Whatever happens, this client never asks for seq's result again, so
	// it counts as acknowledged from now on.
	defer func() {
		c.mu.Lock()
		delete(c.outstanding, seq)
		c.mu.Unlock()
	}()
	cmd.clientID, cmd.seq, cmd.ackedBelow = c.id, seq, acked
	out, err := c.log.Propose(ctx, appendCommand(make([]byte, 0, commandSize(cmd)), cmd))
	if err != nil {
		return result{}, err
	}
	var r result
	if err := decodeResult(out, &r); err != nil {
		return result{}, fmt.Errorf("kv: malformed result: %w", err)
	}
	if r.err != "" {
		return result{}, fmt.Errorf("%w: %s", ErrRejected, r.err)
	}
	return r, nil
}
