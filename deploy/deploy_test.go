package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The seed's alert rules: replication lag above 5 s, more than 1% of
// requests answered 5xx, a node down.
func TestAlertRulesFromSeed(t *testing.T) {
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert  string            `yaml:"alert"`
				Expr   string            `yaml:"expr"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ReplicationLagHigh": "replication_lag_seconds > 5",
		"HighErrorRate":      `rate(http_requests_total{status=~"5.."}[5m])`,
		"NodeDown":           `up{job="distributed-nodes"} == 0`,
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if w, ok := want[r.Alert]; ok && strings.Contains(r.Expr, w) && r.Labels["severity"] != "" {
				delete(want, r.Alert)
			}
		}
	}
	if len(want) > 0 {
		t.Fatalf("alert rules missing or wrong: %v", want)
	}
}

// promtool checks the rules and runs their unit tests, where it is
// installed (Debian's prometheus package; .ci/run installs it).
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	for _, args := range [][]string{
		{"check", "rules", "prometheus/alerts.yml"},
		{"test", "rules", "prometheus/alerts_test.yml"},
		{"check", "config", "prometheus/prometheus.yml"},
	} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Every metric the dashboard queries is one a node exports (or one the
// seed names, which the consensus behaviours export), and the panels the
// seed asks for are there.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/distributed.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{
		// the seed's
		"raft_log_entries_total": true, "replication_lag_seconds": true, "consensus_round_duration_seconds": true,
		"http_requests_total": true, "http_request_duration_seconds": true,
		// Prometheus' own
		"up": true,
		// package actor's and cluster's
		"actor_restarts_total": true, "actor_messages_processed_total": true, "actor_mailbox_depth": true,
		"actor_mailbox_depth_max": true, "actor_live": true, "cluster_members": true,
		"cluster_node_events_total": true, "cluster_fault_drops": true,
	}
	ident := regexp.MustCompile(`[a-z_]+(?:_bucket)?\b`)
	funcs := map[string]bool{"sum": true, "by": true, "rate": true, "histogram_quantile": true, "le": true,
		"instance": true, "node": true, "node_id": true, "event": true, "system": true, "supervisor": true,
		"endpoint": true, "state": true, "status": true, "job": true, "shard": true, "replica": true}
	titles := ""
	for _, p := range d.Panels {
		titles += strings.ToLower(p.Title) + "\n"
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			// Drop label values and range durations.
			expr := regexp.MustCompile(`"[^"]*"|\[[^\]]*\]`).ReplaceAllString(tg.Expr, "")
			for _, id := range ident.FindAllString(expr, -1) {
				name := strings.TrimSuffix(id, "_bucket")
				if !known[name] && !funcs[id] {
					t.Errorf("panel %q queries unknown metric %q", p.Title, id)
				}
			}
		}
	}
	for _, want := range []string{"nodes", "qps", "error rate", "replication lag", "consensus round", "restarts"} {
		if !strings.Contains(titles, want) {
			t.Errorf("no panel about %s", want)
		}
	}
}

// The manifests hang together: the StatefulSet's service is the headless
// one, probes use /health, resources are the seed's (CPU 500m, 1Gi).
func TestKubernetesManifests(t *testing.T) {
	type probe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	}
	var docs []map[string]any
	var sts struct {
		Kind string `yaml:"kind"`
		Spec struct {
			ServiceName         string `yaml:"serviceName"`
			Replicas            int    `yaml:"replicas"`
			PodManagementPolicy string `yaml:"podManagementPolicy"`
			Template            struct {
				Spec struct {
					Containers []struct {
						ReadinessProbe probe `yaml:"readinessProbe"`
						LivenessProbe  probe `yaml:"livenessProbe"`
						Resources      struct {
							Requests map[string]string `yaml:"requests"`
							Limits   map[string]string `yaml:"limits"`
						} `yaml:"resources"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	b, err := os.ReadFile("k8s/statefulset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &sts); err != nil {
		t.Fatal(err)
	}
	sb, err := os.ReadFile("k8s/service.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(sb)))
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			break
		}
		docs = append(docs, m)
	}
	headless := ""
	for _, m := range docs {
		spec, _ := m["spec"].(map[string]any)
		if spec["clusterIP"] == "None" && spec["publishNotReadyAddresses"] == true {
			headless = m["metadata"].(map[string]any)["name"].(string)
		}
	}
	if headless == "" || sts.Spec.ServiceName != headless {
		t.Fatalf("StatefulSet serviceName %q, headless service %q", sts.Spec.ServiceName, headless)
	}
	if sts.Kind != "StatefulSet" || sts.Spec.Replicas != 3 || sts.Spec.PodManagementPolicy != "Parallel" {
		t.Fatalf("StatefulSet: %+v", sts)
	}
	c := sts.Spec.Template.Spec.Containers[0]
	if c.ReadinessProbe.HTTPGet.Path != "/health" || !strings.HasPrefix(c.LivenessProbe.HTTPGet.Path, "/health") {
		t.Fatalf("probes: %+v %+v", c.ReadinessProbe, c.LivenessProbe)
	}
	if c.Resources.Limits["cpu"] != "500m" || c.Resources.Limits["memory"] != "1Gi" {
		t.Fatalf("resources: %+v", c.Resources)
	}
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		if out, err := exec.Command(kubectl, "kustomize", "k8s").CombinedOutput(); err != nil {
			t.Errorf("kubectl kustomize deploy/k8s: %v\n%s", err, out)
		}
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/dist", "distroless/static", "USER nonroot", `ENTRYPOINT ["/usr/local/bin/dist"]`} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
