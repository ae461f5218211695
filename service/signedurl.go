package service

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ShareResult is a pre-signed URL grant (contract §8.1).
type ShareResult struct {
	Project   string   `json:"project"`
	Paths     []string `json:"paths"`
	Methods   []string `json:"methods"`
	Expires   string   `json:"expires"`
	Signature string   `json:"signature"`
}

// expiresLayout is how expiry times are written and signed: UTC, seconds,
// no zone designator.
const expiresLayout = "2006-01-02T15:04:05"

var shareablePaths = map[string]bool{"messages": true, "subscriptions": true, "claims": true}

// Share signs access to paths of a queue (contract §8.1).
func (s *Service) Share(ctx context.Context, c Caller, queue string, body []byte) (ShareResult, *Error) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return ShareResult{}, badBody("Request body can not be empty")
	}
	obj, e := parseObject(body, "Document type not supported.")
	if e != nil {
		return ShareResult{}, e
	}
	var unknown []string
	for k := range obj {
		if k != "paths" && k != "methods" && k != "expires" {
			unknown = append(unknown, "'"+k+"'")
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return ShareResult{}, badRequest("Unknown keys: {%s}", strings.Join(unknown, ", "))
	}
	// An empty or null list means the default, as upstream's "or".
	paths := []string{"messages"}
	if raw, ok := obj["paths"]; ok {
		var given []string
		if json.Unmarshal(raw, &given) != nil {
			return ShareResult{}, badRequest("paths must be a list of strings.")
		}
		if len(given) > 0 {
			paths = given
		}
		var bad []string
		for _, p := range paths {
			if !shareablePaths[p] {
				bad = append(bad, p)
			}
		}
		if len(bad) > 0 {
			return ShareResult{}, badRequest("Invalid paths: %s", strings.Join(bad, ", "))
		}
	}
	methods := []string{"GET"}
	if raw, ok := obj["methods"]; ok {
		var given []string
		if json.Unmarshal(raw, &given) != nil {
			return ShareResult{}, badRequest("methods must be a list of strings.")
		}
		// The holder sends the methods back comma-separated in
		// URL-Methods, trimmed: a method that does not survive that
		// (empty, holding a comma, or with surrounding spaces) makes a
		// grant that never verifies, so it is refused here.
		var bad []string
		for _, m := range given {
			if m == "" || strings.TrimSpace(m) != m || strings.Contains(m, ",") {
				bad = append(bad, strconv.Quote(m))
			}
		}
		if len(bad) > 0 {
			return ShareResult{}, badRequest("Invalid methods: %s; a method is a non-empty string without commas or surrounding spaces.", strings.Join(bad, ", "))
		}
		if len(given) > 0 {
			methods = given
		}
	}
	expires := time.Now().UTC().Add(24 * time.Hour)
	if raw, ok := obj["expires"]; ok {
		str, isStr := asString(raw)
		if !isStr {
			return ShareResult{}, badRequest("expires must be an ISO 8601 date-time string.")
		}
		t, err := parseExpires(str)
		if err != nil {
			return ShareResult{}, badRequest("%v", err)
		}
		// The grant is signed in whole seconds: it is the truncated time
		// that must lie ahead, or the grant is born expired.
		if !t.Truncate(time.Second).After(time.Now()) {
			return ShareResult{}, badRequest("Expiration date must be in the future.")
		}
		expires = t
	}
	key, e := s.signingKey()
	if e != nil {
		return ShareResult{}, e
	}
	full := make([]string, len(paths))
	for i, p := range paths {
		full[i] = "/v2/queues/" + queue + "/" + p
	}
	sort.Strings(full)
	sort.Strings(methods)
	exp := expires.UTC().Format(expiresLayout)
	return ShareResult{
		Project: c.Project, Paths: full, Methods: methods, Expires: exp,
		Signature: Sign(key, full, methods, c.Project, exp),
	}, nil
}

// parseExpires parses an ISO 8601 date-time with or without fraction and
// zone (no zone means UTC). Integers are refused.
func parseExpires(s string) (time.Time, error) {
	if _, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
		return time.Time{}, fmt.Errorf("expires must be an ISO 8601 date-time, not a number: %q", s)
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			// A zone offset can push a year-9999 date past the four-digit
			// years the signed form (expiresLayout) can carry.
			if y := t.UTC().Year(); y < 1 || y > 9999 {
				return time.Time{}, fmt.Errorf("expires is outside years 0001-9999 in UTC: %q", s)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("expires is not a valid ISO 8601 date-time: %q", s)
}

// Sign computes a pre-signed URL signature (contract §8.2). Each "\n" in
// the signed message is the two characters backslash and n, as upstream.
func Sign(key []byte, paths, methods []string, project, expires string) string {
	p := append([]string(nil), paths...)
	m := append([]string(nil), methods...)
	sort.Strings(p)
	sort.Strings(m)
	if project == "" {
		project = "None"
	}
	msg := strings.Join(p, ",") + `\n` + strings.Join(m, ",") + `\n` + project + `\n` + expires
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return hex.EncodeToString(h.Sum(nil))
}

// SignedRequest is the signature material a request carries.
type SignedRequest struct {
	Signature string
	Expires   string
	Methods   []string
	Paths     []string
	Project   string
}

// verifySigned checks that a signed request may perform the operation
// (contract §8.3): its method is granted, a granted path is the
// operation's resource or a prefix of it at a segment boundary, the grant
// has not expired, and the signature matches (compared in constant time).
func (s *Service) verifySigned(op Operation, r SignedRequest) bool {
	if r.Signature == "" || op.Resource == "" {
		return false
	}
	// HTTP methods are case-sensitive: a grant of "get" does not cover GET.
	allowed := false
	for _, m := range r.Methods {
		allowed = allowed || strings.TrimSpace(m) == op.Method
	}
	if !allowed {
		return false
	}
	covered := false
	for _, p := range r.Paths {
		p = strings.TrimSpace(p)
		covered = covered || (p != "" && (op.Resource == p || strings.HasPrefix(op.Resource, strings.TrimSuffix(p, "/")+"/")))
	}
	if !covered {
		return false
	}
	t, err := parseExpires(r.Expires)
	if err != nil || !t.After(time.Now()) {
		return false
	}
	key, e := s.signingKey()
	if e != nil {
		return false
	}
	trimmed := func(in []string) []string {
		out := make([]string, len(in))
		for i, v := range in {
			out[i] = strings.TrimSpace(v)
		}
		return out
	}
	want := Sign(key, trimmed(r.Paths), trimmed(r.Methods), r.Project, t.Format(expiresLayout))
	return hmac.Equal([]byte(want), []byte(strings.ToLower(r.Signature)))
}

// signingKey returns the configured secret or the replicated one.
func (s *Service) signingKey() ([]byte, *Error) {
	if s.secret != nil {
		return s.secret, nil
	}
	v := s.store.View()
	defer v.Close()
	key, err := v.Secret()
	if err != nil {
		return nil, storeFailure("The signing key could not be read.", err)
	}
	if key == nil {
		return nil, &Error{Status: http.StatusServiceUnavailable, Title: TitleServiceUnavailable, Description: "The cluster has not generated its signing key yet. Please try again in a few seconds."}
	}
	return key, nil
}
