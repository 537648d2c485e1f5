package cluster

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

// --- keys -------------------------------------------------------------------

func TestSecretKeyDerivation(t *testing.T) {
	a1, err := gossipKeyring("cookie-a")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := gossipKeyring("cookie-a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := gossipKeyring("cookie-b")
	if err != nil {
		t.Fatal(err)
	}
	ka, kb := a1.GetPrimaryKey(), b.GetPrimaryKey()
	if len(ka) != 32 {
		t.Fatalf("gossip key is %d bytes, want 32 (AES-256)", len(ka))
	}
	if !bytes.Equal(ka, a2.GetPrimaryKey()) {
		t.Error("same secret gave different gossip keys")
	}
	if bytes.Equal(ka, kb) {
		t.Error("different secrets gave the same gossip key")
	}
	if got := len(a1.GetKeys()); got != 1 {
		t.Errorf("keyring holds %d keys, want 1", got)
	}
	if !bytes.Equal(handshakeKey("cookie-a"), handshakeKey("cookie-a")) {
		t.Error("same secret gave different transport keys")
	}
	if bytes.Equal(handshakeKey("cookie-a"), handshakeKey("cookie-b")) {
		t.Error("different secrets gave the same transport key")
	}
	if bytes.Equal(handshakeKey("cookie-a"), ka) {
		t.Error("the transport key is the gossip key")
	}
}

func TestSecretEmptyIsInsecureMode(t *testing.T) {
	kr, err := gossipKeyring("")
	if kr != nil || err != nil {
		t.Fatalf("gossipKeyring(\"\") = %v, %v; want nil, nil", kr, err)
	}
	if k := handshakeKey(""); k != nil {
		t.Fatalf("handshakeKey(\"\") = %x, want nil", k)
	}
}

// --- gossip -----------------------------------------------------------------

// startMemberlist starts a memberlist on 127.0.0.1 with a free port and the
// keyring of secret; log collects memberlist's own log lines.
func startMemberlist(t *testing.T, name, secret string, log io.Writer) *memberlist.Memberlist {
	t.Helper()
	kr, err := gossipKeyring(secret)
	if err != nil {
		t.Fatal(err)
	}
	cfg := memberlist.DefaultLocalConfig()
	cfg.Name = name
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	cfg.Keyring = kr
	// Short probe timings: a probe still running at Shutdown finishes
	// quickly, so the package's goroutine-leak check does not see it.
	cfg.TCPTimeout = 300 * time.Millisecond
	cfg.ProbeTimeout, cfg.ProbeInterval = 100*time.Millisecond, 200*time.Millisecond
	cfg.LogOutput = log
	ml, err := memberlist.Create(cfg)
	if err != nil {
		t.Fatalf("memberlist %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := ml.Shutdown(); err != nil {
			t.Errorf("memberlist %s shutdown: %v", name, err)
		}
	})
	return ml
}

func memberlistAddr(ml *memberlist.Memberlist) string {
	n := ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), fmt.Sprint(n.Port))
}

// syncBuffer is a bytes.Buffer safe for memberlist's concurrent logging.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestSecretGossipJoin(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })

	cases := []struct {
		name               string
		seedSecret, secret string
		wantErr            string // "" when the join succeeds
		wantHint           string
	}{
		{"same secret", "cookie-a", "cookie-a", "", ""},
		{"different secret", "cookie-a", "cookie-b",
			"no installed keys could decrypt the message", "wrong cluster secret?"},
		{"joiner without secret", "cookie-a", "",
			"remote state is encrypted and encryption is not configured", "cluster secret missing"},
		{"seed without secret", "", "cookie-a",
			"encryption is configured but remote state is not encrypted", "cluster secret not shared"},
		{"no secrets", "", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var seedLog, joinLog syncBuffer
			seed := startMemberlist(t, "seed", tc.seedSecret, &seedLog)
			joiner := startMemberlist(t, "joiner", tc.secret, &joinLog)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("seed log:\n%s\njoiner log:\n%s", &seedLog, &joinLog)
				}
			})

			n, err := joiner.Join([]string{memberlistAddr(seed)})
			t.Logf("Join: n=%d err=%v", n, err)
			if tc.wantErr != "" {
				if err == nil || n != 0 {
					t.Fatalf("Join = %d, %v; want an error", n, err)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Join error %q does not contain %q", err, tc.wantErr)
				}
				if hinted := explainJoinError(err); !strings.HasPrefix(hinted.Error(), tc.wantHint) {
					t.Errorf("explainJoinError = %q, want it to start with %q", hinted, tc.wantHint)
				}
				if got := joiner.NumMembers(); got != 1 {
					t.Errorf("joiner sees %d members, want only itself", got)
				}
				if got := seed.NumMembers(); got != 1 {
					t.Errorf("seed sees %d members, want only itself", got)
				}
				return
			}
			if err != nil || n != 1 {
				t.Fatalf("Join = %d, %v; want 1, nil", n, err)
			}
			if got := joiner.NumMembers(); got != 2 {
				t.Errorf("joiner sees %d members, want 2", got)
			}
			deadline := time.Now().Add(5 * time.Second)
			for seed.NumMembers() != 2 {
				if time.Now().After(deadline) {
					t.Fatalf("seed sees %d members, want 2", seed.NumMembers())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestSecretExplainJoinError(t *testing.T) {
	if explainJoinError(nil) != nil {
		t.Error("explainJoinError(nil) != nil")
	}
	other := errors.New("1 error occurred:\n\t* failed to join 10.0.0.1:7946: dial tcp: connection refused")
	if got := explainJoinError(other); got != other {
		t.Errorf("unrelated error changed: %v", got)
	}
	mismatch := errors.New("failed to join x: no installed keys could decrypt the message")
	if got := explainJoinError(mismatch); !errors.Is(got, mismatch) {
		t.Errorf("explained error does not wrap memberlist's: %v", got)
	}
}

// --- mutual TLS -----------------------------------------------------------------

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM of cert
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".pem")
	writePEM(t, file, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, file: file}
}

