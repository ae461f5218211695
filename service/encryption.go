package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/zaqar-raft/zaqar/internal/bodycrypt"
	"github.com/zaqar-raft/zaqar/store"
)

// Encryption at rest (queue metadata `_enable_encrypt_messages`). The
// service seals the bodies of messages posted to a queue with the flag
// before it proposes them, so the Raft log, snapshots and every store hold
// only envelopes (internal/bodycrypt), and every node applies the same
// bytes: the nonce is drawn here, before the log. Reads open whatever is
// sealed, by the envelope's marker rather than by the queue's flag, so
// messages moved to a dead-letter queue, or left in a queue whose flag was
// turned off, are still opened.

// encryptFlag is the reserved metadata key that asks for encryption.
const encryptFlag = "_enable_encrypt_messages"

// encryptsMessages reports whether stored queue metadata (a compact JSON
// object) has `_enable_encrypt_messages: true`.
func encryptsMessages(meta []byte) bool {
	if !bytes.Contains(meta, []byte(`"`+encryptFlag+`"`)) {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(meta, &m) != nil {
		return false
	}
	on, ok := asBool(m[encryptFlag])
	return ok && on
}

// checkEncryptFlag refuses metadata that asks for encryption this node
// cannot provide: without a key the flag would be a promise nobody keeps.
func (s *Service) checkEncryptFlag(meta map[string]json.RawMessage) *Error {
	if on, _ := asBool(meta[encryptFlag]); on && s.keys == nil {
		return badRequest("_enable_encrypt_messages is not available: the service has no message encryption key configured.")
	}
	return nil
}

// sealBodies replaces each message's body by its envelope. Checksums are
// not stored for sealed bodies (an MD5 of the clear body would let anyone
// holding the disk confirm a guess); reads compute them from the opened
// body instead.
func (s *Service) sealBodies(msgs []store.NewMessage) *Error {
	if s.keys == nil {
		return &Error{Status: http.StatusServiceUnavailable, Title: TitleServiceUnavailable,
			Description: "Messages could not be enqueued. The queue requires its messages encrypted and this node has no message encryption key; every node must be configured with the same key."}
	}
	for i := range msgs {
		sealed, err := s.keys.Seal(msgs[i].Body)
		if err != nil {
			return storeFailure("Messages could not be enqueued.", err)
		}
		msgs[i].Body, msgs[i].Checksum = sealed, ""
	}
	return nil
}

// openBody returns a stored message's body as the client posted it, and
// its checksum.
func (s *Service) openBody(m *store.Message) (json.RawMessage, string, error) {
	if !bodycrypt.IsSealed(m.Body) {
		return m.Body, m.Checksum, nil
	}
	body, err := s.keys.Open(m.Body)
	if err != nil {
		return nil, "", fmt.Errorf("message %s: %w", m.ID, err)
	}
	sum := ""
	if s.limits.EnableChecksum && !isNull(body) {
		sum = checksum(body)
	}
	return body, sum, nil
}

// sealedFailure is the answer when a body cannot be opened: 503, because
// the fault is this node's (a key other than the cluster's, or a damaged
// store) and not the request's, and another node, or this one once its
// key is fixed, can serve it. Nothing undecrypted is ever returned.
func (s *Service) sealedFailure(what string, err error) *Error {
	s.log.Error("a message body cannot be decrypted", "err", err)
	cause := "It is damaged on this node"
	if errors.Is(err, bodycrypt.ErrUnknownKey) {
		cause = "It was encrypted with a key this node does not hold; every node must be configured with the same message encryption key"
	}
	return &Error{Status: http.StatusServiceUnavailable, Title: TitleServiceUnavailable,
		Description: fmt.Sprintf("%s A message body could not be decrypted. %s (%v).", what, cause, err)}
}

// checkKeysBeforeTake refuses a claim or pop before it is proposed when
// the messages it would take are sealed under a key this node does not
// hold. Once committed, a pop has removed them and a claim holds them, and
// the answer could not show them. It looks at this node's own state (no
// read barrier) at the first n messages the take would select; that is a
// guard against a misconfigured node, not a promise, and opening the
// result is still checked.
func (s *Service) checkKeysBeforeTake(c Caller, queue string, n int, what string) *Error {
	v := s.store.View()
	defer v.Close()
	msgs, err := v.ListMessages(c.scope(), queue, time.Now().UnixNano(), store.ListOptions{Limit: n, Echo: true})
	if err != nil {
		return storeFailure(what, err)
	}
	for _, m := range msgs {
		if id, sealed := bodycrypt.SealedKeyID(m.Body); sealed && !s.keys.Has(id) {
			return s.sealedFailure(what, fmt.Errorf("message %s: %w: it needs key %s", m.ID, bodycrypt.ErrUnknownKey, id))
		}
	}
	return nil
}
