package httpapi

import (
	"net/http"
)

var versionsDocument = []byte(`{"versions": [{"id": "2", "status": "CURRENT", "updated": "2014-9-24T04:06:47Z", "media-types": [{"base": "application/json", "type": "application/vnd.openstack.messaging-v2+json"}], "links": [{"href": "/v2/", "rel": "self"}]}]}`)

// versions answers GET / (contract §3.1): no authentication, no headers.
func (h *handler) versions(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusMultipleChoices)
	_, _ = w.Write(versionsDocument)
}

// homeDocument answers GET /v2/ (contract §3.2). Admins get the admin
// relations too, so the answer depends on who asks: a shared cache must
// not hand an admin's document to anyone else.
func (h *handler) homeDocument(w http.ResponseWriter, r *http.Request) {
	doc, admin := h.svc.HomeDocumentFor(callerFrom(r))
	w.Header().Set("Content-Type", "application/json-home")
	w.Header().Set("Cache-Control", "max-age=86400")
	w.Header().Set("Vary", "X-Roles, X-Auth-Token")
	if admin {
		w.Header().Set("Cache-Control", "private, max-age=86400")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc)
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
