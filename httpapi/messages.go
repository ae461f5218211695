package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/zaqar-raft/zaqar/service"
)

func itoa(n int) string { return strconv.Itoa(n) }

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (h *handler) postMessages(w http.ResponseWriter, r *http.Request) {
	body, e := readBody(r, h.svc.Limits().MaxMessagesPostSize)
	if e != nil {
		writeError(w, e)
		return
	}
	name := queueName(r)
	msgIDs, e := h.svc.PostMessages(r.Context(), callerFrom(r), name, body)
	if e != nil {
		writeError(w, e)
		return
	}
	base := collection(callerFrom(r)) + "/" + name + "/messages"
	resources := make([]string, len(msgIDs))
	for i, id := range msgIDs {
		resources[i] = base + "/" + id
	}
	w.Header().Set("Location", base+"?ids="+strings.Join(msgIDs, ","))
	writeJSON(w, http.StatusCreated, map[string]any{"resources": resources})
}

func (h *handler) getMessages(w http.ResponseWriter, r *http.Request) {
	q := newQuery(r)
	name := queueName(r)
	if q.has("ids") {
		msgs, e := h.svc.GetMessages(r.Context(), callerFrom(r), name, q.list("ids"))
		if e != nil {
			writeError(w, e)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"messages": renderMessages(name, msgs)})
		return
	}
	var o service.MessageListOptions
	var e *service.Error
	if o.Limit, e = q.integer("limit"); e != nil {
		writeError(w, e)
		return
	}
	limit := o.Limit
	o.Marker, _ = q.str("marker")
	if o.Echo, e = q.boolean("echo"); e != nil {
		writeError(w, e)
		return
	}
	if o.IncludeClaimed, e = q.boolean("include_claimed"); e != nil {
		writeError(w, e)
		return
	}
	if o.IncludeDelayed, e = q.boolean("include_delayed"); e != nil {
		writeError(w, e)
		return
	}
	list, e := h.svc.ListMessages(r.Context(), callerFrom(r), name, o)
	if e != nil {
		writeError(w, e)
		return
	}
	links := []link{}
	if len(list.Messages) > 0 {
		var lq linkQuery
		if limit != nil {
			lq.add("limit", itoa(*limit))
		}
		if q.has("echo") {
			lq.add("echo", boolStr(o.Echo))
		}
		if q.has("include_claimed") {
			lq.add("include_claimed", boolStr(o.IncludeClaimed))
		}
		if q.has("include_delayed") || list.DelayedForced {
			lq.add("include_delayed", boolStr(o.IncludeDelayed || list.DelayedForced))
		}
		lq.add("marker", list.Marker)
		links = append(links, link{Rel: "next", Href: "/v2/queues/" + name + "/messages?" + lq.String()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": renderMessages(name, list.Messages), "links": links})
}

func (h *handler) deleteMessages(w http.ResponseWriter, r *http.Request) {
	q := newQuery(r)
	var req service.BulkDelete
	if q.has("ids") {
		req.IDs = q.list("ids")
	}
	if q.has("claim_ids") {
		req.ClaimIDs = q.list("claim_ids")
	}
	pop, e := q.integer("pop")
	if e != nil {
		writeError(w, e)
		return
	}
	if pop != nil {
		req.Pop, req.HasPop = *pop, true
	}
	popped, e := h.svc.DeleteMessages(r.Context(), callerFrom(r), queueName(r), req)
	if e != nil {
		writeError(w, e)
		return
	}
	if req.HasPop {
		writeJSON(w, http.StatusOK, map[string]any{"messages": popped})
		return
	}
	noContent(w)
}

func (h *handler) getMessage(w http.ResponseWriter, r *http.Request) {
	name := queueName(r)
	m, e := h.svc.GetMessage(r.Context(), callerFrom(r), name, chi.URLParam(r, "message_id"))
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, renderMessage(name, m))
}

func (h *handler) deleteMessage(w http.ResponseWriter, r *http.Request) {
	claimID, _ := newQuery(r).str("claim_id")
	if e := h.svc.DeleteMessage(r.Context(), callerFrom(r), queueName(r), chi.URLParam(r, "message_id"), claimID); e != nil {
		writeError(w, e)
		return
	}
	noContent(w)
}
