package observer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Client calls a node's observer API (what the dist CLI uses).
type Client struct {
	// BaseURL is the observer's URL, such as "http://127.0.0.1:8080".
	BaseURL string
	// Secret is the cluster secret, if the cluster has one.
	Secret string
	// HTTP is the client used. Default: one with a 10 s timeout.
	HTTP *http.Client
}

// NewClient returns a client for the observer at addr ("host:port" or a
// URL).
func NewClient(addr, secret string) *Client {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return &Client{BaseURL: strings.TrimRight(addr, "/"), Secret: secret}
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return &APIError{Code: CodeInvalid, Message: fmt.Sprintf("observer address %q: %v", c.BaseURL, err)}
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Secret != "" {
		req.Header.Set("Authorization", "Bearer "+Token(c.Secret))
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ne net.Error
		msg := fmt.Sprintf("node unreachable: no observer answers at %s (%v); is the node running? set its address with --addr or DIST_ADDR", c.BaseURL, err)
		if errors.As(err, &ne) && ne.Timeout() {
			msg = fmt.Sprintf("node unreachable: the observer at %s did not answer in time (%v)", c.BaseURL, err)
		}
		return &APIError{Code: CodeUnreachable, Message: msg}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &APIError{Code: CodeUnreachable, Message: fmt.Sprintf("reading the answer of %s: %v", c.BaseURL, err)}
	}
	if resp.StatusCode >= 400 {
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			e.Code, e.Message = CodeFailed, fmt.Sprintf("%s %s: HTTP %d from %s: %.200s", method, path, resp.StatusCode, c.BaseURL, b)
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return &APIError{Code: CodeFailed, Message: fmt.Sprintf("%s %s: unexpected answer from %s (is it a dist observer?): %v", method, path, c.BaseURL, err)}
		}
	}
	return nil
}

// Snapshot returns the cluster as the node sees it.
func (c *Client) Snapshot(ctx context.Context) (*Snapshot, error) {
	var s Snapshot
	if err := c.do(ctx, http.MethodGet, "/api/cluster", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (c *Client) action(ctx context.Context, path string, in any) (*ActionResult, error) {
	var r ActionResult
	if err := c.do(ctx, http.MethodPost, "/api/"+path, in, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Kill kills an actor ("node:id" or "id@host:port").
func (c *Client) Kill(ctx context.Context, pid string) (*ActionResult, error) {
	return c.action(ctx, "kill", KillRequest{PID: pid})
}

// Crash crashes a node.
func (c *Client) Crash(ctx context.Context, node string) (*ActionResult, error) {
	return c.action(ctx, "crash", CrashRequest{Node: node})
}

// Partition splits the cluster into groups.
func (c *Client) Partition(ctx context.Context, groups [][]string) (*ActionResult, error) {
	return c.action(ctx, "partition", PartitionRequest{Groups: groups})
}

// Heal removes the partition.
func (c *Client) Heal(ctx context.Context) (*ActionResult, error) {
	return c.action(ctx, "heal", struct{}{})
}

// Clear removes every fault rule.
func (c *Client) Clear(ctx context.Context) (*ActionResult, error) {
	return c.action(ctx, "clear", struct{}{})
}

// Delay delays messages from→to.
func (c *Client) Delay(ctx context.Context, req DelayRequest) (*ActionResult, error) {
	return c.action(ctx, "delay", req)
}

// Drop drops messages from→to.
func (c *Client) Drop(ctx context.Context, req DropRequest) (*ActionResult, error) {
	return c.action(ctx, "drop", req)
}

// Health returns the node's /health status: nil when ready.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/health", nil, nil)
}
