package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
)

type nodeStatus struct {
	ID           string `json:"id"`
	Address      string `json:"address"`
	State        string `json:"state"`
	Term         uint64 `json:"term"`
	LeaderID     string `json:"leader_id"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	LastContact  string `json:"last_contact"`
	Error        string `json:"error"`
}

type clusterStatus struct {
	Node    string `json:"node"`
	Leader  string `json:"leader"`
	Members []struct {
		ID       string `json:"id"`
		Address  string `json:"address"`
		Suffrage string `json:"suffrage"`
	} `json:"members"`
	Nodes []nodeStatus `json:"nodes"`
}

// status prints the Raft group of the node at -addr: the members with
// each one's state, term, indexes and its lag behind the leader's commit
// index. Then, when the deployment has registered pools, every pool with
// its members (statusPools).
func (c *client) status(ctx context.Context, w io.Writer, endpoints []string) error {
	st, err := c.clusterStatus(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "asked %s; leader %s\n", st.Node, leaderOrNone(st.Leader))
	if err := writeMembers(w, "", st); err != nil {
		return err
	}
	return c.statusPools(ctx, w, st, endpoints)
}

// clusterStatus asks the node for its group's status (GET /admin/cluster).
func (c *client) clusterStatus(ctx context.Context) (clusterStatus, error) {
	var st clusterStatus
	b, err := c.do(ctx, http.MethodGet, "/admin/cluster", nil)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("unexpected answer: %w", err)
	}
	if len(st.Nodes) == 0 {
		return st, errors.New("the node reports no members")
	}
	return st, nil
}

func leaderOrNone(id string) string {
	if id == "" {
		return "(none)"
	}
	return id
}

// writeMembers prints one group's member table, every line after indent.
func writeMembers(w io.Writer, indent string, st clusterStatus) error {
	var leaderCommit uint64
	for _, n := range st.Nodes {
		if n.State == "Leader" {
			leaderCommit = n.CommitIndex
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, indent+"ID\tADDRESS\tSTATE\tTERM\tLAST\tCOMMIT\tAPPLIED\tLAG\tLAST CONTACT")
	for _, n := range st.Nodes {
		// A member whose status could not be read gets a row that says
		// why; a status without a state (a node too old to report its
		// errors) is no status either.
		if n.Error != "" || n.State == "" {
			reason := n.Error
			if reason == "" {
				reason = "the node reported no status for this member"
			}
			fmt.Fprintf(tw, "%s%s\t%s\tunknown\t-\t-\t-\t-\t-\terror: %s\n", indent, orDash(n.ID), orDash(n.Address), reason)
			continue
		}
		lag := "-"
		if leaderCommit > 0 && leaderCommit >= n.AppliedIndex {
			lag = fmt.Sprint(leaderCommit - n.AppliedIndex)
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", indent, n.ID, n.Address, n.State, n.Term, n.LastIndex, n.CommitIndex, n.AppliedIndex, lag, n.LastContact)
	}
	return tw.Flush()
}

// pool is a registered pool as GET /v2/pools?detailed=true shows it.
type pool struct {
	Name   string  `json:"name"`
	Flavor *string `json:"flavor"`
	URI    string  `json:"uri"`
	Weight uint64  `json:"weight"`
}

// maxPoolPages bounds the pages of a pool listing followed, against a
// server whose next link never ends.
const maxPoolPages = 1000

// listPools returns every registered pool, sorted by name, following the
// listing's next links until a page comes back empty.
func (c *client) listPools(ctx context.Context) ([]pool, error) {
	path := "/v2/pools?detailed=true"
	seen := map[string]bool{}
	byName := map[string]pool{}
	for page := 0; page < maxPoolPages; page++ {
		b, err := c.v2(ctx, path)
		if err != nil {
			return nil, err
		}
		var pg struct {
			Pools []pool `json:"pools"`
			Links []struct {
				Rel  string `json:"rel"`
				Href string `json:"href"`
			} `json:"links"`
		}
		if err := json.Unmarshal(b, &pg); err != nil {
			return nil, fmt.Errorf("GET %s: unexpected answer: %w", path, err)
		}
		if len(pg.Pools) == 0 {
			break
		}
		for _, p := range pg.Pools {
			byName[p.Name] = p
		}
		next := ""
		for _, l := range pg.Links {
			if l.Rel == "next" {
				next = l.Href
			}
		}
		if u, err := url.Parse(next); err == nil && u.IsAbs() {
			next = u.RequestURI()
		}
		if next == "" || seen[next] {
			break
		}
		seen[next] = true
		path = next
	}
	out := make([]pool, 0, len(byName))
	for _, p := range byName {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// reached is what one node asked for its group's status answered.
type reached struct {
	url string
	st  clusterStatus
	err error
}

// statusPools prints the registered pools after the group of -addr: each
// one's weight, flavor and uri, and its members. The catalog records the
// members' Raft addresses (the uri), not their REST addresses, so a pool's
// members are those reported by a node that was asked (-addr, or one of
// endpoints) and whose group has a member at an address of the pool's
// uri; a pool that no asked node belongs to is said to be not reachable.
// A server without pools (404, 501) or a deployment that registered none
// adds nothing to the output.
func (c *client) statusPools(ctx context.Context, w io.Writer, self clusterStatus, endpoints []string) error {
	pools, err := c.listPools(ctx)
	switch {
	case hasStatus(err, http.StatusNotFound, http.StatusNotImplemented) || (err == nil && len(pools) == 0):
		if len(endpoints) > 0 {
			fmt.Fprintln(w, "\nno pools registered: -endpoints not asked")
		}
		return nil
	case err != nil:
		fmt.Fprintf(w, "\npools: cannot be listed: %v\n", err)
		return nil
	}

	asked := []reached{{url: c.base, st: self}}
	asked = append(asked, c.askEndpoints(ctx, endpoints)...)

	// The first node asked whose group holds an address of the pool's uri
	// speaks for the pool.
	speaker := map[string]int{}
	var notes []string
	for i, r := range asked {
		if r.err != nil {
			notes = append(notes, fmt.Sprintf("endpoint %s: not reached: %v", r.url, r.err))
			continue
		}
		name, ok := poolOf(pools, r.st)
		switch {
		case !ok && i == 0:
			notes = append(notes, fmt.Sprintf("the group above (asked %s) is in no registered pool", r.st.Node))
		case !ok:
			notes = append(notes, fmt.Sprintf("endpoint %s: %s's group (%s) is in no registered pool", r.url, r.st.Node, strings.Join(groupAddrs(r.st), ",")))
		default:
			if _, taken := speaker[name]; !taken {
				speaker[name] = i
			}
		}
	}

	fmt.Fprintf(w, "\npools: %d registered\n", len(pools))
	unreached := 0
	for _, p := range pools {
		flavor := "-"
		if p.Flavor != nil && *p.Flavor != "" {
			flavor = *p.Flavor
		}
		fmt.Fprintf(w, "%s: weight %d, flavor %s, uri %s\n", p.Name, p.Weight, flavor, p.URI)
		i, ok := speaker[p.Name]
		switch {
		case !ok:
			unreached++
			fmt.Fprintln(w, "  members: not reachable from the given endpoints")
		case i == 0:
			fmt.Fprintf(w, "  members: the group above (asked %s)\n", self.Node)
		default:
			r := asked[i]
			fmt.Fprintf(w, "  asked %s at %s; leader %s\n", r.st.Node, r.url, leaderOrNone(r.st.Leader))
			if err := writeMembers(w, "  ", r.st); err != nil {
				return err
			}
		}
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	if unreached > 0 && len(endpoints) == 0 {
		fmt.Fprintln(w, "(to list the members of other pools, give -endpoints with the REST URL of a node of each)")
	}
	return nil
}

// askEndpoints asks every endpoint (but -addr, asked already) for its
// group's status, all at once, and returns the answers in the given order.
func (c *client) askEndpoints(ctx context.Context, endpoints []string) []reached {
	var urls []string
	seen := map[string]bool{c.base: true}
	for _, e := range endpoints {
		if e = strings.TrimRight(e, "/"); !seen[e] {
			seen[e] = true
			urls = append(urls, e)
		}
	}
	out := make([]reached, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			other := &client{base: u, token: c.token, http: c.http}
			st, err := other.clusterStatus(ctx)
			out[i] = reached{url: u, st: st, err: err}
		}()
	}
	wg.Wait()
	return out
}

// groupAddrs returns the Raft addresses of a group's members, as its
// configuration and its status list them, lower-cased and sorted.
func groupAddrs(st clusterStatus) []string {
	set := map[string]bool{}
	for _, m := range st.Members {
		set[strings.ToLower(m.Address)] = true
	}
	for _, n := range st.Nodes {
		set[strings.ToLower(n.Address)] = true
	}
	delete(set, "")
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// uriAddrs returns the host:port addresses of a pool uri
// (zaqar+raft://host:port[,host:port...]), lower-cased.
func uriAddrs(uri string) map[string]bool {
	rest := uri
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	out := map[string]bool{}
	for _, a := range strings.Split(rest, ",") {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" {
			out[a] = true
		}
	}
	return out
}

// poolOf names the pool whose uri holds the address of a member of the
// group st describes.
func poolOf(pools []pool, st clusterStatus) (string, bool) {
	addrs := groupAddrs(st)
	for _, p := range pools {
		in := uriAddrs(p.URI)
		for _, a := range addrs {
			if in[a] {
				return p.Name, true
			}
		}
	}
	return "", false
}
