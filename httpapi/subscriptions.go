package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

func subscriptionID(r *http.Request) string { return chi.URLParam(r, "subscription_id") }

func (h *handler) createSubscription(w http.ResponseWriter, r *http.Request) {
	body, e := h.readCappedBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	c := callerFrom(r)
	name := queueName(r)
	location := collection(c) + "/" + name + "/subscriptions"
	res, e := h.svc.CreateSubscription(r.Context(), c, name, body)
	if e != nil {
		if e.Status == http.StatusConflict {
			w.Header().Set("Location", location+"/"+res.ID)
		}
		writeError(w, e)
		return
	}
	w.Header().Set("Location", location)
	writeJSON(w, http.StatusCreated, map[string]string{"subscription_id": res.ID})
}

func (h *handler) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	q := newQuery(r)
	limit, e := q.integer("limit")
	if e != nil {
		writeError(w, e)
		return
	}
	marker, _ := q.str("marker")
	c := callerFrom(r)
	name := queueName(r)
	list, e := h.svc.ListSubscriptions(r.Context(), c, name, marker, limit)
	if e != nil {
		writeError(w, e)
		return
	}
	docs := list.Subscriptions
	links := []link{}
	if len(docs) > 0 {
		var lq linkQuery
		lq.add("limit", itoa(list.Limit))
		lq.add("marker", docs[len(docs)-1].ID)
		links = append(links, link{Rel: "next", Href: collection(c) + "/" + name + "/subscriptions?" + lq.String()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"subscriptions": docs, "links": links})
}

func (h *handler) getSubscription(w http.ResponseWriter, r *http.Request) {
	sub, e := h.svc.GetSubscription(r.Context(), callerFrom(r), queueName(r), subscriptionID(r))
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, sub)
}

func (h *handler) updateSubscription(w http.ResponseWriter, r *http.Request) {
	body, e := h.readCappedBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	if e := h.svc.UpdateSubscription(r.Context(), callerFrom(r), queueName(r), subscriptionID(r), body); e != nil {
		writeError(w, e)
		return
	}
	w.Header().Set("Location", r.URL.Path)
	noContent(w)
}

func (h *handler) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	if e := h.svc.DeleteSubscription(r.Context(), callerFrom(r), queueName(r), subscriptionID(r)); e != nil {
		writeError(w, e)
		return
	}
	noContent(w)
}

func (h *handler) confirmSubscription(w http.ResponseWriter, r *http.Request) {
	body, e := h.readCappedBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	if e := h.svc.ConfirmSubscription(r.Context(), callerFrom(r), queueName(r), subscriptionID(r), body); e != nil {
		writeError(w, e)
		return
	}
	w.Header().Set("Location", r.URL.Path)
	noContent(w)
}
