package httpapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/service"
)

// clusterStatus answers GET /admin/cluster: this node's view and every
// member's status.
func (h *handler) clusterStatus(w http.ResponseWriter, r *http.Request) {
	local := h.cluster.LocalStatus()
	writeJSON(w, http.StatusOK, map[string]any{
		"node":    local.ID,
		"leader":  local.LeaderID,
		"members": local.Members,
		"nodes":   h.cluster.ClusterStatus(r.Context()),
	})
}

// clusterDigest answers GET /admin/cluster/digest: this node's applied
// index and the SHA-256 digest of its replicated state at that index. Equal
// indexes with equal digests mean byte-identical replicas.
func (h *handler) clusterDigest(w http.ResponseWriter, _ *http.Request) {
	if h.digest == nil {
		h.notImplemented(w, nil)
		return
	}
	applied, d, err := h.digest()
	if err != nil {
		writeError(w, &service.Error{Status: http.StatusServiceUnavailable, Title: service.TitleServiceUnavailable, Description: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"applied_index": applied, "digest": hex.EncodeToString(d[:])})
}

type memberRequest struct {
	ID      string `json:"id"`
	Address string `json:"address"`
}

func (h *handler) readMember(w http.ResponseWriter, r *http.Request) (memberRequest, bool) {
	var m memberRequest
	b, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		writeError(w, &service.Error{Status: http.StatusBadRequest, Title: service.TitleInvalidBody, Description: "Expected {\"id\": ..., \"address\": ...}."})
		return m, false
	}
	return m, true
}

func (h *handler) clusterJoin(w http.ResponseWriter, r *http.Request) {
	m, ok := h.readMember(w, r)
	if !ok {
		return
	}
	if m.ID == "" || m.Address == "" {
		writeError(w, &service.Error{Status: http.StatusBadRequest, Title: service.TitleInvalidBody, Description: "Both id and address are required."})
		return
	}
	h.adminResult(w, h.cluster.Join(r.Context(), m.ID, m.Address))
}

func (h *handler) clusterRemove(w http.ResponseWriter, r *http.Request) {
	m, ok := h.readMember(w, r)
	if !ok {
		return
	}
	if m.ID == "" {
		writeError(w, &service.Error{Status: http.StatusBadRequest, Title: service.TitleInvalidBody, Description: "id is required."})
		return
	}
	h.adminResult(w, h.cluster.Remove(r.Context(), m.ID))
}

func (h *handler) clusterTransfer(w http.ResponseWriter, r *http.Request) {
	m, ok := h.readMember(w, r)
	if !ok {
		return
	}
	h.adminResult(w, h.cluster.TransferLeadership(r.Context(), m.ID))
}

func (h *handler) adminResult(w http.ResponseWriter, err error) {
	if errors.Is(err, raftnode.ErrUnknownMember) {
		writeError(w, &service.Error{Status: http.StatusNotFound, Title: service.TitleNotFound, Description: err.Error()})
		return
	}
	if err != nil {
		writeError(w, &service.Error{Status: http.StatusServiceUnavailable, Title: service.TitleServiceUnavailable, Description: err.Error()})
		return
	}
	noContent(w)
}
