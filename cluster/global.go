package cluster

// globalRegistry holds the cluster-wide state that travels with gossip: the
// global name registry and process groups. This placeholder keeps the gossip
// hooks of node.go in place; the registry fills them in.
type globalRegistry struct{ n *Node }

func newGlobalRegistry(n *Node) *globalRegistry { return &globalRegistry{n: n} }

// notifyMsg receives a user gossip message from another node.
func (g *globalRegistry) notifyMsg(b []byte) {}

// broadcasts returns queued gossip messages (memberlist's GetBroadcasts).
func (g *globalRegistry) broadcasts(overhead, limit int) [][]byte { return nil }

// localState is this node's state for a push/pull exchange.
func (g *globalRegistry) localState(join bool) []byte { return nil }

// mergeRemoteState merges another node's push/pull state.
func (g *globalRegistry) mergeRemoteState(buf []byte, join bool) {}

// nodeGone drops what a dead or departed node owned.
func (g *globalRegistry) nodeGone(name string) {}

// nodeUp is called when a node joins or comes back.
func (g *globalRegistry) nodeUp(name string) {}
