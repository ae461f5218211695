package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/internal/bodycrypt"
	"github.com/zaqar-raft/zaqar/internal/ids"
	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/service"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// Encryption at rest (docs/security.md): bodies of messages posted to a
// queue with `_enable_encrypt_messages` are sealed before they are
// proposed, so no file of any node holds them in clear, and every read
// opens them.

// messageKeyring returns a keyring of one key made from seed.
func messageKeyring(t *testing.T, seed byte) *bodycrypt.Keyring {
	t.Helper()
	key := bytes.Repeat([]byte{seed}, bodycrypt.KeySize)
	k, err := bodycrypt.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// token returns a string no other test posts: 32 random hex digits (random
// bytes are stored literally even in compressed Pebble blocks).
func token(kind string) string { return kind + "-" + ids.New() }

// storedMessage is a message as GET returns it, with its checksum.
type storedMessage struct {
	ID       string          `json:"id"`
	Body     json.RawMessage `json:"body"`
	Checksum string          `json:"checksum"`
}

// nodeFiles reads every regular file under a node's data directory, by
// kind: the Raft log, Raft snapshots and the Pebble store.
func nodeFiles(t *testing.T, dir string) map[string]map[string][]byte {
	t.Helper()
	out := map[string]map[string][]byte{"raft log": {}, "snapshot": {}, "pebble": {}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case strings.Contains(rel, "snapshots"):
			out["snapshot"][rel] = b
		case strings.HasPrefix(rel, "pebble"):
			out["pebble"][rel] = b
		case strings.HasPrefix(rel, "raft"):
			out["raft log"][rel] = b
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	return out
}

func TestEncryption_BodiesAreSealedBeforeTheLogAndReadInClearOnEveryPath(t *testing.T) {
	keys := messageKeyring(t, 1)
	s := startSuite(t, testcluster.WithConfig(func(c *server.Config) {
		c.MessageKeys = keys
		c.Limits = service.DefaultLimits()
		c.Limits.EnableChecksum = true
	}))
	n := s.nodes(t)
	var secrets, clears []string
	secretBody := func() string {
		tok := token("secret")
		secrets = append(secrets, tok)
		return `{"card": "` + tok + `", "n": [1, 2.5, null]}`
	}

	// A queue created with the flag through the leader and posted to at
	// once through a follower, which may not have applied the creation:
	// the post must read past it (postTarget's barrier), not store clear.
	n.leader.expect(http.StatusCreated, "PUT", "/v2/queues/vault", `{"_enable_encrypt_messages": true}`)
	bodyA, bodyB := secretBody(), `"`+token("secret")+`"`
	secrets = append(secrets, strings.Trim(bodyB, `"`))
	vault := n.f1.post("vault", bodyA, bodyB)
	// A queue without the flag stores clear: the control for the scan.
	clearTok := token("clear")
	clears = append(clears, clearTok)
	n.f2.post("open", `{"card": "`+clearTok+`"}`)
	// The same body in both queues has the same checksum: sealed bodies
	// keep none on disk and the service computes it from the clear body.
	const same = `{"same": [1, 2.5, "x"]}`
	sealedSame, clearSame := n.leader.post("vault", same)[0], n.f1.post("open", same)[0]

	// The flag set later by PATCH, and a post at once through another node.
	n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/later", `{}`)
	n.leader.expect(http.StatusOK, "PATCH", "/v2/queues/later", `[{"op": "add", "path": "/metadata/_enable_encrypt_messages", "value": true}]`, patchType())
	bodyC := secretBody()
	later := n.f2.post("later", bodyC)

	// A topic with the flag (topics have no read path but notifications).
	n.f1.expect(http.StatusCreated, "PUT", "/v2/topics/alerts", `{"_enable_encrypt_messages": true}`)
	n.f2.expect(http.StatusCreated, "POST", "/v2/topics/alerts/messages", `{"messages": [{"body": `+secretBody()+`}]}`)

	t.Log("every read path opens the bodies, on every node")
	for _, c := range n.all {
		page := c.list("vault", "echo=true")
		if len(page.Messages) != 3 {
			t.Fatalf("%s: list of %d messages", c.node, len(page.Messages))
		}
		for i, want := range []string{bodyA, bodyB, same} {
			jsonEqual(t, c.node+" list", page.Messages[i].Body, want)
		}
		var one storedMessage
		c.expect(http.StatusOK, "GET", "/v2/queues/vault/messages/"+vault[0], nil).decode(&one)
		jsonEqual(t, c.node+" get", one.Body, bodyA)
		var many struct{ Messages []storedMessage }
		c.expect(http.StatusOK, "GET", "/v2/queues/vault/messages?ids="+vault[1]+","+vault[0], nil).decode(&many)
		if len(many.Messages) != 2 {
			t.Fatalf("%s: get by ids returned %d", c.node, len(many.Messages))
		}
		for _, m := range many.Messages {
			want := map[string]string{vault[0]: bodyA, vault[1]: bodyB}[m.ID]
			jsonEqual(t, c.node+" get by ids", m.Body, want)
		}
		var sealed, clear storedMessage
		c.expect(http.StatusOK, "GET", "/v2/queues/vault/messages/"+sealedSame, nil).decode(&sealed)
		c.expect(http.StatusOK, "GET", "/v2/queues/open/messages/"+clearSame, nil).decode(&clear)
		if sealed.Checksum == "" || sealed.Checksum != clear.Checksum {
			t.Fatalf("%s: checksum of the sealed body %q, of the same clear body %q", c.node, sealed.Checksum, clear.Checksum)
		}
		var l storedMessage
		c.expect(http.StatusOK, "GET", "/v2/queues/later/messages/"+later[0], nil).decode(&l)
		jsonEqual(t, c.node+" get after PATCH", l.Body, bodyC)
	}
	cid, claimed := n.f1.claim("vault", "limit=1", `{"ttl": 60}`)
	if len(claimed) != 1 {
		t.Fatalf("claimed %d", len(claimed))
	}
	jsonEqual(t, "claim", claimed[0].Body, bodyA)
	var claim struct{ Messages []storedMessage }
	n.f2.expect(http.StatusOK, "GET", "/v2/queues/vault/claims/"+cid, nil).decode(&claim)
	jsonEqual(t, "get claim", claim.Messages[0].Body, bodyA)
	var popped struct{ Messages []storedMessage }
	n.leader.expect(http.StatusOK, "DELETE", "/v2/queues/vault/messages?pop=1", nil).decode(&popped)
	if len(popped.Messages) != 1 || popped.Messages[0].ID != vault[1] {
		t.Fatalf("popped %+v", popped.Messages)
	}
	jsonEqual(t, "pop", popped.Messages[0].Body, bodyB)

	// A message worn out by claims moves to a dead-letter queue without the
	// flag; it stays sealed there and is opened on read.
	n.leader.expect(http.StatusCreated, "PUT", "/v2/queues/fragile", `{"_enable_encrypt_messages": true, "_max_claim_count": 1, "_dead_letter_queue": "graveyard"}`)
	bodyD := secretBody()
	n.f1.post("fragile", bodyD)
	cid, claimed = n.f2.claim("fragile", "", `{"ttl": 60}`)
	if len(claimed) != 1 {
		t.Fatalf("first claim took %d", len(claimed))
	}
	n.f2.expect(http.StatusNoContent, "DELETE", "/v2/queues/fragile/claims/"+cid, nil)
	if cid, _ := n.leader.claim("fragile", "", `{"ttl": 60}`); cid != "" {
		t.Fatal("a worn-out message was claimed instead of moved")
	}
	for _, c := range n.all {
		page := c.list("graveyard", "echo=true")
		if len(page.Messages) != 1 {
			t.Fatalf("%s: dead-letter queue holds %d messages", c.node, len(page.Messages))
		}
		jsonEqual(t, c.node+" dead-letter list", page.Messages[0].Body, bodyD)
	}

	t.Log("snapshot every node, stop them, and read every file")
	s.c.WaitConverged(convergeTimeout)
	for _, node := range s.c.Nodes {
		if err := node.Server.Node().Raft().Snapshot().Error(); err != nil {
			t.Fatalf("snapshot of %s: %v", node.ID, err)
		}
	}
	for _, node := range s.c.Nodes {
		s.c.Stop(node)
	}
	for _, node := range s.c.Nodes {
		for kind, files := range nodeFiles(t, node.Dir) {
			if len(files) == 0 {
				t.Fatalf("%s: no %s files", node.ID, kind)
			}
			for _, tok := range clears {
				found := false
				for _, b := range files {
					found = found || bytes.Contains(b, []byte(tok))
				}
				if !found {
					t.Fatalf("%s: the clear body %s is in none of the %s files; the scan would prove nothing", node.ID, tok, kind)
				}
			}
			for name, b := range files {
				for _, tok := range secrets {
					if bytes.Contains(b, []byte(tok)) {
						t.Fatalf("%s: %s (%s) holds the encrypted queue's body %s in clear", node.ID, name, kind, tok)
					}
				}
			}
		}
	}
}

func TestEncryption_ANodeWithAnotherKeyRefusesWhatItCannotOpenAndTakesNothing(t *testing.T) {
	good, other := messageKeyring(t, 1), messageKeyring(t, 2)
	s := startSuite(t, testcluster.WithConfig(func(c *server.Config) {
		c.MessageKeys = good
		if c.NodeID == "node3" {
			c.MessageKeys = other
		}
	}))
	n := s.nodes(t)
	var right, wrong *client
	for _, c := range n.all {
		switch {
		case strings.HasPrefix(c.node, "node3"):
			wrong = c
		case right == nil:
			right = c
		}
	}
	right.expect(http.StatusCreated, "PUT", "/v2/queues/vault", `{"_enable_encrypt_messages": true}`)
	body := `{"secret": "` + token("secret") + `"}`
	id := right.post("vault", body)[0]

	needs := good.SealingKeyID().String()
	const title = "Service temporarily unavailable"
	wrong.expect(http.StatusServiceUnavailable, "GET", "/v2/queues/vault/messages/"+id, nil).errorLike(title, "needs key "+needs)
	wrong.expect(http.StatusServiceUnavailable, "GET", "/v2/queues/vault/messages?echo=true", nil).errorLike(title, "same message encryption key")
	wrong.expect(http.StatusServiceUnavailable, "GET", "/v2/queues/vault/messages?ids="+id, nil).errorLike(title, "needs key "+needs)
	// A pop or claim is refused before it is proposed: nothing is taken.
	wrong.expect(http.StatusServiceUnavailable, "DELETE", "/v2/queues/vault/messages?pop=1", nil).errorLike(title, "Messages could not be popped.")
	wrong.expect(http.StatusServiceUnavailable, "POST", "/v2/queues/vault/claims", `{"ttl": 60}`).errorLike(title, "Messages could not be claimed.")
	cid, claimed := right.claim("vault", "", `{"ttl": 60}`)
	if len(claimed) != 1 || claimed[0].ID != id {
		t.Fatalf("after the refused pop and claim, a correct node claimed %v", claimed)
	}
	jsonEqual(t, "claim on a correct node", claimed[0].Body, body)
	right.expect(http.StatusNoContent, "DELETE", "/v2/queues/vault/claims/"+cid, nil)

	// What the odd node seals, only it can open.
	odd := wrong.post("vault", `"from node3"`)[0]
	var m storedMessage
	wrong.expect(http.StatusOK, "GET", "/v2/queues/vault/messages/"+odd, nil).decode(&m)
	jsonEqual(t, "the odd node's own message", m.Body, `"from node3"`)
	right.expect(http.StatusServiceUnavailable, "GET", "/v2/queues/vault/messages/"+odd, nil).errorLike(title, "needs key "+other.SealingKeyID().String())
}

func TestEncryption_WithoutAKeyTheFlagIsRefusedAndSealedBodiesStayClosed(t *testing.T) {
	var keys *bodycrypt.Keyring // what the node starts with
	c := testcluster.Start(t, 1, testcluster.WithConfig(func(cfg *server.Config) { cfg.MessageKeys = keys }))
	node := c.Nodes[0]
	restart := func(k *bodycrypt.Keyring) {
		t.Helper()
		keys = k
		c.Stop(node)
		c.Restart(node)
		c.Leader()
	}
	s := &suite{c: c, http: &http.Client{Timeout: 30 * time.Second}}
	api := s.nodes1(t)

	const title = "Invalid API request"
	const noKey = "_enable_encrypt_messages is not available: the service has no message encryption key configured."
	api.expect(http.StatusBadRequest, "PUT", "/v2/queues/vault", `{"_enable_encrypt_messages": true}`).apiError(title, noKey)
	api.expect(http.StatusNotFound, "HEAD", "/v2/queues/vault", nil)
	api.expect(http.StatusBadRequest, "PUT", "/v2/topics/vault", `{"_enable_encrypt_messages": true}`).apiError(title, noKey)
	api.expect(http.StatusBadRequest, "PUT", "/v2/queues/vault", `{"_enable_encrypt_messages": "yes"}`).apiError(title, "_enable_encrypt_messages must be boolean.")
	api.expect(http.StatusCreated, "PUT", "/v2/queues/plain", `{"_enable_encrypt_messages": false}`)
	api.expect(http.StatusBadRequest, "PATCH", "/v2/queues/plain", `[{"op": "add", "path": "/metadata/_enable_encrypt_messages", "value": true}]`, patchType()).apiError(title, noKey)
	api.post("plain", `"clear"`)

	restart(messageKeyring(t, 1))
	api.expect(http.StatusCreated, "PUT", "/v2/queues/vault", `{"_enable_encrypt_messages": true}`)
	id := api.post("vault", `"sealed"`)[0]

	restart(nil)
	const unavailable = "Service temporarily unavailable"
	api.expect(http.StatusServiceUnavailable, "GET", "/v2/queues/vault/messages/"+id, nil).errorLike(unavailable, "this node has no key")
	api.expect(http.StatusServiceUnavailable, "POST", "/v2/queues/vault/messages", `{"messages": [{"body": "x"}]}`).
		errorLike(unavailable, "this node has no message encryption key")
	api.expect(http.StatusServiceUnavailable, "DELETE", "/v2/queues/vault/messages?pop=1", nil).errorLike(unavailable, "Messages could not be popped.")
	// Clear queues are served as before, and the flag can be taken away.
	jsonEqual(t, "clear queue", api.list("plain", "echo=true").Messages[0].Body, `"clear"`)
	api.expect(http.StatusOK, "PATCH", "/v2/queues/vault", `[{"op": "remove", "path": "/metadata/_enable_encrypt_messages"}]`, patchType())

	restart(messageKeyring(t, 1))
	page := api.list("vault", "echo=true")
	if len(page.Messages) != 1 || page.Messages[0].ID != id {
		t.Fatalf("the sealed message after the key came back: %+v", page.Messages)
	}
	jsonEqual(t, "sealed message, key back", page.Messages[0].Body, `"sealed"`)
}

// nodes1 is a client of a one-node cluster's only node.
func (s *suite) nodes1(t *testing.T) *client {
	n := s.c.Nodes[0]
	return &client{t: t, http: s.http, base: n.URL(), node: n.ID, project: "p-" + ids.New()[:16], clientID: newUUID()}
}
