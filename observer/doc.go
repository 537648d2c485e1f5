// Package observer serves a cluster node's web observer and its HTTP API,
// in the spirit of Erlang's observer: the members with their gossip state,
// each node's supervision trees with restart counts, and per actor its
// mailbox depth, message rate and behaviour state (Context.SetInfo). With
// actions enabled it also kills actors, crashes nodes and switches fault
// rules (partition, heal, delay, drop), on any member of the cluster.
//
// One node's observer shows the whole cluster: it asks every alive member's
// inspection service (cluster.Node.ServeInspection) for its report. The
// page is plain HTML and JavaScript embedded in the binary (no build step,
// no CDN) and is kept current with server-sent events.
//
// Routes:
//
//	GET  /                 the page
//	GET  /api/cluster      the cluster Snapshot (JSON)
//	GET  /api/events       server-sent events, one "snapshot" event per interval
//	POST /api/kill         {"pid": "n2:services#…/counter#…"}
//	POST /api/crash        {"node": "n2"}
//	POST /api/partition    {"groups": [["n1"], ["n2", "n3"]]}
//	POST /api/heal         {}
//	POST /api/delay        {"from": "n1", "to": "*", "delay": "200ms", "jitter": "50ms"}
//	POST /api/drop         {"from": "n1", "to": "n2", "probability": 1}
//	POST /api/clear        {}
//	GET  /metrics          Prometheus metrics of the node
//	GET  /health           200 when ready (joined, behaviours started), else 503
//	GET  /health/live      200 while the process serves HTTP
//
// Errors are JSON objects {"error": "...", "code": "..."} with the codes
// listed at APIError. When the cluster has a secret, /api/ requires the
// token derived from it (Token) as a bearer token or as the dist_token
// cookie; the page picks it up from a #token=… URL fragment.
package observer
