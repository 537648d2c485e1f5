package observer

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/distributed-go/distributed/cluster"
	"github.com/distributed-go/distributed/cluster/clusterpb"
)

//go:embed static
var staticFiles embed.FS

var errUnknownNode = errors.New("unknown node")

// Options configures a Server.
type Options struct {
	// Node is the node whose observer this is. Required, and it must serve
	// inspection (cluster.Node.ServeInspection) for the others to see it.
	Node *cluster.Node
	// Actions enables the actions (kill, crash, partition, heal, delay,
	// drop). Off by default: the observer is then read-only.
	Actions bool
	// Secret is the cluster secret; when set, /api/ requires Token(Secret).
	Secret string
	// Gatherer is what /metrics serves. Default: the node's Gatherer.
	Gatherer prometheus.Gatherer
	// Registerer receives the observer's HTTP metrics
	// (http_requests_total, http_request_duration_seconds). Optional.
	Registerer prometheus.Registerer
	// Ready decides /health: nil error means ready. Default: ready while
	// the node has started.
	Ready func() error
	// Interval is the period of the live updates. Default 1s.
	Interval time.Duration
	// Timeout bounds the inspection of the cluster for one snapshot and
	// each action. Default 3s.
	Timeout time.Duration
	// Logger receives the observer's logs. Default: no logs.
	Logger *zap.Logger
}

// Server is a node's observer: the page, the API, /metrics and /health.
type Server struct {
	o        Options
	token    string
	mux      *http.ServeMux
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New makes the observer of a node.
func New(o Options) (*Server, error) {
	if o.Node == nil {
		return nil, errors.New("observer: Options.Node is required")
	}
	if o.Gatherer == nil {
		o.Gatherer = o.Node.Gatherer()
	}
	if o.Ready == nil {
		o.Ready = func() error { return nil }
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	s := &Server{o: o, mux: http.NewServeMux()}
	if o.Secret != "" {
		s.token = Token(o.Secret)
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total",
		Help: "HTTP requests served by the observer, by method, endpoint and status."}, []string{"method", "endpoint", "status"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "http_request_duration_seconds",
		Help:    "Latency of the observer's HTTP requests (server-sent event streams excluded).",
		Buckets: prometheus.DefBuckets}, []string{"method", "endpoint"})
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.requests, s.duration} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("observer: register metrics: %w", err)
			}
		}
	}
	static, _ := fs.Sub(staticFiles, "static")
	s.route("GET /{$}", "/", http.FileServerFS(static).ServeHTTP)
	s.route("GET /static/", "/static", http.StripPrefix("/static/", http.FileServerFS(static)).ServeHTTP)
	s.route("GET /metrics", "/metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}).ServeHTTP)
	s.route("GET /health", "/health", s.health)
	s.route("GET /health/live", "/health/live", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "live", "node": o.Node.Name()})
	})
	s.route("GET /api/cluster", "/api/cluster", s.auth(s.cluster))
	s.route("GET /api/events", "/api/events", s.auth(s.events))
	for _, a := range []struct {
		path string
		h    func(context.Context, []byte) (*ActionResult, error)
	}{
		{"kill", s.kill}, {"crash", s.crash}, {"partition", s.partition}, {"heal", s.heal},
		{"delay", s.delay}, {"drop", s.drop}, {"clear", s.clear},
	} {
		s.route("POST /api/"+a.path, "/api/"+a.path, s.auth(s.action(a.h)))
	}
	return s, nil
}

// Handler returns the observer's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// statusWriter records the status of a response for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets server-sent events through.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) route(pattern, endpoint string, h http.HandlerFunc) {
	method, _, _ := strings.Cut(pattern, " ")
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		s.requests.WithLabelValues(method, endpoint, strconv.Itoa(sw.status)).Inc()
		if endpoint != "/api/events" {
			s.duration.WithLabelValues(method, endpoint).Observe(time.Since(start).Seconds())
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *APIError) { writeJSON(w, e.Status, e) }

