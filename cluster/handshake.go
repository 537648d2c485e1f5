package cluster

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The actor transport's handshake. The dialling node opens a connection
// (TLS first, when configured) and both sides prove that they hold the
// cluster secret without sending it, with fresh nonces so that a recorded
// handshake cannot be replayed:
//
//	dialler → acceptor   magic "DSTX" version:u8 address:string name:string nonceD[32]
//	acceptor → dialler   status:u8 (0 ok, else message:string) nonceA[32] proofA:string
//	dialler → acceptor   proofD:string
//	acceptor → dialler   status:u8 (0 ok, else message:string)
//
//	proofA = HMAC-SHA256(key, "acceptor" ‖ nonceD ‖ nonceA)
//	proofD = HMAC-SHA256(key, "dialler"  ‖ nonceD ‖ nonceA ‖ address)
//
// key is derived from the cluster secret (remoteAuthKeyDomain). Without a
// secret a side sends an empty proof and checks none: that is the insecure
// mode of security.go. A side with a secret rejects a peer whose proof is
// missing or wrong, with a message that says which. After the handshake the
// dialler sends frames (wire.go) and the acceptor only reads.

const (
	handshakeMagic   = "DSTX"
	handshakeVersion = 1
	nonceSize        = 32
	// maxHandshakeString bounds the strings of a handshake (addresses,
	// names, messages, proofs).
	maxHandshakeString = 1024
)

// Messages of handshake rejections. They say what to fix, since the usual
// cause is a misconfigured node.
const (
	errMsgSecretMismatch = "cluster secret mismatch: the peer was started with a different cluster secret"
	errMsgMissingSecret  = "missing cluster credentials: the peer sent no cluster secret proof; start it with the same cluster secret as this node"
	errMsgPeerNoSecret   = "the peer has no cluster secret but this node has one; start both with the same cluster secret"
)

// HandshakeError is a connection the peer refused, or that this node
// refused, with the reason.
type HandshakeError struct {
	Peer   string // the peer's address
	Reason string
	ByPeer bool // the peer refused (else this node did)
}

func (e *HandshakeError) Error() string {
	if e.ByPeer {
		return fmt.Sprintf("cluster: actor transport: %s refused the connection: %s", e.Peer, e.Reason)
	}
	return fmt.Sprintf("cluster: actor transport: refused %s: %s", e.Peer, e.Reason)
}

// handshakeKey returns the key of the proofs, nil without a secret.
func handshakeKey(secret string) []byte {
	if secret == "" {
		return nil
	}
	return deriveKey(remoteAuthKeyDomain, secret)
}

func proof(key []byte, role string, parts ...[]byte) []byte {
	if key == nil {
		return nil
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(role))
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// hsWriter accumulates one handshake message.
type hsWriter []byte

func (w hsWriter) str(s []byte) hsWriter {
	w = binary.AppendUvarint(w, uint64(len(s)))
	return append(w, s...)
}

// readHSString reads a uvarint-prefixed string of at most maxHandshakeString bytes.
func readHSString(r *bufio.Reader, what string) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("handshake: %s: %w", what, err)
	}
	if n > maxHandshakeString {
		return nil, fmt.Errorf("handshake: %s of %d bytes is too long", what, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("handshake: %s: %w", what, err)
	}
	return b, nil
}

// readStatus reads a status byte and, when it is not ok, the message.
func readStatus(r *bufio.Reader) (reason string, err error) {
	st, err := r.ReadByte()
	if err != nil {
		return "", fmt.Errorf("handshake: %w", err)
	}
	if st == 0 {
		return "", nil
	}
	msg, err := readHSString(r, "rejection")
	if err != nil {
		return "", err
	}
	return string(msg), nil
}

func rejection(reason string) []byte { return hsWriter{1}.str([]byte(reason)) }

