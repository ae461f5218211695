package httpapi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/zaqar-raft/zaqar/internal/jsonx"
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

// memberRequest is a decoded administration body.
type memberRequest struct {
	ID, Address string
}

// maxMemberBody bounds an administration request body: a member id and an
// address fit in far less.
const maxMemberBody = 4096

// memberShape is what one administration route accepts.
type memberShape struct {
	example string // quoted in refusals
	address bool   // whether "address" may be given
}

var (
	joinShape     = memberShape{`{"id": "node4", "address": "host:7888"}`, true}
	removeShape   = memberShape{`{"id": "node4"}`, false}
	transferShape = memberShape{`{"id": "node2"}, or {} for any successor`, false}
)

// readMember decodes {"id": ..., "address": ...} strictly: at most
// maxMemberBody bytes of valid UTF-8 JSON with no integer beyond int64
// (jsonx), an object with no other keys ("address" only where the shape
// takes one), each present member a non-empty string. Anything else, an
// empty or blank body included, is a 400 quoting the shape's example. A
// blank body is not taken for {}: a request that lost its body on the way
// must not move leadership to "any successor".
func (h *handler) readMember(w http.ResponseWriter, r *http.Request, shape memberShape) (memberRequest, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxMemberBody+1))
	if err != nil {
		writeError(w, &service.Error{Status: http.StatusBadRequest, Title: service.TitleInvalidBody, Description: "The request body could not be read."})
		return memberRequest{}, false
	}
	if len(b) > maxMemberBody {
		writeError(w, &service.Error{Status: http.StatusRequestEntityTooLarge, Title: "Request body too large", Description: "An administration request body is at most 4096 bytes."})
		return memberRequest{}, false
	}
	if m, ok := parseMember(b); ok && (shape.address || m.Address == "") {
		return m, true
	}
	writeError(w, &service.Error{Status: http.StatusBadRequest, Title: service.TitleInvalidBody, Description: "Expected " + shape.example + "."})
	return memberRequest{}, false
}

// parseMember reports whether b is a JSON object whose only members are
// "id" and "address", each a non-empty string, and returns them.
func parseMember(b []byte) (memberRequest, bool) {
	var fields map[string]*string
	if jsonx.Check(b) != nil || jsonx.Kind(b) != '{' || json.Unmarshal(b, &fields) != nil {
		return memberRequest{}, false
	}
	var m memberRequest
	for k, v := range fields {
		if v == nil || *v == "" {
			return memberRequest{}, false
		}
		switch k {
		case "id":
			m.ID = *v
		case "address":
			m.Address = *v
		default:
			return memberRequest{}, false
		}
	}
	return m, true
}

func (h *handler) clusterJoin(w http.ResponseWriter, r *http.Request) {
	m, ok := h.readMember(w, r, joinShape)
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
	m, ok := h.readMember(w, r, removeShape)
	if !ok {
		return
	}
	if m.ID == "" {
		writeError(w, &service.Error{Status: http.StatusBadRequest, Title: service.TitleInvalidBody, Description: "id is required."})
		return
	}
	h.adminResult(w, h.cluster.Remove(r.Context(), m.ID))
}

// clusterTransfer moves leadership to the member named by "id", or, for
// the body {}, to a successor Raft picks.
func (h *handler) clusterTransfer(w http.ResponseWriter, r *http.Request) {
	m, ok := h.readMember(w, r, transferShape)
	if !ok {
		return
	}
	// Asking for the leader it already has is done, not an error.
	if m.ID != "" && m.ID == h.cluster.LocalStatus().LeaderID {
		noContent(w)
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

// Operations are the node's operator actions.
type Operations interface {
	// Drain stops the node taking client traffic (see server.Server.Drain).
	Drain(ctx context.Context) error
	// Draining reports whether the node is draining.
	Draining() bool
	// Backup streams a consistent snapshot of the state to w.
	Backup(ctx context.Context, w io.Writer) (uint64, error)
}

// HeaderBackupIndex carries the applied index a backup was taken at.
const HeaderBackupIndex = "X-Zaqar-Applied-Index"

// clusterBackup answers GET /admin/cluster/backup with a consistent,
// checksummed snapshot of the replicated state, streamed while traffic
// goes on. A stream cut short fails its checksum.
func (h *handler) clusterBackup(w http.ResponseWriter, r *http.Request) {
	if h.ops == nil {
		h.notImplemented(w, r)
		return
	}
	// A backup can take longer than a request's usual budget.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Hour)
	defer cancel()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="zaqar-backup.snap"`)
	if _, err := h.ops.Backup(ctx, w); err != nil {
		h.log.Error("backup failed", "err", err)
		// Headers may be out already; a truncated stream fails verification.
		panic(http.ErrAbortHandler)
	}
}

func (h *handler) nodeStatus(w http.ResponseWriter, _ *http.Request) {
	local := h.cluster.LocalStatus()
	draining := h.ops != nil && h.ops.Draining()
	writeJSON(w, http.StatusOK, map[string]any{"id": local.ID, "state": local.State, "draining": draining})
}

// nodeDrain answers POST /admin/node/drain.
func (h *handler) nodeDrain(w http.ResponseWriter, r *http.Request) {
	if h.ops == nil {
		h.notImplemented(w, r)
		return
	}
	h.adminResult(w, h.ops.Drain(r.Context()))
}

// refuseWhileDraining answers client requests with 503 once the node is
// draining; administration and metrics stay available.
func (h *handler) refuseWhileDraining(next http.Handler) http.Handler {
	if h.ops == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.ops.Draining() && !strings.HasPrefix(r.URL.Path, "/admin/") && r.URL.Path != "/metrics" {
			w.Header().Set("Retry-After", "1")
			writeError(w, &service.Error{Status: http.StatusServiceUnavailable, Title: service.TitleServiceUnavailable,
				Description: "This node is draining before it stops. Please use another node."})
			return
		}
		next.ServeHTTP(w, r)
	})
}