// auth checks the token when the cluster has a secret.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.token != "" {
			got := ""
			if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				got = b
			} else if c, err := r.Cookie("dist_token"); err == nil {
				got = c.Value
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
				msg := "this cluster has a secret: pass the cluster secret (dist --secret or DIST_SECRET), or open the observer with #token=<token> in its URL"
				if got != "" {
					msg = "wrong cluster secret: the token does not match this cluster's secret (check dist --secret or DIST_SECRET)"
				}
				writeError(w, &APIError{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: msg})
				return
			}
		}
		h(w, r)
	}
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	alive := 0
	for _, m := range s.o.Node.Members() {
		if m.State == cluster.Alive {
			alive++
		}
	}
	body := map[string]any{"node": s.o.Node.Name(), "members_alive": alive}
	if err := s.o.Ready(); err != nil {
		body["status"], body["reason"] = "not ready", err.Error()
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	body["status"] = "ready"
	writeJSON(w, http.StatusOK, body)
}

// Snapshot inspects the cluster.
func (s *Server) Snapshot(ctx context.Context) Snapshot {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	n := s.o.Node
	snap := Snapshot{Node: n.Name(), Time: time.Now().UTC(), Actions: s.o.Actions, Members: []Member{}, Nodes: []NodeView{}}
	for _, m := range n.Members() {
		snap.Members = append(snap.Members, Member{Name: m.Name, State: m.State.String(),
			RemoteAddress: m.RemoteAddress, GossipAddress: m.GossipAddress, Since: m.Since.UTC()})
	}
	for _, r := range n.InspectAll(ctx) {
		snap.Nodes = append(snap.Nodes, snapshotNode(r))
	}
	// Dead members are listed too, so that the page shows them missing.
	for _, m := range snap.Members {
		if m.State == cluster.Dead.String() {
			snap.Nodes = append(snap.Nodes, NodeView{Name: m.Name, RemoteAddress: m.RemoteAddress, Faults: []string{}, Processes: []Process{},
				Error: fmt.Sprintf("dead as %s sees it (crashed, or cut off by a partition)", n.Name())})
		}
	}
	return snap
}

func (s *Server) cluster(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Snapshot(r.Context()))
}

// events streams a snapshot per interval as server-sent events.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, &APIError{Status: http.StatusInternalServerError, Code: CodeFailed, Message: "streaming is not supported"})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		b, err := json.Marshal(s.Snapshot(r.Context()))
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", b); err != nil {
			return
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

// action wraps an action handler: the actions switch, a JSON body (which a
// cross-site form cannot send without the browser asking first), a bounded
// context and the mapping of errors to statuses.
func (s *Server) action(h func(context.Context, []byte) (*ActionResult, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.o.Actions {
			writeError(w, &APIError{Status: http.StatusForbidden, Code: CodeDisabled,
				Message: fmt.Sprintf("actions are disabled on the observer of node %s (start it with dist node --actions, or use dist demo)", s.o.Node.Name())})
			return
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			writeError(w, &APIError{Status: http.StatusUnsupportedMediaType, Code: CodeInvalid, Message: "actions take a JSON body (Content-Type: application/json)"})
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			writeError(w, &APIError{Status: http.StatusBadRequest, Code: CodeInvalid, Message: "reading the body: " + err.Error()})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.o.Timeout)
		defer cancel()
		res, err := h(ctx, body)
		if err != nil {
			e := s.apiError(err)
			s.o.Logger.Info("action failed", zap.String("path", r.URL.Path), zap.Error(err))
			writeError(w, e)
			return
		}
		s.o.Logger.Info("action", zap.String("path", r.URL.Path), zap.String("result", res.Message))
		status := http.StatusOK
		if !res.OK {
			status = http.StatusMultiStatus
		}
		writeJSON(w, status, res)
	}
}

func (s *Server) apiError(err error) *APIError {
	var ae *APIError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, errUnknownNode):
		return &APIError{Status: http.StatusNotFound, Code: CodeUnknownNode, Message: err.Error() + " (dist members lists the members)"}
	case errors.Is(err, cluster.ErrUnknownActor):
		return &APIError{Status: http.StatusNotFound, Code: CodeUnknownPID, Message: err.Error() + " (dist ps lists the live actors)"}
	case errors.Is(err, cluster.ErrControlDisabled):
		return &APIError{Status: http.StatusForbidden, Code: CodeDisabled, Message: err.Error()}
	case errors.Is(err, cluster.ErrInvalidControl):
		return &APIError{Status: http.StatusBadRequest, Code: CodeInvalid, Message: err.Error()}
	case errors.Is(err, cluster.ErrUnknownNode), errors.Is(err, cluster.ErrNoInspection):
		return &APIError{Status: http.StatusBadGateway, Code: CodeUnreachable, Message: err.Error()}
	}
	return &APIError{Status: http.StatusInternalServerError, Code: CodeFailed, Message: err.Error()}
}

