// Package cluster joins actor systems into a cluster: each Node is an actor
// system, an actor transport (framed protobuf over TCP, one connection per
// peer, optionally mutual TLS; see link.go) and hashicorp/memberlist gossip
// membership.
//
// # Membership and failure detection
//
// Nodes find each other through seeds and gossip. Each node publishes its
// actor-transport address in its gossip metadata, so a PID's address maps
// to a member. When gossip declares a member dead (or it leaves), the node
// calls actor.System.NodeDown: every link to an actor of that node fires
// with reason noconnection, every monitor delivers Down with reason
// noconnection, pending Asks fail at once, and later sends to its PIDs fail
// fast instead of waiting for a connection that cannot open. Actors that
// subscribe with MonitorNodes receive *NodeEvent messages (nodeup, nodedown,
// nodeleft), as Erlang's monitor_nodes.
//
// The Local preset detects a crashed node in well under a second; the LAN
// preset uses memberlist's LAN timing (about 5 s).
//
// # Location transparency
//
// Send, Ask, Link, Monitor, Exit and Kill of package actor work on PIDs of
// other nodes. Messages that cross nodes must be protobuf messages (of types
// linked into both nodes' binaries). Delivery between two nodes is ordered
// and at most once, as in Erlang: a connection that breaks loses what was
// in flight. A sender never blocks on the network, but one that outpaces a
// peer's connection waits briefly for its queue to drain (Erlang's busy
// port); beyond Config.SendQueueSize queued messages, messages to that peer
// are dropped and counted. Remote spawn: RegisterKind on a node, then
// SpawnOn from any node.
//
// A message from another node that finds its actor idle, with nothing else
// waiting on the connection, is processed on the connection's reader
// goroutine (actor.System.DeliverRemote) rather than handed to a worker:
// a request/reply round trip then costs no goroutine hand-off and no
// thread wake-up beyond the network's own. Actors whose runs take longer
// than 200 µs are handed to workers for a while, and if a run blocks (a
// call back to the sending node from inside a handler, say), a watchdog
// gives the connection to a new reader within a few milliseconds
// (cluster_transport_reader_detached_total), so nothing waits behind it
// for long and nothing deadlocks. Config.BusyPoll additionally lets readers
// busy-poll before they sleep, for latency at the price of CPU.
//
// # Global names and process groups
//
// RegisterGlobal / WhereIsGlobal are Erlang's global: cluster-wide unique
// names for PIDs. JoinGroup / GroupMembers are Erlang's pg. Both travel by
// gossip; each node owns the records of its own actors, so a record goes
// away when its actor dies or its node is declared dead. When a partition
// heals and two sides registered the same name, every node picks the same
// winner (earliest registration, then owner name, then PID) and the losing
// actor receives a *NameConflict message. See global.go for the details.
//
// # Security
//
// With Config.Secret set (Erlang's cookie), gossip is encrypted with a key
// derived from it, so a node with another secret cannot join, and actor
// transport connections start with a handshake in which both nodes prove
// they hold it (HMACs over fresh nonces), so a node without it cannot send.
// Config.TLS adds mutual TLS to the transport. Malformed frames close the
// connection, messages of unknown types are dropped and counted, and
// delivery runs under recover: no input from the network can crash a node.
//
// # Fault injection
//
// Faults holds seeded, run-time switchable rules between node names:
// partitions, one-way drops, drop probability, delay with jitter and
// duplication. They apply to actor messages (outgoing, on each peer's route
// to the transport) and to gossip (through a memberlist transport wrapper),
// so a partition is a real partition for both. Node.Crash stops a node
// without a goodbye; actor.System.Kill kills any actor, local or remote.
package cluster
