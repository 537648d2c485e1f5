// Package clusterpb holds the protobuf wire messages of package cluster
// (remote spawn, global names and process groups). The types are generated from cluster.proto by `make proto`.
package clusterpb
