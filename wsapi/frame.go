package wsapi

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/go-msgpack/v2/codec"

	"github.com/zaqar-raft/zaqar/internal/jsonx"
)

// Encoding is how a frame is encoded: text frames carry JSON, binary frames
// MessagePack. A response uses the encoding of its request.
type Encoding int

// Frame encodings.
const (
	JSON Encoding = iota
	MsgPack
)

func (e Encoding) String() string {
	if e == MsgPack {
		return "binary (MessagePack)"
	}
	return "text (JSON)"
}

// Request is a decoded request frame (contract §13.1). Body and header
// values stay raw JSON so the service layer sees exactly what was sent.
type Request struct {
	Action  json.RawMessage            `json:"action"`
	Headers map[string]json.RawMessage `json:"headers"`
	Body    json.RawMessage            `json:"body"`
	// raw is the whole frame as JSON, echoed back in responses.
	raw map[string]json.RawMessage
}

// frameError is a frame-level failure (contract §13.2): answered with 400
// and the given error text, with the request echo chosen by the caller.
type frameError struct{ msg string }

func (e *frameError) Error() string { return e.msg }

// DecodeRequest decodes one frame. Frames that are not a JSON (or
// MessagePack) object are frame-level errors.
func DecodeRequest(enc Encoding, frame []byte) (*Request, error) {
	doc := frame
	if enc == MsgPack {
		var err error
		if doc, err = msgpackToJSON(frame); err != nil {
			return nil, &frameError{fmt.Sprintf("Can't decode %s request. %s", enc, err)}
		}
	}
	if err := jsonx.Check(doc); err != nil {
		return nil, &frameError{fmt.Sprintf("Can't decode %s request. ValueError: %v", enc, err)}
	}
	if jsonx.Kind(doc) != '{' {
		return nil, &frameError{"Unexpected body type. Expected dict or dict like."}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, &frameError{fmt.Sprintf("Can't decode %s request. ValueError: %v", enc, err)}
	}
	// Which action runs, and as whom, must not depend on which of two
	// equal keys a reader keeps. (The MessagePack reader has refused
	// repeated keys everywhere already.)
	if enc == JSON {
		for _, obj := range []json.RawMessage{doc, raw["headers"]} {
			if k, ok := repeatedKey(obj); ok {
				return nil, &frameError{fmt.Sprintf("Can't decode %s request. ValueError: duplicate key %s", enc, k)}
			}
		}
	}
	r := &Request{raw: raw, Action: raw["action"], Body: raw["body"]}
	if h, ok := raw["headers"]; ok && jsonx.Kind(h) == '{' {
		_ = json.Unmarshal(h, &r.Headers)
	}
	return r, nil
}

// repeatedKey returns, JSON-quoted, the first key that appears twice among
// the members of obj when obj is a JSON object. Keys are compared as
// decoded ("a" and "\u0061" are the same key); values are not looked into.
func repeatedKey(obj []byte) (string, bool) {
	if jsonx.Kind(obj) != '{' {
		return "", false
	}
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		k, isKey := tok.(string)
		if err != nil || !isKey {
			return "", false
		}
		if seen[k] {
			q, _ := json.Marshal(k)
			return string(q), true
		}
		seen[k] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return "", false
		}
	}
	return "", false
}

// msgpackHandle encodes responses with the newer MessagePack spec's types
// (str 8, bin). Requests are read by msgpackReader, not by this codec.
func msgpackHandle() *codec.MsgpackHandle {
	return &codec.MsgpackHandle{WriteExt: true}
}

// encodeFrame encodes a response document (given as JSON) in enc.
func encodeFrame(enc Encoding, doc []byte) ([]byte, error) {
	if enc == JSON {
		return doc, nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var out []byte
	if err := codec.NewEncoderBytes(&out, msgpackHandle()).Encode(fromJSON(v)); err != nil {
		return nil, err
	}
	return out, nil
}

// fromJSON converts json.Number to int64 or float64 for MessagePack.
func fromJSON(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, e := range t {
			t[k] = fromJSON(e)
		}
	case []interface{}:
		for i, e := range t {
			t[i] = fromJSON(e)
		}
	case json.Number:
		if n, err := t.Int64(); err == nil {
			return n
		}
		f, _ := t.Float64()
		return f
	}
	return v
}

// EncodeMsgPack encodes a JSON-like value as MessagePack (for clients and
// tests that speak binary frames).
func EncodeMsgPack(v interface{}) ([]byte, error) {
	var out []byte
	err := codec.NewEncoderBytes(&out, msgpackHandle()).Encode(v)
	return out, err
}

// DecodeMsgPack decodes a MessagePack frame into JSON.
func DecodeMsgPack(frame []byte) ([]byte, error) { return msgpackToJSON(frame) }
