// Package actorpb holds the protobuf wire forms of the actor package's PIDs,
// exit reasons, Exit and Down messages, and the link, monitor and exit
// signals that the cluster layer carries between nodes.
//
// The types are generated from actor.proto by `make proto`. Convert with the
// actor package (PID.ToProto, PIDFromProto, Reason.ToProto, ReasonFromProto,
// ...), whose decoders validate what arrives from the network.
package actorpb
