package service

import (
	"encoding/json"
	"strings"
)

// homeRelation is one relation of the JSON-home document.
type homeRelation struct {
	rel, template string
	vars          map[string]string
	allow         []string
}

var homeRelations = []homeRelation{
	{"rel/queues", "/v2/queues{?marker,limit,detailed}", map[string]string{"marker": "param/marker", "limit": "param/queue_limit", "detailed": "param/detailed"}, []string{"GET"}},
	{"rel/queue", "/v2/queues/{queue_name}", map[string]string{"queue_name": "param/queue_name"}, []string{"GET", "PUT", "DELETE", "PATCH"}},
	{"rel/queue_stats", "/v2/queues/{queue_name}/stats", map[string]string{"queue_name": "param/queue_name"}, []string{"GET"}},
	{"rel/queue_share", "/v2/queues/{queue_name}/share", map[string]string{"queue_name": "param/queue_name"}, []string{"POST"}},
	{"rel/queue_purge", "/v2/queues/{queue_name}/purge", map[string]string{"queue_name": "param/queue_name"}, []string{"POST"}},
	{"rel/messages", "/v2/queues/{queue_name}/messages{?marker,limit,echo,include_claimed}", map[string]string{"queue_name": "param/queue_name", "marker": "param/marker", "limit": "param/messages_limit", "echo": "param/echo", "include_claimed": "param/include_claimed"}, []string{"GET"}},
	{"rel/post_messages", "/v2/queues/{queue_name}/messages", map[string]string{"queue_name": "param/queue_name"}, []string{"POST"}},
	{"rel/messages_delete", "/v2/queues/{queue_name}/messages{?ids,pop}", map[string]string{"queue_name": "param/queue_name", "ids": "param/ids", "pop": "param/pop"}, []string{"DELETE"}},
	{"rel/message_delete", "/v2/queues/{queue_name}/messages/{message_id}{?claim}", map[string]string{"queue_name": "param/queue_name", "message_id": "param/message_id", "claim": "param/claim_id"}, []string{"DELETE"}},
	{"rel/message_get", "/v2/queues/{queue_name}/messages/{message_id}", map[string]string{"queue_name": "param/queue_name", "message_id": "param/message_id"}, []string{"GET"}},
	{"rel/claim", "/v2/queues/{queue_name}/claims/{claim_id}", map[string]string{"queue_name": "param/queue_name", "claim_id": "param/claim_id"}, []string{"GET"}},
	{"rel/post_claim", "/v2/queues/{queue_name}/claims{?limit}", map[string]string{"queue_name": "param/queue_name", "limit": "param/claim_limit"}, []string{"POST"}},
	{"rel/patch_claim", "/v2/queues/{queue_name}/claims/{claim_id}", map[string]string{"queue_name": "param/queue_name", "claim_id": "param/claim_id"}, []string{"PATCH"}},
	{"rel/delete_claim", "/v2/queues/{queue_name}/claims/{claim_id}", map[string]string{"queue_name": "param/queue_name", "claim_id": "param/claim_id"}, []string{"DELETE"}},
	{"rel/subscriptions_get", "/v2/queues/{queue_name}/subscriptions{?marker,limit}", map[string]string{"queue_name": "param/queue_name", "marker": "param/marker", "limit": "param/subscription_limit"}, []string{"GET"}},
	{"rel/subscriptions_post", "/v2/queues/{queue_name}/subscriptions", map[string]string{"queue_name": "param/queue_name"}, []string{"POST"}},
	{"rel/subscription", "/v2/queues/{queue_name}/subscriptions/{subscriptions_id}", map[string]string{"queue_name": "param/queue_name", "subscriptions_id": "param/subscriptions_id"}, []string{"GET", "DELETE"}},
	{"rel/subscription_patch", "/v2/queues/{queue_name}/subscriptions/{subscriptions_id}", map[string]string{"queue_name": "param/queue_name", "subscriptions_id": "param/subscriptions_id"}, []string{"PATCH"}},
	{"rel/ping", "/v2/ping", nil, []string{"GET"}},
}

// adminRelations are added to the home document for callers the policy
// lets list pools (contract §3.2: upstream adds them in admin mode).
var adminRelations = []homeRelation{
	{"rel/pools", "/v2/pools{?detailed,limit,marker}", map[string]string{"detailed": "param/detailed", "limit": "param/pool_limit", "marker": "param/marker"}, []string{"GET"}},
	{"rel/pool", "/v2/pools/{pool_name}", map[string]string{"pool_name": "param/pool_name"}, []string{"GET", "PUT", "PATCH", "DELETE"}},
	{"rel/flavors", "/v2/flavors{?detailed,limit,marker}", map[string]string{"detailed": "param/detailed", "limit": "param/flavor_limit", "marker": "param/marker"}, []string{"GET"}},
	{"rel/flavor", "/v2/flavors/{flavor_name}", map[string]string{"flavor_name": "param/flavor_name"}, []string{"GET", "PUT", "PATCH", "DELETE"}},
	{"rel/health", "/v2/health", nil, []string{"GET"}},
}

var (
	homeDocumentJSON      = buildHomeDocument(homeRelations)
	adminHomeDocumentJSON = buildHomeDocument(append(append([]homeRelation(nil), homeRelations...), adminRelations...))
)

// HomeDocument returns the JSON-home document of the v2 API (contract
// §3.2) as every caller sees it, the same for every transport.
func HomeDocument() []byte { return homeDocumentJSON }

// HomeDocumentFor returns the home document for c: with the admin
// relations (pools, flavors, health) when the policy lets c list pools.
// admin reports which one it is.
func (s *Service) HomeDocumentFor(c Caller) (doc []byte, admin bool) {
	if s.authorize(c, "pools:get_all") == nil {
		return adminHomeDocumentJSON, true
	}
	return homeDocumentJSON, false
}

func buildHomeDocument(relations []homeRelation) []byte {
	resources := map[string]any{}
	for _, rel := range relations {
		hints := map[string]any{"allow": rel.allow, "formats": map[string]any{"application/json": map[string]any{}}}
		for _, m := range rel.allow {
			if m == "POST" || m == "PATCH" {
				hints["accept-post"] = []string{"application/json"}
			}
		}
		desc := map[string]any{"hints": hints}
		if len(rel.vars) == 0 && !strings.Contains(rel.template, "{") {
			desc["href"] = rel.template
		} else {
			desc["href-template"] = rel.template
			desc["href-vars"] = rel.vars
		}
		resources[rel.rel] = desc
	}
	b, err := json.Marshal(map[string]any{"resources": resources})
	if err != nil {
		panic(err)
	}
	return b
}