// issue writes a certificate for a node (valid as TLS server and client, for
// 127.0.0.1 and the DNS name "node.test") and its key; it returns the TLS
// configuration that uses them with this CA.
func (ca *testCA) issue(t *testing.T, dir, name string) TLSConfig {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"node.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := TLSConfig{
		CertFile: filepath.Join(dir, name+".pem"),
		KeyFile:  filepath.Join(dir, name+"-key.pem"),
		CAFile:   ca.file,
	}
	writePEM(t, c.CertFile, "CERTIFICATE", der)
	writePEM(t, c.KeyFile, "PRIVATE KEY", keyDER)
	return c
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTLSLoad(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	c := ca.issue(t, dir, "node")
	c.ServerName = "node.test"

	server, client, err := c.load()
	if err != nil {
		t.Fatal(err)
	}
	if server.ClientAuth != tls.RequireAndVerifyClientCert || server.ClientCAs == nil {
		t.Error("server does not require and verify client certificates")
	}
	if server.MinVersion != tls.VersionTLS13 || client.MinVersion != tls.VersionTLS13 {
		t.Error("TLS 1.3 is not the minimum")
	}
	if client.RootCAs == nil || client.ServerName != "node.test" || len(client.Certificates) != 1 {
		t.Errorf("client config: RootCAs %v, ServerName %q, %d certificates",
			client.RootCAs != nil, client.ServerName, len(client.Certificates))
	}
	if client.InsecureSkipVerify {
		t.Error("client skips verification")
	}
}

func TestTLSLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	good := ca.issue(t, dir, "node")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	other := ca.issue(t, dir, "other")

	with := func(f func(*TLSConfig)) TLSConfig { c := good; f(&c); return c }
	cases := []struct {
		name string
		cfg  TLSConfig
		want []string // substrings of the error
	}{
		{"only a CA", TLSConfig{CAFile: ca.file}, []string{"CertFile is not set", "KeyFile is not set"}},
		{"missing CA", with(func(c *TLSConfig) { c.CAFile = missing }), []string{"CA file", missing}},
		{"CA not PEM", with(func(c *TLSConfig) { c.CAFile = garbage }), []string{"CA file", garbage, "no PEM certificate"}},
		{"missing cert", with(func(c *TLSConfig) { c.CertFile = missing }), []string{"certificate file", missing}},
		{"missing key", with(func(c *TLSConfig) { c.KeyFile = missing }), []string{"key file", missing}},
		{"cert not PEM", with(func(c *TLSConfig) { c.CertFile = garbage }), []string{garbage, good.KeyFile}},
		{"key of another cert", with(func(c *TLSConfig) { c.KeyFile = other.KeyFile }), []string{good.CertFile, other.KeyFile}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.cfg.load()
			if err == nil {
				t.Fatal("load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := newTransport(transportConfig{bind: "127.0.0.1:0", tls: TLSConfig{CAFile: missing}, log: zap.NewNop()}); err == nil {
		t.Error("newTransport ignored a broken TLS configuration")
	}
}
