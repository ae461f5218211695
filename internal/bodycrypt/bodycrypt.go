// Package bodycrypt seals message bodies for storage (encryption at rest,
// queue metadata `_enable_encrypt_messages`) and opens them again.
//
// A sealed body is an envelope that can never be mistaken for a clear one:
// every clear body the service stores is a compact JSON text, which starts
// with one of `{["tfn-0123456789`, while an envelope starts with the byte
// 0x00, which no JSON text can start with. So "is this body sealed?" is a
// question about the first byte alone, and a clear body that merely looks
// encrypted (a string holding base64, say) is still a JSON text and is
// returned as it is.
//
//	offset  size  field
//	0       1     marker 0x00
//	1       1     format 0x01: AES-256-GCM, 12-byte nonce, 16-byte tag
//	2       4     key id: the first 4 bytes of SHA-256("zaqar-raft message key\x00" | key)
//	6       4     n: length of ciphertext and tag, big-endian
//	10      12    nonce (random, drawn when the body is sealed)
//	22      n     ciphertext | tag
//
// The first 10 bytes are the GCM additional data, so changing the format,
// key id or length makes opening fail. The length makes an envelope
// self-delimiting, which is what lets OpenPayload find one inside a
// notification payload the store built around it.
//
// The key id names the key without revealing it; Open picks the key by id,
// so a keyring can hold a retired key beside the current one (rotation),
// and a node given a different key reports whose key a body needs instead
// of failing to authenticate it.
package bodycrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// KeySize is the size of a message encryption key: AES-256.
const KeySize = 32

// Envelope layout.
const (
	Marker     = 0x00 // first byte of every sealed body
	FormatGCM  = 0x01 // AES-256-GCM with a 12-byte nonce
	headerLen  = 10   // marker, format, key id, length: the additional data
	nonceLen   = 12
	tagLen     = 16
	prefixLen  = headerLen + nonceLen
	keyIDLen   = 4
	keyIDLabel = "zaqar-raft message key\x00"
)

// Overhead is how many bytes sealing adds to a body.
const Overhead = prefixLen + tagLen

// Errors of Open and OpenPayload. Both mean the body cannot be served;
// neither is the caller's fault.
var (
	// ErrUnknownKey: the body was sealed under a key this keyring does not
	// hold (nodes configured with different keys, or none).
	ErrUnknownKey = errors.New("bodycrypt: sealed under a key this node does not hold")
	// ErrCorrupt: the envelope is malformed or does not authenticate under
	// the key its id names.
	ErrCorrupt = errors.New("bodycrypt: sealed body is corrupt")
)

// KeyID names a key: the first 4 bytes of SHA-256 over a label and the
// key. It is shown to operators (hex) and written into every envelope.
type KeyID [keyIDLen]byte

func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// IDOf returns the key id of key.
func IDOf(key []byte) KeyID {
	h := sha256.New()
	h.Write([]byte(keyIDLabel))
	h.Write(key)
	var id KeyID
	copy(id[:], h.Sum(nil))
	return id
}

// ParseKey reads a key as operators write it: 32 bytes in standard base64
// (padded or not; what `openssl rand -base64 32` prints) or as 64 hex
// digits (`openssl rand -hex 32`). The two cannot be confused: 64 hex
// digits read as base64 would be 48 bytes. Surrounding white space is
// ignored, so a key file may end with a newline. Errors never quote the
// text, which is a secret.
func ParseKey(text string) ([]byte, error) {
	s := strings.TrimSpace(text)
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	enc := base64.StdEncoding
	if !strings.HasSuffix(s, "=") {
		enc = base64.RawStdEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, errors.New("message encryption key is neither base64 nor 64 hex digits")
	}
	if len(b) != KeySize {
		return nil, fmt.Errorf("message encryption key is %d bytes; it must be %d (AES-256)", len(b), KeySize)
	}
	return b, nil
}

// Keyring holds the keys a node seals and opens bodies with. The first key
// seals; every key opens what was sealed under it. A nil *Keyring holds no
// key: it opens clear bodies (returned as they are) and nothing else.
type Keyring struct {
	sealID KeyID
	aeads  map[KeyID]cipher.AEAD
	rand   io.Reader
}

// NewKeyring returns a keyring of keys (each KeySize bytes); the first
// seals. Two keys with the same id are refused.
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("bodycrypt: no key")
	}
	k := &Keyring{aeads: map[KeyID]cipher.AEAD{}, rand: rand.Reader}
	for i, key := range keys {
		if len(key) != KeySize {
			return nil, fmt.Errorf("bodycrypt: key %d is %d bytes; it must be %d", i+1, len(key), KeySize)
		}
		id := IDOf(key)
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("bodycrypt: key %d has the id %s of an earlier key", i+1, id)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		k.aeads[id] = aead
		if i == 0 {
			k.sealID = id
		}
	}
	return k, nil
}

