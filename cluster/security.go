package cluster

// Security of a cluster: the shared cluster secret (Erlang's "cookie") and
// optional mutual TLS for the remote transport.
//
// The cluster secret does two jobs, with two keys derived from it:
//
//   - gossip: memberlist encrypts and authenticates every gossip packet and
//     stream with AES-256-GCM under the gossip key (gossipKeyring). A node
//     with another secret cannot decrypt our gossip and we drop its packets,
//     so it cannot join.
//   - actor transport: every connection starts with a handshake in which
//     both nodes prove, with HMACs over fresh nonces under the remote key,
//     that they hold the secret (handshake.go). A node with another secret
//     cannot send actor messages, including the signals that stop actors,
//     and a recorded handshake cannot be replayed.
//
// Without TLS the actor messages themselves travel in clear text and are
// not authenticated after the handshake: someone who can read and inject
// traffic between nodes can read them or hijack a connection. For networks
// you do not trust, turn on mutual TLS (TLSConfig), which encrypts and
// authenticates the whole connection.
//
// With an empty secret the cluster runs in insecure mode: gossip is in clear
// text, anyone who can reach a node's ports can join and send to any actor.
// That is meant for a laptop and for tests.

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"golang.org/x/time/rate"
)

const (
	// Domain-separation prefixes: each key derived from the cluster secret
	// has its own, so no key (or token) tells anything about another.
	gossipKeyDomain     = "distributed/gossip-key/v1\x00"
	remoteAuthKeyDomain = "distributed/remote-auth-key/v1\x00"
)

// deriveKey derives a 32-byte key for one purpose (domain) from the cluster
// secret: SHA-256(domain || secret).
//
// A plain hash is enough here. The secret is configuration shared by all
// nodes, not a user's password stored next to its hash: the key it yields
// is what protects the cluster, and SHA-256 keeps all the entropy of the
// secret up to 256 bits. A deliberately slow password hash (scrypt, Argon2)
// would only multiply the cost of guessing a weak secret from captured
// traffic by a constant; it cannot make a weak secret strong. So a short or
// guessable secret is still weak: use a long random one, for example 32
// random bytes written in hex (openssl rand -hex 32).
func deriveKey(domain, secret string) []byte {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write([]byte(secret))
	return h.Sum(nil)
}

// gossipKeyring returns the memberlist keyring for the cluster secret: one
// AES-256 key derived from it. Put it in memberlist.Config.Keyring and leave
// GossipVerifyIncoming and GossipVerifyOutgoing at their default, true, so
// that gossip is always encrypted and packets that do not decrypt under the
// key (a node with another secret, or none) are dropped. Leave
// memberlist.Config.SecretKey nil: memberlist would install it in the
// keyring as the primary key.
//
// An empty secret yields a nil keyring and no error: gossip in clear text
// (insecure mode, see the top of this file).
func gossipKeyring(secret string) (*memberlist.Keyring, error) {
	if secret == "" {
		return nil, nil
	}
	kr, err := memberlist.NewKeyring(nil, deriveKey(gossipKeyDomain, secret))
	if err != nil {
		return nil, fmt.Errorf("cluster: gossip keyring: %w", err)
	}
	return kr, nil
}

// Texts of the errors memberlist (v0.7.0) returns from Join when the secrets
// of the joining node and of the node it contacts disagree. memberlist has
// no typed errors for them; TestSecretGossipJoin pins these texts.
var joinSecretErrors = []struct{ memberlist, hint string }{
	{"no installed keys could decrypt the message",
		"wrong cluster secret? the contacted node was started with a different cluster secret"},
	{"remote state is encrypted and encryption is not configured",
		"cluster secret missing: the contacted node has a cluster secret and this node has none"},
	{"encryption is configured but remote state is not encrypted",
		"cluster secret not shared: this node has a cluster secret and the contacted node has none"},
}

// explainJoinError adds to an error of memberlist's Join what the user most
// likely has to fix when it comes from a cluster secret mismatch; other
// errors (and nil) are returned unchanged.
func explainJoinError(err error) error {
	if err == nil {
		return nil
	}
	for _, e := range joinSecretErrors {
		if strings.Contains(err.Error(), e.memberlist) {
			return fmt.Errorf("%s: %w", e.hint, err)
		}
	}
	return err
}

// rateLimitedLog lets a few log lines through and then at most one a second,
// so that a misconfigured peer retrying in a loop, or one sending input that
// crashes a handler, cannot flood the log. The
// line that gets through reports how many were suppressed before it.
type rateLimitedLog struct {
	limiter    *rate.Limiter
	suppressed atomic.Uint64
}

func newRateLimitedLog() *rateLimitedLog {
	return &rateLimitedLog{limiter: rate.NewLimiter(rate.Every(time.Second), 5)}
}

func (l *rateLimitedLog) do(f func(suppressed uint64)) {
	if !l.limiter.Allow() {
		l.suppressed.Add(1)
		return
	}
	f(l.suppressed.Swap(0))
}

// TLSConfig turns on mutual TLS for the remote transport (actor messages
// between nodes). The zero value means no TLS. When any field is set,
// CertFile, KeyFile and CAFile are all required.
//
// Every node both accepts and opens connections with the same certificate,
// so it must be valid for TLS servers and clients (extended key usages
// serverAuth and clientAuth, or none). Connections use TLS 1.3 only; each
// side requires the other's certificate to be signed by the CA. Files are
// read once, when the node starts.
type TLSConfig struct {
	// CertFile is the PEM file with this node's certificate (and any
	// intermediates after it).
	CertFile string
	// KeyFile is the PEM file with the private key of CertFile.
	KeyFile string
	// CAFile is the PEM file with the CA certificate(s) that sign the
	// certificates of all nodes of the cluster. Nothing else is trusted.
	CAFile string
	// ServerName is the name that other nodes' certificates must carry (as a
	// DNS subject alternative name), for example "node.cluster.internal"
	// shared by all node certificates. Empty: the host of the address that is
	// dialled, so each node's certificate must name its advertised host or IP
	// address.
	ServerName string
}

// enabled reports whether any TLS setting is given.
func (c TLSConfig) enabled() bool {
	return c != TLSConfig{}
}

// load reads the files and returns the TLS configuration for the remote
// server (accepting peers) and for the client (dialling peers). It is an
// error to call it on a zero TLSConfig.
func (c TLSConfig) load() (server *tls.Config, client *tls.Config, err error) {
	var missing []error
	for _, f := range []struct{ name, val string }{
		{"CertFile", c.CertFile}, {"KeyFile", c.KeyFile}, {"CAFile", c.CAFile},
	} {
		if f.val == "" {
			missing = append(missing, fmt.Errorf("cluster: TLS: %s is not set (mutual TLS needs CertFile, KeyFile and CAFile)", f.name))
		}
	}
	if err := errors.Join(missing...); err != nil {
		return nil, nil, err
	}

	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: TLS CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("cluster: TLS CA file %s: no PEM certificate found", c.CAFile)
	}
	if _, err := os.Stat(c.CertFile); err != nil {
		return nil, nil, fmt.Errorf("cluster: TLS certificate file: %w", err)
	}
	if _, err := os.Stat(c.KeyFile); err != nil {
		return nil, nil, fmt.Errorf("cluster: TLS key file: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: TLS certificate %s with key %s: %w", c.CertFile, c.KeyFile, err)
	}

	server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	client = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   c.ServerName,
	}
	return server, client, nil
}
