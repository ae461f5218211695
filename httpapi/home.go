package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
)

var versionsDocument = []byte(`{"versions": [{"id": "2", "status": "CURRENT", "updated": "2014-9-24T04:06:47Z", "media-types": [{"base": "application/json", "type": "application/vnd.openstack.messaging-v2+json"}], "links": [{"href": "/v2/", "rel": "self"}]}]}`)

// versions answers GET / (contract §3.1): no authentication, no headers.
func (h *handler) versions(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusMultipleChoices)
	_, _ = w.Write(versionsDocument)
}

// homeRelation is one relation of the JSON-home document.
type homeRelation struct {
	rel, template string
	vars          map[string]string
	allow         []string
}

var homeRelations = []homeRelation{
	{"rel/queues", "/v2/queues{?marker,limit,detailed}", map[string]string{"marker": "param/marker", "limit": "param/queue_limit", "detailed": "param/detailed"}, []string{"GET"}},
	{"rel/queue", "/v2/queues/{queue_name}", map[string]string{"queue_name": "param/queue_name"}, []string{"GET", "PUT", "DELETE", "PATCH"}},
	{"rel/queue_stats", "/v2/queues/{queue_name}/stats", map[string]string{"queue_name": "param/queue_name"}, []string{"GET"}},
	{"rel/queue_share", "/v2/queues/{queue_name}/share", map[string]string{"queue_name": "param/queue_name"}, []string{"POST"}},
	{"rel/queue_purge", "/v2/queues/{queue_name}/purge", map[string]string{"queue_name": "param/queue_name"}, []string{"POST"}},
	{"rel/messages", "/v2/queues/{queue_name}/messages{?marker,limit,echo,include_claimed}", map[string]string{"queue_name": "param/queue_name", "marker": "param/marker", "limit": "param/messages_limit", "echo": "param/echo", "include_claimed": "param/include_claimed"}, []string{"GET"}},
	{"rel/post_messages", "/v2/queues/{queue_name}/messages", map[string]string{"queue_name": "param/queue_name"}, []string{"POST"}},
	{"rel/messages_delete", "/v2/queues/{queue_name}/messages{?ids,pop}", map[string]string{"queue_name": "param/queue_name", "ids": "param/ids", "pop": "param/pop"}, []string{"DELETE"}},
	{"rel/message_delete", "/v2/queues/{queue_name}/messages/{message_id}{?claim}", map[string]string{"queue_name": "param/queue_name", "message_id": "param/message_id", "claim": "param/claim_id"}, []string{"DELETE"}},
	{"rel/message_get", "/v2/queues/{queue_name}/messages/{message_id}", map[string]string{"queue_name": "param/queue_name", "message_id": "param/message_id"}, []string{"GET"}},
	{"rel/claim", "/v2/queues/{queue_name}/claims/{claim_id}", map[string]string{"queue_name": "param/queue_name", "claim_id": "param/claim_id"}, []string{"GET"}},
	{"rel/post_claim", "/v2/queues/{queue_name}/claims{?limit}", map[string]string{"queue_name": "param/queue_name", "limit": "param/claim_limit"}, []string{"POST"}},
	{"rel/patch_claim", "/v2/queues/{queue_name}/claims/{claim_id}", map[string]string{"queue_name": "param/queue_name", "claim_id": "param/claim_id"}, []string{"PATCH"}},
	{"rel/delete_claim", "/v2/queues/{queue_name}/claims/{claim_id}", map[string]string{"queue_name": "param/queue_name", "claim_id": "param/claim_id"}, []string{"DELETE"}},
	{"rel/subscriptions_get", "/v2/queues/{queue_name}/subscriptions{?marker,limit}", map[string]string{"queue_name": "param/queue_name", "marker": "param/marker", "limit": "param/subscription_limit"}, []string{"GET"}},
	{"rel/subscriptions_post", "/v2/queues/{queue_name}/subscriptions", map[string]string{"queue_name": "param/queue_name"}, []string{"POST"}},
	{"rel/subscription", "/v2/queues/{queue_name}/subscriptions/{subscriptions_id}", map[string]string{"queue_name": "param/queue_name", "subscriptions_id": "param/subscriptions_id"}, []string{"GET", "DELETE"}},
	{"rel/subscription_patch", "/v2/queues/{queue_name}/subscriptions/{subscriptions_id}", map[string]string{"queue_name": "param/queue_name", "subscriptions_id": "param/subscriptions_id"}, []string{"PATCH"}},
	{"rel/ping", "/v2/ping", nil, []string{"GET"}},
}

var homeDocumentJSON = buildHomeDocument()

func buildHomeDocument() []byte {
	resources := map[string]any{}
	for _, rel := range homeRelations {
		hints := map[string]any{"allow": rel.allow, "formats": map[string]any{"application/json": map[string]any{}}}
		for _, m := range rel.allow {
			if m == "POST" || m == "PATCH" {
				hints["accept-post"] = []string{"application/json"}
			}
		}
		desc := map[string]any{"hints": hints}
		if len(rel.vars) == 0 && !strings.Contains(rel.template, "{") {
			desc["href"] = rel.template
		} else {
			desc["href-template"] = rel.template
			desc["href-vars"] = rel.vars
		}
		resources[rel.rel] = desc
	}
	b, err := json.Marshal(map[string]any{"resources": resources})
	if err != nil {
		panic(err)
	}
	return b
}

// homeDocument answers GET /v2/ (contract §3.2).
func (h *handler) homeDocument(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json-home")
	w.Header().Set("Cache-Control", "max-age=86400")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(homeDocumentJSON)
}

func (h *handler) ping(w http.ResponseWriter, r *http.Request) {
	if e := h.svc.Ping(r.Context()); e != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	noContent(w)
}

func (h *handler) pingHead(w http.ResponseWriter, _ *http.Request) { noContent(w) }

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	rep, e := h.svc.Health(r.Context(), callerFrom(r))
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