// SealingKeyID is the id of the key Seal uses.
func (k *Keyring) SealingKeyID() KeyID { return k.sealID }

// Has reports whether the keyring holds the key with this id.
func (k *Keyring) Has(id KeyID) bool {
	if k == nil {
		return false
	}
	_, ok := k.aeads[id]
	return ok
}

// Seal encrypts a body under the sealing key with a fresh random nonce.
// It is called before the body is proposed, so every replica stores the
// same envelope.
func (k *Keyring) Seal(body []byte) ([]byte, error) {
	if uint64(len(body))+tagLen > math.MaxUint32 {
		return nil, errors.New("bodycrypt: body too large to seal")
	}
	aead := k.aeads[k.sealID]
	out := make([]byte, prefixLen, prefixLen+len(body)+tagLen)
	out[0], out[1] = Marker, FormatGCM
	copy(out[2:6], k.sealID[:])
	binary.BigEndian.PutUint32(out[6:10], uint32(len(body)+tagLen))
	if _, err := io.ReadFull(k.rand, out[headerLen:prefixLen]); err != nil {
		return nil, fmt.Errorf("bodycrypt: nonce: %w", err)
	}
	return aead.Seal(out, out[headerLen:prefixLen], body, out[:headerLen]), nil
}

// IsSealed reports whether a stored body is an envelope (by its first byte;
// see the package comment).
func IsSealed(stored []byte) bool { return len(stored) > 0 && stored[0] == Marker }

// SealedKeyID returns the key id of a sealed body (false for a clear body
// or one too short to carry an id).
func SealedKeyID(stored []byte) (KeyID, bool) {
	var id KeyID
	if !IsSealed(stored) || len(stored) < headerLen {
		return id, false
	}
	copy(id[:], stored[2:6])
	return id, true
}

// Open returns the body a stored body holds: a clear body as it is, a
// sealed one decrypted. The error wraps ErrUnknownKey or ErrCorrupt.
func (k *Keyring) Open(stored []byte) ([]byte, error) {
	if !IsSealed(stored) {
		return stored, nil
	}
	plain, n, err := k.openPrefix(stored)
	if err != nil {
		return nil, err
	}
	if n != len(stored) {
		return nil, fmt.Errorf("%w: %d bytes after the envelope", ErrCorrupt, len(stored)-n)
	}
	return plain, nil
}

// openPrefix opens the envelope at the start of b and returns the body and
// the envelope's length.
func (k *Keyring) openPrefix(b []byte) ([]byte, int, error) {
	if len(b) < prefixLen {
		return nil, 0, fmt.Errorf("%w: %d bytes is shorter than an envelope", ErrCorrupt, len(b))
	}
	if b[1] != FormatGCM {
		return nil, 0, fmt.Errorf("%w: unknown format %d", ErrCorrupt, b[1])
	}
	var id KeyID
	copy(id[:], b[2:6])
	n := binary.BigEndian.Uint32(b[6:10])
	if n < tagLen || uint64(n) > uint64(len(b)-prefixLen) {
		return nil, 0, fmt.Errorf("%w: length %d does not fit", ErrCorrupt, n)
	}
	if !k.Has(id) {
		held := "no key"
		if k != nil {
			held = "key " + k.sealID.String()
		}
		return nil, 0, fmt.Errorf("%w: the body needs key %s and this node has %s", ErrUnknownKey, id, held)
	}
	end := prefixLen + int(n)
	plain, err := k.aeads[id].Open(nil, b[headerLen:prefixLen], b[prefixLen:end], b[:headerLen])
	if err != nil {
		return nil, 0, fmt.Errorf("%w: it does not authenticate under key %s", ErrCorrupt, id)
	}
	return plain, end, nil
}

// payloadBody is how every notification payload the store builds starts
// (store.notificationPayload): the message body follows it.
var payloadBody = []byte(`{"body": `)

// OpenPayload returns a notification payload with its body opened. The
// store builds payloads around the stored body, so a sealed message's
// payload holds the envelope right after `{"body": `; the envelope's
// length says where the rest of the payload resumes. Any other payload is
// returned as it is.
func (k *Keyring) OpenPayload(payload []byte) ([]byte, error) {
	if !bytes.HasPrefix(payload, payloadBody) || !IsSealed(payload[len(payloadBody):]) {
		return payload, nil
	}
	sealed := payload[len(payloadBody):]
	plain, n, err := k.openPrefix(sealed)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(payloadBody)+len(plain)+len(sealed)-n)
	out = append(out, payloadBody...)
	out = append(out, plain...)
	return append(out, sealed[n:]...), nil
}
