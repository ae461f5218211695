package service

import (
	"context"
	"fmt"
	"time"

	"github.com/zaqar-raft/zaqar/internal/ids"
	"github.com/zaqar-raft/zaqar/raftnode"
)

// Ping reports whether this node can serve consistent requests now: it
// passes the read barrier within a short deadline.
func (s *Service) Ping(ctx context.Context) *Error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := s.node.ReadBarrier(ctx); err != nil {
		return unavailable("The cluster cannot serve requests now.", err)
	}
	return nil
}

// OperationStatus is one step of the health self-test.
type OperationStatus struct {
	Succeeded bool    `json:"succeeded"`
	Seconds   float64 `json:"seconds"`
	Ref       *string `json:"ref"`
}

// HealthReport is the detailed health answer (contract §4): the
// reference's keys plus every member's Raft state.
type HealthReport struct {
	StorageReachable bool                       `json:"storage_reachable"`
	OperationStatus  map[string]OperationStatus `json:"operation_status"`
	Raft             RaftHealth                 `json:"raft"`
	// Pools reports every registered pool, with pools (docs/pools.md).
	Pools map[string]PoolHealth `json:"pools,omitempty"`
}

// PoolHealth is one pool as this node reaches it.
type PoolHealth struct {
	// Local is the pool this node belongs to.
	Local     bool              `json:"local,omitempty"`
	Reachable bool              `json:"reachable"`
	Members   []raftnode.Member `json:"members,omitempty"`
}

// RaftHealth is the cluster as this node sees it.
type RaftHealth struct {
	LeaderID string            `json:"leader_id"`
	Nodes    []raftnode.Status `json:"nodes"`
}

// Health runs the reference's self-test (scratch queue in a scratch
// project: post 100 messages, claim, list, delete with the claim, release,
// bulk delete, delete the queue) and reports each member's Raft state.
// Transports authorize it with the rule "health:get" (admin by default).
func (s *Service) Health(ctx context.Context, c Caller) (HealthReport, *Error) {
	rep := HealthReport{OperationStatus: map[string]OperationStatus{}}
	rep.StorageReachable = s.Ping(ctx) == nil
	rep.Raft.Nodes = s.node.ClusterStatus(ctx)
	for _, n := range rep.Raft.Nodes {
		if n.State == "Leader" {
			rep.Raft.LeaderID = n.ID
		}
	}
	rep.Pools = s.poolsHealth(ctx)
	if !rep.StorageReachable {
		return rep, nil
	}
	probe := Caller{Project: "health-" + ids.New()[:12], ClientID: ids.New()}
	queue := "health_" + ids.New()[:12]
	step := func(name string, fn func() *Error) bool {
		start := time.Now()
		e := fn()
		st := OperationStatus{Succeeded: e == nil, Seconds: time.Since(start).Seconds()}
		if e != nil {
			ref := ids.New()
			st.Ref = &ref
			s.log.Warn("health self-test step failed", "step", name, "ref", ref, "err", e)
		}
		rep.OperationStatus[name] = st
		return e == nil
	}
	var msgIDs []string
	var claim ClaimResult
	step("create_queue", func() *Error { _, e := s.CreateQueue(ctx, probe, queue, nil); return e })
	step("post_messages", func() *Error {
		body := []byte(`{"messages": [`)
		for i := 0; i < 100; i++ {
			if i > 0 {
				body = append(body, ',')
			}
			body = fmt.Appendf(body, `{"ttl": 600, "body": {"n": %d}}`, i)
		}
		body = append(body, "]}"...)
		var e *Error
		msgIDs, e = s.PostMessages(ctx, probe, queue, body)
		return e
	})
	step("claim_messages", func() *Error {
		limit := s.limits.MaxMessagesPerClaimOrPop
		var e *Error
		claim, e = s.CreateClaim(ctx, probe, queue, &limit, ClaimParams{TTL: 60, Grace: 300})
		return e
	})
	step("list_messages", func() *Error {
		_, e := s.ListMessages(ctx, probe, queue, MessageListOptions{Echo: true, IncludeClaimed: true})
		return e
	})
	step("delete_messages", func() *Error {
		for _, m := range claim.Messages {
			if e := s.DeleteMessage(ctx, probe, queue, m.ID, claim.ID); e != nil {
				return e
			}
		}
		return nil
	})
	step("delete_claim", func() *Error { return s.ReleaseClaim(ctx, probe, queue, claim.ID) })
	step("bulk_delete_messages", func() *Error {
		for i := 0; i < len(msgIDs); i += s.limits.MaxMessagesPerPage {
			end := min(i+s.limits.MaxMessagesPerPage, len(msgIDs))
			if _, e := s.DeleteMessages(ctx, probe, queue, BulkDelete{IDs: msgIDs[i:end]}); e != nil {
				return e
			}
		}
		return nil
	})
	step("delete_queue", func() *Error { return s.DeleteQueue(ctx, probe, queue) })
	return rep, nil
}

// poolsHealth asks one member of every registered pool for its group; nil
// without pools.
func (s *Service) poolsHealth(ctx context.Context) map[string]PoolHealth {
	if inUse, e := s.poolsInUse(ctx); e != nil || !inUse {
		return nil
	}
	set, e := s.poolSet(ctx)
	if e != nil {
		return nil
	}
	out := map[string]PoolHealth{}
	for name, addrs := range set.pools {
		if name == set.self {
			out[name] = PoolHealth{Local: true, Reachable: true, Members: s.node.Members()}
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		id, err := s.node.ProbeGroup(pctx, addrs)
		cancel()
		out[name] = PoolHealth{Reachable: err == nil, Members: id.Members}
	}
	return out
}