// dialHandshake runs the dialler's side on rw (read through r). self and
// name are this node's transport address and name; peer names the peer in
// errors.
func dialHandshake(rw io.Writer, r *bufio.Reader, key []byte, self, name, peer string) error {
	nonceD := make([]byte, nonceSize)
	_, _ = rand.Read(nonceD)
	hello := hsWriter(handshakeMagic)
	hello = append(hello, handshakeVersion)
	hello = hello.str([]byte(self)).str([]byte(name))
	hello = append(hello, nonceD...)
	if _, err := rw.Write(hello); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	reason, err := readStatus(r)
	if err != nil {
		return err
	}
	if reason != "" {
		return &HandshakeError{Peer: peer, Reason: reason, ByPeer: true}
	}
	nonceA := make([]byte, nonceSize)
	if _, err := io.ReadFull(r, nonceA); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	proofA, err := readHSString(r, "proof")
	if err != nil {
		return err
	}
	if key != nil {
		var why string
		switch {
		case len(proofA) == 0:
			why = errMsgPeerNoSecret
		case !hmac.Equal(proofA, proof(key, "acceptor", nonceD, nonceA)):
			why = errMsgSecretMismatch
		}
		if why != "" {
			return &HandshakeError{Peer: peer, Reason: why}
		}
	}
	if _, err := rw.Write(hsWriter{}.str(proof(key, "dialler", nonceD, nonceA, []byte(self)))); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if reason, err = readStatus(r); err != nil {
		return err
	}
	if reason != "" {
		return &HandshakeError{Peer: peer, Reason: reason, ByPeer: true}
	}
	return nil
}

// errNotTransport is returned for a connection that does not start with the
// handshake's magic.
var errNotTransport = errors.New("not an actor transport connection (bad magic)")

// acceptHandshake runs the acceptor's side and returns the dialler's address
// and name. from names the connection in errors.
func acceptHandshake(w io.Writer, r *bufio.Reader, key []byte, from string) (addr, name string, err error) {
	head := make([]byte, len(handshakeMagic)+1)
	if _, err := io.ReadFull(r, head); err != nil {
		return "", "", fmt.Errorf("handshake: %w", err)
	}
	if string(head[:len(handshakeMagic)]) != handshakeMagic {
		return "", "", errNotTransport
	}
	if head[len(handshakeMagic)] != handshakeVersion {
		reason := fmt.Sprintf("unsupported transport version %d (this node speaks %d)", head[len(handshakeMagic)], handshakeVersion)
		_, _ = w.Write(rejection(reason))
		return "", "", &HandshakeError{Peer: from, Reason: reason}
	}
	a, err := readHSString(r, "address")
	if err != nil {
		return "", "", err
	}
	nm, err := readHSString(r, "name")
	if err != nil {
		return "", "", err
	}
	nonceD := make([]byte, nonceSize)
	if _, err := io.ReadFull(r, nonceD); err != nil {
		return "", "", fmt.Errorf("handshake: %w", err)
	}
	nonceA := make([]byte, nonceSize)
	_, _ = rand.Read(nonceA)
	msg := append(hsWriter{0}, nonceA...).str(proof(key, "acceptor", nonceD, nonceA))
	if _, err := w.Write(msg); err != nil {
		return "", "", fmt.Errorf("handshake: %w", err)
	}
	proofD, err := readHSString(r, "proof")
	if err != nil {
		return "", "", err
	}
	if key != nil {
		var why string
		switch {
		case len(proofD) == 0:
			why = errMsgMissingSecret
		case !hmac.Equal(proofD, proof(key, "dialler", nonceD, nonceA, a)):
			why = errMsgSecretMismatch
		}
		if why != "" {
			_, _ = w.Write(rejection(why))
			return "", "", &HandshakeError{Peer: from, Reason: why}
		}
	}
	if _, err := w.Write([]byte{0}); err != nil {
		return "", "", fmt.Errorf("handshake: %w", err)
	}
	return string(a), string(nm), nil
}