func decode(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &APIError{Status: http.StatusBadRequest, Code: CodeInvalid, Message: "malformed JSON body: " + err.Error()}
	}
	return nil
}

func invalid(format string, args ...any) error {
	return &APIError{Status: http.StatusBadRequest, Code: CodeInvalid, Message: fmt.Sprintf(format, args...)}
}

// member checks that name is a known member.
func (s *Server) member(name string) (cluster.Member, error) {
	m, ok := s.o.Node.Member(name)
	if !ok {
		return m, fmt.Errorf("%w %q", errUnknownNode, name)
	}
	return m, nil
}

// reachable explains why a member that is not alive cannot be acted on.
func (s *Server) reachable(m cluster.Member) error {
	if m.State == cluster.Alive {
		return nil
	}
	return &APIError{Status: http.StatusBadGateway, Code: CodeUnreachable, Message: fmt.Sprintf(
		"node %s is %s as %s sees it (crashed, or cut off by a partition: dist partition --heal); ask another node's observer with --addr",
		m.Name, m.State, s.o.Node.Name())}
}

// KillRequest is the body of POST /api/kill.
type KillRequest struct {
	PID string `json:"pid"`
}

func (s *Server) kill(ctx context.Context, body []byte) (*ActionResult, error) {
	var req KillRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	pid, err := ParsePID(req.PID, func(node string) (string, bool) {
		m, ok := s.o.Node.Member(node)
		return m.RemoteAddress, ok && m.RemoteAddress != ""
	})
	if err != nil {
		if errors.Is(err, errUnknownNode) {
			return nil, err
		}
		return nil, invalid("%v", err)
	}
	m, ok := s.o.Node.MemberByAddress(pid.Address())
	if !ok {
		return nil, fmt.Errorf("%w at address %s", errUnknownNode, pid.Address())
	}
	if err := s.reachable(m); err != nil {
		return nil, err
	}
	if err := s.o.Node.KillActor(ctx, pid); err != nil {
		return nil, err
	}
	return &ActionResult{OK: true, Message: "killed " + req.PID}, nil
}

// CrashRequest is the body of POST /api/crash.
type CrashRequest struct {
	Node string `json:"node"`
}

func (s *Server) crash(ctx context.Context, body []byte) (*ActionResult, error) {
	var req CrashRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	m, err := s.member(req.Node)
	if err != nil {
		return nil, err
	}
	if err := s.reachable(m); err != nil {
		return nil, err
	}
	if _, err := s.o.Node.Control(ctx, req.Node, &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Crash{Crash: &clusterpb.CrashNode{}}}); err != nil {
		return nil, err
	}
	return &ActionResult{OK: true, Message: "crashed " + req.Node}, nil
}

// PartitionRequest is the body of POST /api/partition: groups of node
// names that cannot reach each other. With one group, the rest of the
// members form the other.
type PartitionRequest struct {
	Groups [][]string `json:"groups"`
}

func (s *Server) partition(ctx context.Context, body []byte) (*ActionResult, error) {
	var req PartitionRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	listed := map[string]bool{}
	var groups []*clusterpb.NodeGroup
	for _, g := range req.Groups {
		if len(g) == 0 {
			continue
		}
		for _, name := range g {
			if _, err := s.member(name); err != nil {
				return nil, err
			}
			if listed[name] {
				return nil, invalid("node %s is in two groups", name)
			}
			listed[name] = true
		}
		groups = append(groups, &clusterpb.NodeGroup{Nodes: g})
	}
	if len(groups) == 1 {
		var rest []string
		for _, m := range s.o.Node.Members() {
			if !listed[m.Name] && m.State != cluster.Left {
				rest = append(rest, m.Name)
			}
		}
		if len(rest) == 0 {
			return nil, invalid("the group %v holds every member: nothing to cut it from", req.Groups[0])
		}
		groups = append(groups, &clusterpb.NodeGroup{Nodes: rest})
	}
	if len(groups) < 2 {
		return nil, invalid("a partition needs at least one group of nodes")
	}
	var desc []string
	for _, g := range groups {
		desc = append(desc, "["+strings.Join(g.GetNodes(), " ")+"]")
	}
	return s.everywhere(ctx, "partition "+strings.Join(desc, " | "),
		&clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Partition{Partition: &clusterpb.PartitionNodes{Groups: groups}}})
}

