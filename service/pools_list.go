package service

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
)

// Project-wide listings span pools (docs/pools.md): every pool lists at
// most a page of the project's queues after the marker, in name order,
// and the node merges them and keeps the first page. Names are unique
// across pools (one placement per queue), so the merge is exact. A pool
// that cannot answer makes the listing 503: a partial page would let a
// client page past queues it never saw.

// poolListRequest asks a pool for its part of a listing.
type poolListRequest struct {
	Caller  Caller           `json:"caller"`
	Options QueueListOptions `json:"options"`
	Limit   int              `json:"limit"`
}

// poolListAnswer is one pool's part.
type poolListAnswer struct {
	List  QueueList `json:"list"`
	Error *Error    `json:"error,omitempty"`
}

func (s *Service) listQueuesSpanning(ctx context.Context, c Caller, o QueueListOptions, limit int) (QueueList, *Error) {
	set, e := s.poolSet(ctx)
	if e != nil {
		return QueueList{}, e
	}
	// Every group once: the registered pools, and the catalog pool when it
	// is not registered (queues without a placement live there).
	routes := map[string]Route{}
	for name := range set.pools {
		r, e := s.routeTo(set, name, true)
		if e != nil {
			return QueueList{}, e
		}
		routes[name] = r
	}
	if set.catalog == "" {
		r, _ := s.routeTo(set, "", false)
		routes[""] = r
	}
	body, _ := json.Marshal(poolListRequest{Caller: c, Options: o, Limit: limit})
	parts := make([]QueueList, 0, len(routes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed *Error
	for _, r := range routes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var part QueueList
			var e *Error
			if r.Local() {
				part, e = s.listQueuesHere(ctx, c, o, limit)
			} else {
				part, e = s.listQueuesOf(ctx, r, body)
			}
			mu.Lock()
			defer mu.Unlock()
			if e != nil {
				failed = e
				return
			}
			parts = append(parts, part)
		}()
	}
	wg.Wait()
	if failed != nil {
		return QueueList{}, failed
	}
	var out QueueList
	for _, p := range parts {
		out.Queues = append(out.Queues, p.Queues...)
		out.Count += p.Count
	}
	sort.Slice(out.Queues, func(i, j int) bool { return out.Queues[i].Name < out.Queues[j].Name })
	if len(out.Queues) > limit {
		out.Queues = out.Queues[:limit]
	}
	return out, nil
}

func (s *Service) listQueuesOf(ctx context.Context, r Route, body []byte) (QueueList, *Error) {
	status, answer, e := s.CallPool(ctx, r, PoolRouteQueues, body)
	if e != nil {
		return QueueList{}, e
	}
	var ans poolListAnswer
	if status != http.StatusOK || json.Unmarshal(answer, &ans) != nil {
		return QueueList{}, Errf(http.StatusServiceUnavailable, TitleServiceUnavailable, "Pool %s could not list its queues. Please try again.", r.Pool)
	}
	if ans.Error != nil {
		return QueueList{}, ans.Error
	}
	return ans.List, nil
}

// ServePoolQueues answers another pool's node with this pool's part of a
// listing. The caller was admitted by the node the client reached.
func (s *Service) ServePoolQueues(ctx context.Context, body []byte) []byte {
	var req poolListRequest
	var ans poolListAnswer
	if err := json.Unmarshal(body, &req); err != nil || req.Limit < 1 {
		ans.Error = badRequest("The listing request could not be parsed.")
	} else {
		ans.List, ans.Error = s.listQueuesHere(ctx, req.Caller, req.Options, req.Limit)
	}
	out, _ := json.Marshal(ans)
	return out
}
