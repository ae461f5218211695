package wsapi

import (
	"fmt"
	"testing"
)

func TestDecodeRequest_JSONRefusesRepeatedFrameKeysAndHeadersOnly(t *testing.T) {
	for frame, want := range map[string]string{
		`{"action": "a", "action": "b"}`:                    `Can't decode text (JSON) request. ValueError: duplicate key "action"`,
		`{"body": {}, "headers": {}, "body": {}}`:           `Can't decode text (JSON) request. ValueError: duplicate key "body"`,
		`{"headers": {"X-Roles": "a", "X-Roles": "admin"}}`: `Can't decode text (JSON) request. ValueError: duplicate key "X-Roles"`,
		`{"action": "a", "extra": {"k": 1, "k": 2}}`:        "",
		// A body is the service's to read, as REST bodies are: a message
		// body is stored as sent.
		`{"action": "message_post", "body": {"messages": [{"body": {"k": 1, "k": 2}}]}}`: "",
	} {
		_, err := DecodeRequest(JSON, []byte(frame))
		if got := fmt.Sprint(err); (want == "" && err != nil) || (want != "" && got != want) {
			t.Errorf("DecodeRequest(%s) = %v, want %q", frame, err, want)
		}
	}
}
