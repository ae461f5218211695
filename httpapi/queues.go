package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"

	"github.com/go-chi/chi/v5"

	"github.com/zaqar-raft/zaqar/service"
)

// readBody reads at most limit+1 bytes of the body: enough for the service
// to tell an oversized body from one at the limit, never more.
func readBody(r *http.Request, limit int) ([]byte, *service.Error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		return nil, &service.Error{Status: http.StatusBadRequest, Title: service.TitleInvalidBody, Description: "Request body could not be read."}
	}
	return b, nil
}

// readCappedBody reads a body that Zaqar leaves uncapped, refusing one over
// the service's general body limit with 413.
func (h *handler) readCappedBody(r *http.Request) ([]byte, *service.Error) {
	limit := h.svc.Limits().MaxBodyBytes
	b, e := readBody(r, limit)
	if e == nil && len(b) > limit {
		return nil, &service.Error{Status: http.StatusRequestEntityTooLarge, Title: "Request body too large", Description: "The request body exceeds the limit of this service."}
	}
	return b, e
}

// queueName is the {queue_name} (or, on topic routes, {topic_name}) segment.
func queueName(r *http.Request) string {
	if n := chi.URLParam(r, "queue_name"); n != "" {
		return n
	}
	return chi.URLParam(r, "topic_name")
}

func (h *handler) createQueue(w http.ResponseWriter, r *http.Request) {
	body, e := readBody(r, h.svc.Limits().MaxQueueMetadata)
	if e != nil {
		writeError(w, e)
		return
	}
	name := queueName(r)
	created, e := h.svc.CreateQueue(r.Context(), callerFrom(r), name, body)
	if e != nil {
		writeError(w, e)
		return
	}
	w.Header().Set("Location", collection(callerFrom(r))+"/"+name)
	if created {
		w.WriteHeader(http.StatusCreated)
		return
	}
	noContent(w)
}

func (h *handler) getQueue(w http.ResponseWriter, r *http.Request) {
	info, e := h.svc.GetQueue(r.Context(), callerFrom(r), queueName(r))
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, h.svc.DefaultsFor(callerFrom(r).Namespace, info.Metadata))
}

func (h *handler) headQueue(w http.ResponseWriter, r *http.Request) {
	info, e := h.svc.GetQueue(r.Context(), callerFrom(r), queueName(r))
	switch {
	case e != nil:
		w.WriteHeader(e.Status)
	case info.Exists:
		noContent(w)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// PatchMediaType is the only Content-Type queue PATCH accepts.
const PatchMediaType = "application/openstack-messaging-v2.0-json-patch"

func (h *handler) patchQueue(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Content-Type") != PatchMediaType {
		w.Header().Set("Accept-Patch", PatchMediaType)
		writeError(w, &service.Error{Status: http.StatusUnsupportedMediaType, Title: "415 Unsupported Media Type",
			Description: "Accepted media type for PATCH: {'Accept-Patch': '" + PatchMediaType + "'}."})
		return
	}
	body, e := readBody(r, h.svc.Limits().MaxQueueMetadata)
	if e != nil {
		writeError(w, e)
		return
	}
	ops, e := h.svc.ParsePatch(body)
	if e != nil {
		writeError(w, e)
		return
	}
	meta, e := h.svc.PatchQueue(r.Context(), callerFrom(r), queueName(r), ops)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, h.svc.DefaultsFor(callerFrom(r).Namespace, meta))
}

func (h *handler) deleteQueue(w http.ResponseWriter, r *http.Request) {
	if e := h.svc.DeleteQueue(r.Context(), callerFrom(r), queueName(r)); e != nil {
		writeError(w, e)
		return
	}
	noContent(w)
}

type queueEntry struct {
	Name     string          `json:"name"`
	Href     string          `json:"href"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// listParams are the queue-list parameters that are not metadata filters.
var listParams = map[string]bool{"marker": true, "limit": true, "detailed": true, "name": true, "with_count": true}

func (h *handler) listQueues(w http.ResponseWriter, r *http.Request) {
	q := newQuery(r)
	var o service.QueueListOptions
	var e *service.Error
	o.Marker, _ = q.str("marker")
	o.Name, _ = q.str("name")
	if o.Limit, e = q.integer("limit"); e != nil {
		writeError(w, e)
		return
	}
	limit := o.Limit
	if o.Detailed, e = q.boolean("detailed"); e != nil {
		writeError(w, e)
		return
	}
	if o.WithCount, e = q.boolean("with_count"); e != nil {
		writeError(w, e)
		return
	}
	var filterKeys []string
	for k := range q.v {
		if v, ok := q.str(k); ok && !listParams[k] {
			if o.Filters == nil {
				o.Filters = map[string]string{}
			}
			o.Filters[k] = v
			filterKeys = append(filterKeys, k)
		}
	}
	sort.Strings(filterKeys)
	c := callerFrom(r)
	if c.Namespace == service.Topics {
		o.WithCount = false // topics have no count (contract §11)
	}
	list, e := h.svc.ListQueues(r.Context(), c, o)
	if e != nil {
		writeError(w, e)
		return
	}
	entries := make([]queueEntry, 0, len(list.Queues))
	for _, qs := range list.Queues {
		ent := queueEntry{Name: qs.Name, Href: collection(c) + "/" + qs.Name}
		if o.Detailed {
			ent.Metadata = h.svc.DefaultsFor(c.Namespace, qs.Metadata)
		}
		entries = append(entries, ent)
	}
	links := []link{}
	if len(entries) > 0 {
		var lq linkQuery
		if limit != nil {
			lq.add("limit", itoa(*limit))
		}
		if q.has("detailed") {
			lq.add("detailed", boolStr(o.Detailed))
		}
		if o.Name != "" {
			lq.add("name", o.Name)
		}
		if q.has("with_count") {
			lq.add("with_count", boolStr(o.WithCount))
		}
		for _, k := range filterKeys {
			lq.add(k, o.Filters[k])
		}
		lq.add("marker", entries[len(entries)-1].Name)
		links = append(links, link{Rel: "next", Href: collection(c) + "?" + lq.String()})
	}
	key := "queues"
	if c.Namespace == service.Topics {
		key = "topics"
	}
	resp := map[string]any{key: entries, "links": links}
	if o.WithCount && list.Count > 0 {
		resp["count"] = list.Count
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *handler) queueStats(w http.ResponseWriter, r *http.Request) {
	name := queueName(r)
	st, e := h.svc.Stats(r.Context(), callerFrom(r), name)
	if e != nil {
		writeError(w, e)
		return
	}
	msgs := map[string]any{"claimed": st.Claimed, "free": st.Total - st.Claimed, "total": st.Total}
	if st.Exists && callerFrom(r).Namespace == service.Topics {
		// A topic's messages are never claimed: its stats are a total.
		msgs = map[string]any{"total": st.Total}
	}
	if st.Total > 0 {
		base := collection(callerFrom(r))
		msgs["oldest"] = renderEdge(base, name, st.Oldest)
		msgs["newest"] = renderEdge(base, name, st.Newest)
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs})
}

func (h *handler) purgeQueue(w http.ResponseWriter, r *http.Request) {
	body, e := h.readCappedBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	if e := h.svc.PurgeQueue(r.Context(), callerFrom(r), queueName(r), body); e != nil {
		writeError(w, e)
		return
	}
	noContent(w)
}

func (h *handler) shareQueue(w http.ResponseWriter, r *http.Request) {
	body, e := h.readCappedBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	res, e := h.svc.Share(r.Context(), callerFrom(r), queueName(r), body)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
