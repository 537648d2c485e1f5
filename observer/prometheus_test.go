package observer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distributed-go/distributed/internal/freeport"
)

// promQuery runs an instant query against Prometheus' HTTP API and returns
// the sample values of the result.
func promQuery(base, q string) ([]float64, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: status %s", q, r.Status)
	}
	var out []float64
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// A real Prometheus scrapes a node's /metrics, with the project's alert
// rules loaded, and the test reads the node's metrics back through
// Prometheus' HTTP API. It skips where Prometheus is not installed
// (.ci/run installs Debian's prometheus).
func TestPrometheusScrapesNode(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not installed (apt-get install prometheus)")
	}
	if testing.Short() {
		t.Skip("runs Prometheus")
	}
	srv, nd := testObserver(t, nil)
	target := strings.TrimPrefix(srv.URL, "http://")
	// Some traffic for http_requests_total.
	for i := 0; i < 3; i++ {
		if _, err := NewClient(srv.URL, "").Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	rules, err := filepath.Abs("../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: distributed-nodes
    static_configs:
      - targets: [%q]
`, rules, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr, err := freeport.Pick("127.0.0.1", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var log syncLog
	cmd := exec.Command(prom, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", log.String())
		}
	})
	base := "http://" + promAddr
	deadline := time.Now().Add(60 * time.Second)
	var live, up, reqs []float64
	for {
		live, _ = promQuery(base, `actor_live{job="distributed-nodes",system="o1"}`)
		up, _ = promQuery(base, `up{job="distributed-nodes"}`)
		reqs, _ = promQuery(base, `sum(http_requests_total{job="distributed-nodes",endpoint="/api/cluster"})`)
		if len(live) == 1 && len(up) == 1 && len(reqs) == 1 {
			break
		}
		select {
		case <-done:
			t.Fatal("prometheus exited")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus has no sample of the node after 60 s: actor_live=%v up=%v requests=%v", live, up, reqs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The node runs a supervisor and its worker, and nothing comes or goes.
	if int(live[0]) != len(nd.System().Processes()) || live[0] < 2 || up[0] != 1 || reqs[0] < 3 {
		t.Fatalf("actor_live=%v up=%v http_requests_total=%v", live, up, reqs)
	}
	t.Logf("read back through Prometheus: actor_live=%v up=%v http_requests_total{endpoint=/api/cluster}=%v", live[0], up[0], reqs[0])

	// The alert rules loaded, and NodeDown is not firing for a live node.
	resp, err := http.Get(base + "/api/v1/rules?type=alert")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name  string `json:"name"`
					State string `json:"state"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			names[rule.Name] = rule.State
		}
	}
	for _, n := range []string{"NodeDown", "HighErrorRate", "ReplicationLagHigh"} {
		if _, ok := names[n]; !ok {
			t.Errorf("alert %s not loaded: %v", n, names)
		}
	}
	if names["NodeDown"] == "firing" {
		t.Error("NodeDown fires for a live node")
	}
}
