package raftnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
)

// Paths of the internal API.
const (
	pathApply     = "/internal/v1/apply"
	pathReadIndex = "/internal/v1/read-index"
	pathJoin      = "/internal/v1/join"
	pathRemove    = "/internal/v1/remove"
	pathTransfer  = "/internal/v1/transfer"
	pathStatus    = "/internal/v1/status"
)

// internalHandler serves the node-to-node API on the mux's internal tag.
// It is not reachable from the REST port.
func (n *Node) internalHandler() http.Handler {
	m := n.internalMux
	m.HandleFunc("POST "+pathApply, n.handleApply)
	m.HandleFunc("POST "+pathReadIndex, n.handleReadIndex)
	m.HandleFunc("POST "+pathJoin, n.handleJoin)
	m.HandleFunc("POST "+pathRemove, n.handleRemove)
	m.HandleFunc("POST "+pathTransfer, n.handleTransfer)
	m.HandleFunc("GET "+pathStatus, n.handleStatus)
	m.HandleFunc("GET "+pathPoolIdentity, n.handlePoolIdentity)
	return n.authorize(m)
}

// HandleInternal adds a route to the node-to-node API (for other packages'
// node-to-node calls, such as pushing a notification to the node that holds
// a websocket connection). pattern is an http.ServeMux pattern under
// "/internal/". Callers are authorised as for every internal route: with
// peer TLS, only members whose certificate names them.
func (n *Node) HandleInternal(pattern string, h http.Handler) { n.internalMux.Handle(pattern, h) }

