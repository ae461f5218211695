package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/zaqar-raft/zaqar/service"
)

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // hrefs carry '&'; keep them readable
	if err := enc.Encode(v); err != nil {
		writeError(w, service.AsError(err))
		return
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// errorBody is Zaqar's REST error document.
type errorBody struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
}

// writeError renders an API error the one way REST renders errors.
func writeError(w http.ResponseWriter, e *service.Error) {
	writeJSON(w, e.Status, errorBody{Title: e.Title, Description: e.Description})
}

func noContent(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }

// link is an entry of a "links" array.
type link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

// restMessage is a message as REST returns it (contract §6.1). The field
// set is exact: python-zaqarclient rejects unknown keys.
type restMessage struct {
	ID       string          `json:"id"`
	Href     string          `json:"href"`
	TTL      int64           `json:"ttl"`
	Age      int64           `json:"age"`
	Body     json.RawMessage `json:"body"`
	Checksum string          `json:"checksum,omitempty"`
}

// collection returns "/v2/queues" or "/v2/topics" for the caller's namespace.
func collection(c service.Caller) string {
	if c.Namespace == service.Topics {
		return "/v2/topics"
	}
	return "/v2/queues"
}

func messageHref(queue, id string) string { return "/v2/queues/" + queue + "/messages/" + id }

// renderMessage adds the message's href, which names its claim while it
// is claimed.
func renderMessage(queue string, m service.Message) restMessage {
	href := messageHref(queue, m.ID)
	if m.ClaimID != "" {
		href += "?claim_id=" + m.ClaimID
	}
	return restMessage{ID: m.ID, Href: href, TTL: m.TTL, Age: m.Age, Body: m.Body, Checksum: m.Checksum}
}

func renderMessages(queue string, msgs []service.Message) []restMessage {
	out := make([]restMessage, len(msgs))
	for i, m := range msgs {
		out[i] = renderMessage(queue, m)
	}
	return out
}

// statsEdge is the oldest/newest entry of queue stats.
type statsEdge struct {
	Href    string `json:"href"`
	Age     int64  `json:"age"`
	Created string `json:"created"`
}

func renderEdge(base, queue string, m *service.StatsEdge) *statsEdge {
	if m == nil {
		return nil
	}
	return &statsEdge{Href: base + "/" + queue + "/messages/" + m.ID, Age: m.Age, Created: m.Created}
}
