package raftnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// The channel between pools (docs/pools.md). A pool is a Raft group of
// this service; nodes of other pools are not members of this node's
// configuration, so the internal routes under poolPathPrefix admit them:
// with peer TLS, any node certificate of the deployment's CA whose name
// the request claims (authorize). Every other internal route stays
// member-only.

// poolPathPrefix is the prefix of the internal routes other pools may use.
const poolPathPrefix = "/internal/v1/pool/"

const pathPoolIdentity = poolPathPrefix + "identity"

// GroupIdentity is what a node tells another pool about its Raft group.
type GroupIdentity struct {
	Node    string   `json:"node"`    // the answering node's id
	Members []Member `json:"members"` // the group's configuration
}

// ErrGroupUnreachable means no node at the given addresses answered as a
// member of a Raft group.
var ErrGroupUnreachable = errors.New("raftnode: no member of the group answered")

func (n *Node) handlePoolIdentity(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(GroupIdentity{Node: n.cfg.NodeID, Members: n.Members()})
}

// ProbeGroup asks the nodes at addrs in turn for their group's identity
// and returns the first answer from a node that has a configuration. The
// nodes may belong to another pool: the channel is the authenticated
// node-to-node one (peer TLS when configured).
func (n *Node) ProbeGroup(ctx context.Context, addrs []string) (GroupIdentity, error) {
	var reasons []string
	for _, addr := range addrs {
		ans, err := n.call(ctx, addr, http.MethodGet, pathPoolIdentity, nil)
		if err == nil && ans.status != http.StatusOK {
			err = fmt.Errorf("answered %d: %s", ans.status, strings.TrimSpace(string(ans.body)))
		}
		var id GroupIdentity
		if err == nil {
			err = json.Unmarshal(ans.body, &id)
		}
		if err == nil && len(id.Members) == 0 {
			err = errors.New("the node belongs to no group yet")
		}
		if err == nil {
			return id, nil
		}
		reasons = append(reasons, fmt.Sprintf("%s: %v", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return GroupIdentity{}, fmt.Errorf("%w (%s)", ErrGroupUnreachable, strings.Join(reasons, "; "))
}

// ErrNotPoolPath refuses a CallGroup outside the pool routes.
var ErrNotPoolPath = errors.New("raftnode: not a pool route")

// CallGroup posts body to the pool route path on a node of another (or
// this) pool, trying addrs in turn from start (mod len(addrs)) until one
// answers; the answer is returned whatever its status. A node that cannot
// be reached is skipped only while nothing was sent to it: the error is
// ErrGroupUnreachable when no request left this node, and wraps
// ErrUnknownOutcome once one did and no answer came back (a broken
// connection, the deadline), because the call may have had an effect.
func (n *Node) CallGroup(ctx context.Context, addrs []string, start int, path string, body []byte) (status int, answer []byte, err error) {
	if !strings.HasPrefix(path, poolPathPrefix) {
		return 0, nil, fmt.Errorf("%w: %s", ErrNotPoolPath, path)
	}
	if len(addrs) == 0 {
		return 0, nil, ErrGroupUnreachable
	}
	var reasons []string
	for i := range addrs {
		addr := addrs[(start+i)%len(addrs)]
		ans, err := n.call(ctx, addr, http.MethodPost, path, body)
		if err == nil {
			return ans.status, ans.body, nil
		}
		if !errors.Is(err, errNotSent) {
			return 0, nil, fmt.Errorf("%w: %s on %s: %w", ErrUnknownOutcome, path, addr, err)
		}
		reasons = append(reasons, err.Error())
		if ctx.Err() != nil {
			break
		}
	}
	return 0, nil, fmt.Errorf("%w (%s)", ErrGroupUnreachable, strings.Join(reasons, "; "))
}

// PoolHandler registers h for a pool route (poolPathPrefix + name), which
// nodes of every pool of the deployment may call.
func (n *Node) PoolHandler(name string, h http.Handler) {
	n.HandleInternal("POST "+poolPathPrefix+name, h)
}