// authorize admits internal requests. Without peer TLS it admits every
// request: whoever reaches the node port is trusted (docs/security.md).
// With peer TLS the sender's certificate (verified by the mux) names it,
// and:
//
//   - the node id the request claims (X-Raftnode-Node) must be that name;
//   - the sender must be a member of the Raft configuration, or this node
//     must have none yet (a node about to be bootstrapped or joined);
//   - a join may come from a non-member only for itself (handleJoin);
//   - the pool routes (poolPathPrefix) serve nodes of other pools, which
//     hold certificates of the same CA but are not members here.
func (n *Node) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.cfg.PeerTLS == nil {
			next.ServeHTTP(w, r)
			return
		}
		peer := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			peer = tlsconf.PeerName(r.TLS.PeerCertificates[0])
		}
		claim := r.Header.Get(headerNode)
		switch {
		case peer == "":
			n.refusePeer(w, r, "no client certificate")
		case claim != peer:
			n.refusePeer(w, r, fmt.Sprintf("the request claims to come from %q but the certificate names %q", claim, peer))
		case r.URL.Path != pathJoin && !strings.HasPrefix(r.URL.Path, poolPathPrefix) && !n.admits(peer):
			n.refusePeer(w, r, fmt.Sprintf("%q is not a member", peer))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (n *Node) refusePeer(w http.ResponseWriter, r *http.Request, why string) {
	n.log.Warn("node port: internal request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", why)
	http.Error(w, why, http.StatusForbidden)
}

// admits reports whether peer may use the node port: it is a member of the
// configuration, or this node has no configuration yet.
func (n *Node) admits(peer string) bool {
	r := n.liveRaft.Load()
	if r == nil {
		return true
	}
	cf := r.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	servers := cf.Configuration().Servers
	if len(servers) == 0 {
		return true
	}
	for _, s := range servers {
		if string(s.ID) == peer {
			return true
		}
	}
	return false
}

// memberAt returns the id the configuration gives the node at addr, or "".
func (n *Node) memberAt(addr string) string {
	r := n.liveRaft.Load()
	if r == nil {
		return ""
	}
	cf := r.GetConfiguration()
	if cf.Error() != nil {
		return ""
	}
	for _, s := range cf.Configuration().Servers {
		if string(s.Address) == addr {
			return string(s.ID)
		}
	}
	return ""
}

// ErrNoSuchNode means a node id is not in the Raft configuration.
var ErrNoSuchNode = errors.New("raftnode: no such node")

// PostToNode POSTs body to path on the member with id over the internal
// channel and returns the status and response body.
func (n *Node) PostToNode(ctx context.Context, id, path string, body []byte) (int, []byte, error) {
	addr := ""
	for _, m := range n.Members() {
		if m.ID == id {
			addr = m.Address
		}
	}
	if addr == "" {
		return 0, nil, fmt.Errorf("%w: %q", ErrNoSuchNode, id)
	}
	ans, err := n.call(ctx, addr, http.MethodPost, path, body)
	if err != nil {
		return 0, nil, err
	}
	return ans.status, ans.body, nil
}

type joinRequest struct {
	ID      string `json:"id"`
	Address string `json:"address"`
}

type transferRequest struct {
	ID string `json:"id,omitempty"`
}

// Join adds a voter. Called on a follower it is forwarded to the leader.
// Joining again with the same id and address is a no-op; a node that comes
// back under a known id or address with the other changed replaces the old
// entry. With peer TLS the leader first checks that the node at addr holds
// a certificate for id.
func (n *Node) Join(ctx context.Context, id, addr string) error {
	if id == "" || addr == "" {
		return errors.New("raftnode: join needs an id and an address")
	}
	return n.onLeader(ctx,
		func() error { return n.join(ctx, id, addr) },
		func(leader string) error {
			return n.callAdmin(ctx, leader, pathJoin, joinRequest{ID: id, Address: addr})
		})
}

// join is Join on the leader.
func (n *Node) join(ctx context.Context, id, addr string) error {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("raftnode: read configuration: %w", err)
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID == raft.ServerID(id) && s.Address == raft.ServerAddress(addr) && s.Suffrage == raft.Voter {
			return nil
		}
	}
	if err := n.dialer.verifyIdentity(ctx, addr, id); err != nil {
		return err
	}
	for _, s := range cf.Configuration().Servers {
		sameID, sameAddr := s.ID == raft.ServerID(id), s.Address == raft.ServerAddress(addr)
		if sameID && sameAddr {
			break
		}
		if sameID || sameAddr {
			if err := n.raft.RemoveServer(s.ID, 0, 0).Error(); err != nil {
				return fmt.Errorf("raftnode: remove stale member %s: %w", s.ID, leaderError(err))
			}
		}
	}
	if err := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 0).Error(); err != nil {
		return fmt.Errorf("raftnode: add voter %s at %s: %w", id, addr, leaderError(err))
	}
	n.log.Info("member added", "id", id, "address", addr)
	return nil
}

// leaderError marks the membership errors that mean "this node no longer
// leads" as retryable: hashicorp/raft refuses them before changing the
// configuration.
func leaderError(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return fmt.Errorf("%w: %w", errRetry, err)
	}
	return err
}

// Remove removes a member. Called on a follower it is forwarded to the leader.
func (n *Node) Remove(ctx context.Context, id string) error {
	return n.onLeader(ctx,
		func() error { return n.remove(id) },
		func(leader string) error { return n.callAdmin(ctx, leader, pathRemove, joinRequest{ID: id}) })
}

func (n *Node) remove(id string) error {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("raftnode: read configuration: %w", err)
	}
	found := false
	for _, s := range cf.Configuration().Servers {
		found = found || s.ID == raft.ServerID(id)
	}
	if !found {
		return fmt.Errorf("%w: %q", ErrUnknownMember, id)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, 0).Error(); err != nil {
		return fmt.Errorf("raftnode: remove %s: %w", id, leaderError(err))
	}
	n.log.Info("member removed", "id", id)
	return nil
}

// TransferLeadership hands leadership to the member id (or to the most
// up-to-date follower if id is empty).
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	return n.onLeader(ctx,
		func() error { return n.transfer(id) },
		func(leader string) error { return n.callAdmin(ctx, leader, pathTransfer, transferRequest{ID: id}) })
}

