package raftnode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// internalHandler serves the node-to-node API on the mux's internal tag.
// It is not reachable from the REST port.
func (n *Node) internalHandler() http.Handler {
	m := n.internalMux
	m.HandleFunc("POST /internal/v1/apply", n.handleApply)
	m.HandleFunc("POST /internal/v1/read-index", n.handleReadIndex)
	m.HandleFunc("POST /internal/v1/join", n.handleJoin)
	m.HandleFunc("POST /internal/v1/remove", n.handleRemove)
	m.HandleFunc("POST /internal/v1/transfer", n.handleTransfer)
	m.HandleFunc("GET /internal/v1/status", n.handleStatus)
	return m
}

// HandleInternal adds a route to the node-to-node API (for other packages'
// node-to-node calls, such as pushing a notification to the node that holds
// a websocket connection). pattern is an http.ServeMux pattern under
// "/internal/".
func (n *Node) HandleInternal(pattern string, h http.Handler) { n.internalMux.Handle(pattern, h) }

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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("raftnode: %s on %s: %w", path, id, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, out, err
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
// entry.
func (n *Node) Join(ctx context.Context, id, addr string) error {
	if id == "" || addr == "" {
		return errors.New("raftnode: join needs an id and an address")
	}
	if !n.IsLeader() {
		return n.forwardAdmin(ctx, "/internal/v1/join", joinRequest{ID: id, Address: addr})
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("raftnode: read configuration: %w", err)
	}
	for _, s := range cf.Configuration().Servers {
		sameID, sameAddr := s.ID == raft.ServerID(id), s.Address == raft.ServerAddress(addr)
		if sameID && sameAddr {
			if s.Suffrage == raft.Voter {
				return nil
			}
			break
		}
		if sameID || sameAddr {
			if err := n.raft.RemoveServer(s.ID, 0, 0).Error(); err != nil {
				return fmt.Errorf("raftnode: remove stale member %s: %w", s.ID, err)
			}
		}
	}
	if err := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 0).Error(); err != nil {
		return fmt.Errorf("raftnode: add voter %s at %s: %w", id, addr, err)
	}
	n.log.Info("member added", "id", id, "address", addr)
	return nil
}

// Remove removes a member. Called on a follower it is forwarded to the leader.
func (n *Node) Remove(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return n.forwardAdmin(ctx, "/internal/v1/remove", joinRequest{ID: id})
	}
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
		return fmt.Errorf("raftnode: remove %s: %w", id, err)
	}
	n.log.Info("member removed", "id", id)
	return nil
}

// TransferLeadership hands leadership to the member id (or to the most
// up-to-date follower if id is empty).
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return n.forwardAdmin(ctx, "/internal/v1/transfer", transferRequest{ID: id})
	}
	if id == "" {
		return n.raft.LeadershipTransfer().Error()
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID == raft.ServerID(id) {
			if err := n.raft.LeadershipTransferToServer(s.ID, s.Address).Error(); err != nil {
				return fmt.Errorf("raftnode: transfer leadership to %s: %w", id, err)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrUnknownMember, id)
}

// requestJoin asks the node at addr (any member) to add this node.
func (n *Node) requestJoin(ctx context.Context, addr, id, advertise string) error {
	return n.postInternal(ctx, addr, "/internal/v1/join", joinRequest{ID: id, Address: advertise})
}

func (n *Node) forwardAdmin(ctx context.Context, path string, body any) error {
	for {
		_, addr := n.Leader()
		if addr == "" {
			if err := n.WaitForLeader(ctx); err != nil {
				return err
			}
			continue
		}
		err := n.postInternal(ctx, addr, path, body)
		if !errors.Is(err, errRetry) && !isDialError(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (n *Node) postInternal(ctx context.Context, addr, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("raftnode: %s on %s: %w", path, addr, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.Header.Get(headerOutcome) == "not-leader" {
		return fmt.Errorf("%w: %s is not the leader", errRetry, addr)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s", ErrUnknownMember, bytes.TrimSpace(msg))
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("raftnode: %s on %s: %s", path, addr, bytes.TrimSpace(msg))
	}
	return nil
}

func (n *Node) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.serveAdmin(w, func() error { return n.Join(r.Context(), req.ID, req.Address) })
}

func (n *Node) handleRemove(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.serveAdmin(w, func() error { return n.Remove(r.Context(), req.ID) })
}

func (n *Node) handleTransfer(w http.ResponseWriter, r *http.Request) {
	var req transferRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.serveAdmin(w, func() error { return n.TransferLeadership(r.Context(), req.ID) })
}

// serveAdmin runs a leader-only change; a node that is not the leader
// answers "not-leader" so the caller retries against the new leader.
func (n *Node) serveAdmin(w http.ResponseWriter, fn func() error) {
	if !n.IsLeader() {
		notLeader(w)
		return
	}
	if err := fn(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			notLeader(w)
			return
		}
		status := http.StatusInternalServerError
		if errors.Is(err, ErrUnknownMember) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Status describes one node's view of Raft.
type Status struct {
	ID           string   `json:"id"`
	Address      string   `json:"address"`
	State        string   `json:"state"`
	Term         uint64   `json:"term"`
	LeaderID     string   `json:"leader_id"`
	LeaderAddr   string   `json:"leader_address"`
	LastIndex    uint64   `json:"last_index"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	LastContact  string   `json:"last_contact,omitempty"`
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
		AppliedIndex: n.fsm.AppliedIndex(), Reachable: true,
	}
	switch lc := n.raft.LastContact(); {
	case n.IsLeader():
		st.LastContact = "0s"
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.Address+"/internal/v1/status", nil)
	if err != nil {
		return Status{}, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return Status{}, err
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, 1<<20)
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(body, 200))
		return Status{}, fmt.Errorf("status call answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	var st Status
	if err := json.NewDecoder(body).Decode(&st); err != nil {
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
