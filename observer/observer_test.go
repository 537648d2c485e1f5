package observer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/distributed-go/distributed/actor"
	"github.com/distributed-go/distributed/cluster"
	"github.com/distributed-go/distributed/supervision"
)

// testObserver starts one node with a supervised worker "w" that reports
// its state, and its observer.
func testObserver(t *testing.T, mutate func(*Options)) (*httptest.Server, *cluster.Node) {
	t.Helper()
	cfg := cluster.Local("o1")
	cfg.Logger = zap.NewNop()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	nd, err := cluster.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nd.Stop)
	if err := nd.ServeInspection(cluster.InspectOptions{AllowControl: true}); err != nil {
		t.Fatal(err)
	}
	worker := actor.PropsFromFunc(func(c *actor.Context) {
		if _, ok := c.Message().(*actor.Started); ok {
			c.SetInfo(func() string { return "state=fine" })
		}
	}, actor.WithKind("worker"))
	if _, err := supervision.Start(nd.System(), supervision.Spec{MaxRestarts: 10, Period: time.Minute,
		Children: []supervision.ChildSpec{{ID: "w", Props: worker}}}, "top"); err != nil {
		t.Fatal(err)
	}
	o := Options{Node: nd, Actions: true, Registerer: reg, Interval: 50 * time.Millisecond}
	if mutate != nil {
		mutate(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, nd
}

func worker(t *testing.T, s *Snapshot) Process {
	t.Helper()
	for _, n := range s.Nodes {
		for _, p := range n.Processes {
			if p.ChildID == "w" {
				return p
			}
		}
	}
	t.Fatalf("no worker w in the snapshot: %+v", s)
	return Process{}
}

func apiCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

func TestSnapshotAndKill(t *testing.T) {
	srv, _ := testObserver(t, nil)
	ctx := context.Background()
	c := NewClient(srv.URL, "")
	s, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Node != "o1" || len(s.Members) != 1 || s.Members[0].State != "alive" || !s.Actions || len(s.Nodes) != 1 {
		t.Fatalf("snapshot: %+v", s)
	}
	w := worker(t, s)
	if w.Info != "state=fine" || w.ChildType != "worker" || w.Node != "o1" || !strings.HasPrefix(w.PID, "o1:top#") {
		t.Fatalf("worker: %+v", w)
	}
	res, err := c.Kill(ctx, w.PID)
	if err != nil || !res.OK {
		t.Fatalf("kill: %v %v", res, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err = c.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := worker(t, s); n.PID != w.PID && n.ChildRestarts == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker not restarted: %+v", worker(t, s))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tc := range []struct{ pid, code string }{
		{w.PID, CodeUnknownPID}, // the killed incarnation
		{"o9:top#1", CodeUnknownNode},
		{"top#1@10.1.2.3:4", CodeUnknownNode},
		{"o1:top", CodeInvalid},
		{"nonsense", CodeInvalid},
		{"o1:top#!!", CodeInvalid},
	} {
		if _, err := c.Kill(ctx, tc.pid); apiCode(err) != tc.code {
			t.Errorf("kill %q: %v (code %q), want code %q", tc.pid, err, apiCode(err), tc.code)
		}
	}
}

func TestActionsDisabled(t *testing.T) {
	srv, _ := testObserver(t, func(o *Options) { o.Actions = false })
	_, err := NewClient(srv.URL, "").Crash(context.Background(), "o1")
	if apiCode(err) != CodeDisabled || !strings.Contains(err.Error(), "--actions") {
		t.Fatalf("crash with actions off: %v", err)
	}
}

func TestSecret(t *testing.T) {
	srv, _ := testObserver(t, func(o *Options) { o.Secret = "cookie" })
	ctx := context.Background()
	if _, err := NewClient(srv.URL, "").Snapshot(ctx); apiCode(err) != CodeUnauthorized || !strings.Contains(err.Error(), "has a secret") {
		t.Fatalf("no token: %v", err)
	}
	if _, err := NewClient(srv.URL, "biscuit").Snapshot(ctx); apiCode(err) != CodeUnauthorized || !strings.Contains(err.Error(), "wrong cluster secret") {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := NewClient(srv.URL, "cookie").Snapshot(ctx); err != nil {
		t.Fatalf("right token: %v", err)
	}
	// The page's way: the token as a cookie.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/cluster", nil)
	req.AddCookie(&http.Cookie{Name: "dist_token", Value: Token("cookie")})
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("cookie: %v %v", resp, err)
	}
	resp.Body.Close()
	// The page, /health and /metrics stay open (probes and scrapers).
	for _, p := range []string{"/", "/health", "/metrics", "/static/app.js"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
}

func TestFaultActions(t *testing.T) {
	srv, nd := testObserver(t, nil)
	ctx := context.Background()
	c := NewClient(srv.URL, "")
	if _, err := c.Partition(ctx, [][]string{{"o1"}}); apiCode(err) != CodeInvalid {
		t.Fatalf("partition of every member: %v", err)
	}
	if _, err := c.Partition(ctx, [][]string{{"o1"}, {"zz"}}); apiCode(err) != CodeUnknownNode {
		t.Fatalf("partition with an unknown node: %v", err)
	}
	if _, err := c.Delay(ctx, DelayRequest{From: "o1", To: "*", Delay: "soon"}); apiCode(err) != CodeInvalid {
		t.Fatalf("delay soon: %v", err)
	}
	if _, err := c.Drop(ctx, DropRequest{From: "o1", To: "*", Probability: 2}); apiCode(err) != CodeInvalid {
		t.Fatalf("drop p=2: %v", err)
	}
	if res, err := c.Delay(ctx, DelayRequest{From: "o1", To: "*", Delay: "30ms", Jitter: "10ms"}); err != nil || !res.OK {
		t.Fatalf("delay: %v %v", res, err)
	}
	if res, err := c.Drop(ctx, DropRequest{From: "*", To: "o1", Probability: 0.5}); err != nil || !res.OK {
		t.Fatalf("drop: %v %v", res, err)
	}
	if got := strings.Join(nd.Faults().Rules(), "; "); !strings.Contains(got, "delay o1→*") || !strings.Contains(got, "drop *→o1 p=0.5") {
		t.Fatalf("rules: %s", got)
	}
	s, err := c.Snapshot(ctx)
	if err != nil || len(s.Nodes[0].Faults) != 2 {
		t.Fatalf("faults in the snapshot: %v %v", s, err)
	}
	if _, err := c.Clear(ctx); err != nil || len(nd.Faults().Rules()) != 0 {
		t.Fatalf("clear: %v %v", err, nd.Faults().Rules())
	}
	// Malformed bodies and a missing JSON content type.
	resp, err := http.Post(srv.URL+"/api/kill", "application/json", strings.NewReader(`{"pid": 3}`))
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed body: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Post(srv.URL+"/api/heal", "text/plain", strings.NewReader(`{}`))
	if err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("form post: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestEventsStream(t *testing.T) {
	srv, _ := testObserver(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	events := 0
	for sc.Scan() && events < 2 {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var s Snapshot
		if err := json.Unmarshal([]byte(data), &s); err != nil {
			t.Fatalf("event data: %v", err)
		}
		if s.Node != "o1" || len(s.Nodes) != 1 {
			t.Fatalf("event snapshot: %+v", s)
		}
		events++
	}
	if events < 2 {
		t.Fatalf("got %d snapshot events: %v", events, sc.Err())
	}
}

func TestHealthAndMetrics(t *testing.T) {
	ready := errors.New("joining")
	srv, _ := testObserver(t, func(o *Options) {
		o.Ready = func() error { return ready }
	})
	c := NewClient(srv.URL, "")
	if err := c.Health(context.Background()); err == nil {
		t.Fatal("health is ready while Ready fails")
	}
	resp, _ := http.Get(srv.URL + "/health")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "joining") {
		t.Fatalf("health: %d %s", resp.StatusCode, b)
	}
	ready = nil
	if err := c.Health(context.Background()); err != nil {
		t.Fatalf("health once ready: %v", err)
	}
	resp, _ = http.Get(srv.URL + "/metrics")
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`http_requests_total{endpoint="/health",method="GET",status="503"} 2`,
		`http_request_duration_seconds_count{endpoint="/health",method="GET"}`,
		`actor_live{system="o1"}`,
		`cluster_fault_drops{node="o1"}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// The page must work on a machine without internet: no external resource.
func TestStaticFilesAreSelfContained(t *testing.T) {
	err := fs.WalkDir(staticFiles, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFiles.ReadFile(path)
		if err != nil {
			return err
		}
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s refers to an external resource (%q)", path, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestParsePID(t *testing.T) {
	addrOf := func(node string) (string, bool) { return "127.0.0.1:7000", node == "n1" }
	for _, tc := range []struct {
		in, id, addr string
		ok           bool
	}{
		{"n1:top#1/w#2", "top#1/w#2", "127.0.0.1:7000", true},
		{"top#a@10.0.0.1:7001", "top#a", "10.0.0.1:7001", true},
		{"n2:top#1", "", "", false},
		{"n1:top", "", "", false},
		{"n1:top#0", "", "", false},
		{"n1:", "", "", false},
		{"plain", "", "", false},
		{"#1@", "", "", false},
	} {
		p, err := ParsePID(tc.in, addrOf)
		if (err == nil) != tc.ok {
			t.Errorf("ParsePID(%q): %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && (p.ID() != tc.id || p.Address() != tc.addr) {
			t.Errorf("ParsePID(%q) = %s@%s", tc.in, p.ID(), p.Address())
		}
	}
	if FormatPID("n1", "top#1") != "n1:top#1" {
		t.Error("FormatPID")
	}
}

// syncLog collects a child process's output.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ParsePID never panics, and what it accepts round-trips through FormatPID.
func FuzzParsePID(f *testing.F) {
	for _, s := range []string{"n1:top#1/w#2", "top#a@10.0.0.1:7001", "n1:", ":#", "@", "n1:x#zzzzzzzzzzzzzzz"} {
		f.Add(s)
	}
	addrOf := func(node string) (string, bool) { return "127.0.0.1:7000", node == "n1" }
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePID(s, addrOf)
		if err != nil {
			return
		}
		if strings.Contains(s, "@") {
			return
		}
		back, err := ParsePID(FormatPID("n1", p.ID()), addrOf)
		if err != nil || !back.Equal(p) {
			t.Fatalf("%q parsed to %s, which does not round-trip: %v", s, p, err)
		}
	})
}
