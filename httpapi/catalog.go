package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/zaqar-raft/zaqar/service"
)

// The pool and flavor admin API (contract §12, docs/pools.md).

const (
	poolsPath   = "/v2/pools"
	flavorsPath = "/v2/flavors"
)

// poolItem is a pool document with its href.
type poolItem struct {
	service.PoolDoc
	Href string `json:"href"`
}

// flavorItem is a flavor document with its href.
type flavorItem struct {
	service.FlavorDoc
	Href string `json:"href"`
}

// listing reads the limit, marker and detailed parameters of a catalog
// listing.
func listing(r *http.Request) (limit *int, marker string, detailed bool, e *service.Error) {
	q := newQuery(r)
	if limit, e = q.integer("limit"); e != nil {
		return nil, "", false, e
	}
	if detailed, e = q.boolean("detailed"); e != nil {
		return nil, "", false, e
	}
	marker, _ = q.str("marker")
	return limit, marker, detailed, nil
}

// writePage answers a page of a catalog listing: {key: items, "links":
// [next]}, where item renders one document and names it; links is []
// when the page is empty.
func writePage[D any](w http.ResponseWriter, key, path string, limit int, detailed bool, docs []D, item func(D) (any, string)) {
	items := make([]any, len(docs))
	last := ""
	for i, d := range docs {
		items[i], last = item(d)
	}
	links := []link{}
	if last != "" {
		var lq linkQuery
		lq.add("limit", itoa(limit))
		lq.add("marker", last)
		if detailed {
			lq.add("detailed", "true")
		}
		links = append(links, link{Rel: "next", Href: path + "?" + lq.String()})
	}
	writeJSON(w, http.StatusOK, map[string]any{key: items, "links": links})
}

func (h *handler) listPools(w http.ResponseWriter, r *http.Request) {
	limit, marker, detailed, e := listing(r)
	if e != nil {
		writeError(w, e)
		return
	}
	list, e := h.svc.ListPools(r.Context(), marker, limit, detailed)
	if e != nil {
		writeError(w, e)
		return
	}
	writePage(w, "pools", poolsPath, list.Limit, detailed, list.Pools, func(p service.PoolDoc) (any, string) {
		return poolItem{p, poolsPath + "/" + p.Name}, p.Name
	})
}

func (h *handler) createPool(w http.ResponseWriter, r *http.Request) {
	body, e := h.readCappedBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	name := chi.URLParam(r, "pool")
	if e := h.svc.CreatePool(r.Context(), name, body); e != nil {
		writeError(w, e)
		return
	}
	w.Header().Set("Location", poolsPath+"/"+name)
	w.WriteHeader(http.StatusCreated)
}

func (h *handler) getPool(w http.ResponseWriter, r *http.Request) {
	detailed, e := newQuery(r).boolean("detailed")
	if e != nil {
		writeError(w, e)
		return
	}
	name := chi.URLParam(r, "pool")
	p, e := h.svc.GetPool(r.Context(), name, detailed)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, poolItem{p, poolsPath + "/" + name})
}

func (h *handler) updatePool(w http.ResponseWriter, r *http.Request) {
	body, e := h.readCappedBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	name := chi.URLParam(r, "pool")
	p, e := h.svc.UpdatePool(r.Context(), name, body)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, poolItem{p, poolsPath + "/" + name})
}

func (h *handler) deletePool(w http.ResponseWriter, r *http.Request) {
	if e := h.svc.DeletePool(r.Context(), chi.URLParam(r, "pool")); e != nil {
		writeError(w, e)
		return
	}
	noContent(w)
}

func (h *handler) listFlavors(w http.ResponseWriter, r *http.Request) {
	limit, marker, detailed, e := listing(r)
	if e != nil {
		writeError(w, e)
		return
	}
	list, e := h.svc.ListFlavors(r.Context(), callerFrom(r), marker, limit, detailed)
	if e != nil {
		writeError(w, e)
		return
	}
	writePage(w, "flavors", flavorsPath, list.Limit, detailed, list.Flavors, func(f service.FlavorDoc) (any, string) {
		return flavorItem{f, flavorsPath + "/" + f.Name}, f.Name
	})
}

func (h *handler) createFlavor(w http.ResponseWriter, r *http.Request) {
	body, e := h.readCappedBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	name := chi.URLParam(r, "flavor")
	if e := h.svc.PutFlavor(r.Context(), callerFrom(r), name, body); e != nil {
		writeError(w, e)
		return
	}
	w.Header().Set("Location", flavorsPath+"/"+name)
	w.WriteHeader(http.StatusCreated)
}

func (h *handler) getFlavor(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "flavor")
	f, e := h.svc.GetFlavor(r.Context(), callerFrom(r), name)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, flavorItem{f, flavorsPath + "/" + name})
}

func (h *handler) updateFlavor(w http.ResponseWriter, r *http.Request) {
	body, e := h.readCappedBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	name := chi.URLParam(r, "flavor")
	f, e := h.svc.UpdateFlavor(r.Context(), callerFrom(r), name, body)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, flavorItem{f, flavorsPath + "/" + name})
}

func (h *handler) deleteFlavor(w http.ResponseWriter, r *http.Request) {
	if e := h.svc.DeleteFlavor(r.Context(), callerFrom(r), chi.URLParam(r, "flavor")); e != nil {
		writeError(w, e)
		return
	}
	noContent(w)
}