func (n *Node) transfer(id string) error {
	if id == "" {
		return leaderError(n.raft.LeadershipTransfer().Error())
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID == raft.ServerID(id) {
			if err := n.raft.LeadershipTransferToServer(s.ID, s.Address).Error(); err != nil {
				return fmt.Errorf("raftnode: transfer leadership to %s: %w", id, leaderError(err))
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrUnknownMember, id)
}

// callAdmin sends a membership change to the node at addr.
func (n *Node) callAdmin(ctx context.Context, addr, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ans, err := n.call(ctx, addr, http.MethodPost, path, b)
	return classify(addr, ans, err, mayAffect)
}

// decodeAdmin reads a membership request body strictly.
func decodeAdmin(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxPeerBody))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func (n *Node) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if err := decodeAdmin(r, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if n.cfg.PeerTLS != nil {
		// authorize has checked that the claim is the certificate's name.
		if sender := r.Header.Get(headerNode); req.ID != sender && !n.admits(sender) {
			n.refusePeer(w, r, fmt.Sprintf("%q is not a member and may only join as itself, not as %q", sender, req.ID))
			return
		}
	}
	// A joining node may ask any member: a follower forwards the request,
	// and the leader checks the joiner's identity itself.
	n.answerAdmin(w, n.Join(r.Context(), req.ID, req.Address))
}

func (n *Node) handleRemove(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if err := decodeAdmin(r, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.serveAdmin(w, func() error { return n.remove(req.ID) })
}

func (n *Node) handleTransfer(w http.ResponseWriter, r *http.Request) {
	var req transferRequest
	if err := decodeAdmin(r, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.serveAdmin(w, func() error { return n.transfer(req.ID) })
}

// serveAdmin runs a leader-only change; a node that is not the leader
// answers "not-leader" so the caller retries against the new leader.
func (n *Node) serveAdmin(w http.ResponseWriter, fn func() error) {
	if !n.IsLeader() {
		notLeader(w)
		return
	}
	n.answerAdmin(w, fn())
}

// answerAdmin answers a membership request with the outcome of the change.
func (n *Node) answerAdmin(w http.ResponseWriter, err error) {
	switch {
	case err == nil:
		w.WriteHeader(http.StatusOK)
	case errors.Is(err, errRetry), errors.Is(err, raft.ErrLeadershipLost):
		notLeader(w)
	case errors.Is(err, ErrUnknownMember):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, ErrPeerRefused):
		http.Error(w, err.Error(), http.StatusForbidden)
	case errors.Is(err, ErrNoLeader):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// Status describes one node's view of Raft.
type Status struct {
	ID           string `json:"id"`
	Address      string `json:"address"`
	State        string `json:"state"`
	Term         uint64 `json:"term"`
	LeaderID     string `json:"leader_id"`
	LeaderAddr   string `json:"leader_address"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	LastContact  string `json:"last_contact,omitempty"`
	// CommandLevel is the highest command type the node applies;
	// ClusterLevel (on the leader) the lowest among the voters, the
	// highest type the leader proposes: a rolling upgrade is complete when
	// it equals the new build's level.
	CommandLevel uint8    `json:"command_level,omitempty"`
	ClusterLevel uint8    `json:"cluster_level,omitempty"`
	Members      []Member `json:"members,omitempty"`
	Reachable    bool     `json:"reachable"`
	Error        string   `json:"error,omitempty"`
}

// Member is one entry of the Raft configuration.
type Member struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
}

// LocalStatus returns this node's view.
func (n *Node) LocalStatus() Status {
	lid, laddr := n.Leader()
	st := Status{
		ID: n.cfg.NodeID, Address: n.cfg.Advertise, State: n.raft.State().String(),
		Term: n.raft.CurrentTerm(), LeaderID: lid, LeaderAddr: laddr,
		LastIndex: n.raft.LastIndex(), CommitIndex: n.raft.CommitIndex(),
		AppliedIndex: n.fsm.AppliedIndex(), Reachable: true, CommandLevel: uint8(n.level()),
	}
	switch lc := n.raft.LastContact(); {
	case n.IsLeader():
		st.LastContact = "0s"
		st.ClusterLevel = uint8(n.gate.clusterLevel(n.voterIDs()))
	case !lc.IsZero():
		st.LastContact = time.Since(lc).Round(time.Millisecond).String()
	default:
		st.LastContact = "never"
	}
	st.Members = n.Members()
	return st
}

// Members returns the current Raft configuration.
func (n *Node) Members() []Member {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return nil
	}
	var out []Member
	for _, s := range cf.Configuration().Servers {
		out = append(out, Member{ID: string(s.ID), Address: string(s.Address), Suffrage: s.Suffrage.String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ClusterStatus asks every member for its status (in parallel, each with a
// short timeout). Unreachable members are reported, not skipped.
func (n *Node) ClusterStatus(ctx context.Context) []Status {
	members := n.Members()
	out := make([]Status, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		if m.ID == n.cfg.NodeID {
			out[i] = n.LocalStatus()
			continue
		}
		wg.Add(1)
		go func(i int, m Member) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			st, err := n.remoteStatus(cctx, m)
			if err != nil {
				st = Status{ID: m.ID, Address: m.Address, Error: err.Error()}
			}
			st.Members = nil
			out[i] = st
		}(i, m)
	}
	wg.Wait()
	for i := range out {
		if out[i].ID == n.cfg.NodeID {
			out[i].Members = nil
		}
	}
	return out
}

// remoteStatus asks member m for its status. Only a 200 answer carrying
// m's own id counts: anything else (an error page, another node now
// listening at that address, a body without a status) is an error, so the
// member's row says why instead of coming back blank.
func (n *Node) remoteStatus(ctx context.Context, m Member) (Status, error) {
	ans, err := n.call(ctx, m.Address, http.MethodGet, pathStatus, nil)
	if err != nil {
		return Status{}, err
	}
	if ans.status != http.StatusOK {
		msg := strings.TrimSpace(string(ans.body[:min(len(ans.body), 200)]))
		return Status{}, fmt.Errorf("status call answered %d %s: %s", ans.status, http.StatusText(ans.status), msg)
	}
	var st Status
	if err := json.Unmarshal(ans.body, &st); err != nil {
		return Status{}, fmt.Errorf("status call answered something that is not a status: %w", err)
	}
	if st.ID != m.ID {
		return Status{}, fmt.Errorf("the node at %s answered as %q, not %q", m.Address, st.ID, m.ID)
	}
	return st, nil
}

func (n *Node) handleStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(n.LocalStatus())
}

// HandOver moves leadership away from this node to a voter that answers,
// the most up-to-date first. Letting Raft pick the target can pick a member
// that is down (its replication state may look current), and that transfer
// fails. It does nothing if this node does not lead.
func (n *Node) HandOver(ctx context.Context) error {
	if !n.IsLeader() {
		return nil
	}
	voters := map[string]bool{}
	for _, m := range n.Members() {
		voters[m.ID] = m.Suffrage == "Voter"
	}
	var candidates []Status
	for _, st := range n.ClusterStatus(ctx) {
		if st.ID != n.cfg.NodeID && voters[st.ID] && st.Error == "" && st.Reachable {
			candidates = append(candidates, st)
		}
	}
	sort.SliceStable(candidates, func(i, j int) bool { return candidates[i].LastIndex > candidates[j].LastIndex })
	err := errors.New("raftnode: no other voter answers")
	for _, c := range candidates {
		if err = n.TransferLeadership(ctx, c.ID); err == nil || !n.IsLeader() {
			n.log.Info("leadership handed over", "to", c.ID)
			return nil
		}
		n.log.Warn("leadership transfer failed", "to", c.ID, "err", err)
	}
	return err
}
