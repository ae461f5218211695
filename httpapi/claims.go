package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

func (h *handler) createClaim(w http.ResponseWriter, r *http.Request) {
	q := newQuery(r)
	limit, e := q.integer("limit")
	if e != nil {
		writeError(w, e)
		return
	}
	wait, e := q.integer("wait")
	if e != nil {
		writeError(w, e)
		return
	}
	body, e := h.readCappedBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	p, e := h.svc.ParseClaimBody(body, false)
	if e != nil {
		writeError(w, e)
		return
	}
	p.Wait = wait
	name := queueName(r)
	res, e := h.svc.CreateClaim(r.Context(), callerFrom(r), name, limit, p)
	if e != nil {
		writeError(w, e)
		return
	}
	if res.ID == "" {
		noContent(w)
		return
	}
	w.Header().Set("Location", "/v2/queues/"+name+"/claims/"+res.ID)
	writeJSON(w, http.StatusCreated, map[string]any{"messages": renderMessages(name, res.Messages)})
}

func (h *handler) getClaim(w http.ResponseWriter, r *http.Request) {
	name := queueName(r)
	res, e := h.svc.GetClaim(r.Context(), callerFrom(r), name, chi.URLParam(r, "claim_id"))
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"age":      res.Age,
		"ttl":      res.TTL,
		"href":     "/v2/queues/" + name + "/claims/" + res.ID,
		"messages": renderMessages(name, res.Messages),
	})
}

func (h *handler) renewClaim(w http.ResponseWriter, r *http.Request) {
	body, e := h.readCappedBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	p, e := h.svc.ParseClaimBody(body, true)
	if e != nil {
		writeError(w, e)
		return
	}
	if e := h.svc.RenewClaim(r.Context(), callerFrom(r), queueName(r), chi.URLParam(r, "claim_id"), p); e != nil {
		writeError(w, e)
		return
	}
	noContent(w)
}

func (h *handler) releaseClaim(w http.ResponseWriter, r *http.Request) {
	if e := h.svc.ReleaseClaim(r.Context(), callerFrom(r), queueName(r), chi.URLParam(r, "claim_id")); e != nil {
		writeError(w, e)
		return
	}
	noContent(w)
}