func (s *Server) heal(ctx context.Context, body []byte) (*ActionResult, error) {
	return s.everywhere(ctx, "healed the partition",
		&clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Heal{Heal: &clusterpb.HealPartition{}}})
}

func (s *Server) clear(ctx context.Context, body []byte) (*ActionResult, error) {
	return s.everywhere(ctx, "cleared every fault rule",
		&clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Clear{Clear: &clusterpb.ClearFaults{}}})
}

// DelayRequest is the body of POST /api/delay. Delay and Jitter are Go
// durations ("200ms"); "0" for both removes the rule. From and To are node
// names or "*".
type DelayRequest struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Delay  string `json:"delay"`
	Jitter string `json:"jitter,omitempty"`
}

func (s *Server) link(from, to string) error {
	for _, name := range []string{from, to} {
		if name == "" {
			return invalid("from and to are required (node names or *)")
		}
		if name != cluster.AnyNode {
			if _, err := s.member(name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Server) delay(ctx context.Context, body []byte) (*ActionResult, error) {
	var req DelayRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := s.link(req.From, req.To); err != nil {
		return nil, err
	}
	d, err := time.ParseDuration(req.Delay)
	if err != nil || d < 0 {
		return nil, invalid("delay %q: want a duration such as 200ms", req.Delay)
	}
	var j time.Duration
	if req.Jitter != "" {
		if j, err = time.ParseDuration(req.Jitter); err != nil || j < 0 {
			return nil, invalid("jitter %q: want a duration such as 50ms", req.Jitter)
		}
	}
	msg := fmt.Sprintf("delay %s→%s %v", req.From, req.To, d)
	if j > 0 {
		msg += fmt.Sprintf(" + up to %v", j)
	}
	if d == 0 && j == 0 {
		msg = fmt.Sprintf("removed the delay %s→%s", req.From, req.To)
	}
	return s.everywhere(ctx, msg, &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Delay{Delay: &clusterpb.SetLinkDelay{
		From: req.From, To: req.To, BaseNanos: int64(d), JitterNanos: int64(j)}}})
}

// DropRequest is the body of POST /api/drop: drop messages From→To with
// Probability (1: all, one way; 0: remove the rule).
type DropRequest struct {
	From        string  `json:"from"`
	To          string  `json:"to"`
	Probability float64 `json:"probability"`
}

func (s *Server) drop(ctx context.Context, body []byte) (*ActionResult, error) {
	var req DropRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := s.link(req.From, req.To); err != nil {
		return nil, err
	}
	if req.Probability < 0 || req.Probability > 1 {
		return nil, invalid("probability %g: want a number in [0, 1]", req.Probability)
	}
	msg := fmt.Sprintf("drop %s→%s p=%g", req.From, req.To, req.Probability)
	if req.Probability == 0 {
		msg = fmt.Sprintf("removed the drop %s→%s", req.From, req.To)
	}
	return s.everywhere(ctx, msg, &clusterpb.ControlRequest{Action: &clusterpb.ControlRequest_Drop{Drop: &clusterpb.SetLinkDrop{
		From: req.From, To: req.To, Probability: req.Probability}}})
}

// everywhere sets a fault rule on every member.
func (s *Server) everywhere(ctx context.Context, msg string, req *clusterpb.ControlRequest) (*ActionResult, error) {
	errs := s.o.Node.ControlAll(ctx, req)
	res := &ActionResult{OK: len(errs) == 0, Message: msg}
	if len(errs) > 0 {
		res.Errors = map[string]string{}
		for n, err := range errs {
			res.Errors[n] = err.Error()
		}
		if errs[s.o.Node.Name()] != nil {
			// The serving node refused: report that as the error.
			return nil, errs[s.o.Node.Name()]
		}
	}
	return res, nil
}
