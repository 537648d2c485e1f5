// Package sagapb holds the protobuf messages of the saga behaviour: the
// StepRequest a coordinator sends to a participant, the StepReply it gets
// back, and the Event records of the durable saga journal.
//
// The types are generated from saga.proto by `make proto`.
package sagapb
