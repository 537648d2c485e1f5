// Package deploy holds no Go code: it is the home of the deployment files
// (Dockerfile, Kubernetes manifests, Grafana dashboard, Prometheus rules)
// and of the tests that check them.
package deploy
