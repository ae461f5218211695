package service

import (
	"context"
	"net/http"
	"strings"

	"github.com/zaqar-raft/zaqar/auth"
)

// Credentials are what a transport read from a request about who sends it.
// Absent and empty are told apart where the rules differ.
type Credentials struct {
	ClientID    string
	HasClientID bool
	Project     string // X-Project-ID (REST also X-Tenant-Id, X-Tenant)
	HasProject  bool
	// Roles is the X-Roles header; only no-auth mode believes it.
	Roles string
	// Identity is the caller's validated Keystone identity (REST: this
	// request's token; websocket: the connection's authenticate), nil if
	// none.
	Identity *auth.Identity
	// Signature holds the pre-signed URL headers, nil if the request
	// carries none. Its Project is filled in by Admit.
	Signature *SignedRequest
	// Stale asks for reads from this node's state without the read barrier.
	Stale bool
}

// Operation is what a request asks to do, as far as admission cares.
type Operation struct {
	// Rule is the policy rule (contract §1), "" for none.
	Rule string
	// Unscoped operations (cluster administration) need no Client-ID and
	// no project: only the identity and the policy apply.
	Unscoped  bool
	Namespace Namespace
	// Name is the queue or topic the request addresses, "" for none.
	Name string
	// Method is the HTTP method a pre-signed URL must grant, and Resource
	// the API path it must cover: the request path on REST; on the
	// websocket Namespace.Path of the queue's messages for message actions
	// and "" (no grant covers it) for the others.
	Method   string
	Resource string
	// Framing, if set, is the transport's own check of how the request is
	// framed (REST: form-encoded bodies, Accept). Admit runs it right after
	// deciding who the caller is, where contract §2.1 puts it: after the
	// pre-signed URL check, so a request with a bad signature is 404
	// whatever else is wrong with it, and before Client-ID.
	Framing func() *Error
}

// Admission errors a transport may render in its own way.
var (
	// ErrSignatureRefused answers a request whose pre-signed URL headers do
	// not grant it. REST answers 404 with this body, as upstream does, so
	// a probe learns nothing; the websocket answers 403 Not authentified.
	ErrSignatureRefused = &Error{Status: http.StatusNotFound, Title: "404 Not Found"}
	// ErrNotAuthenticated answers a request without credentials when
	// authentication is on (the websocket before authenticate; REST
	// refuses such requests with Keystone's 401 before admission).
	ErrNotAuthenticated = &Error{Status: http.StatusForbidden, Title: TitleNotAuthorized, Description: "Not authentified."}
)

// Admit is the one admission pipeline every transport runs before it calls
// an operation (contract §2.1): who the caller is (the Keystone identity,
// or in no-auth mode the headers), the pre-signed URL check, the
// transport's framing check, Client-ID, project, the project's rate limit,
// the queue or topic name, and the policy rule. It returns the caller the
// operation runs as.
//
// With Keystone the project is the token's: a request whose project header
// names another project is refused (403) on every transport, rather than
// served in a project other than the one it names.
func (s *Service) Admit(ctx context.Context, cred Credentials, op Operation) (Caller, *Error) {
	c := Caller{Namespace: op.Namespace, Stale: cred.Stale}
	if op.Unscoped {
		// Pre-signed URLs grant queue resources only.
		cred.Signature = nil
	}
	switch {
	case cred.Identity != nil:
		c.Project, c.UserID, c.Roles = cred.Identity.ProjectID, cred.Identity.UserID, cred.Identity.Roles
		c.Token = cred.Identity.Token
		if cred.HasProject && cred.Project != cred.Identity.ProjectID {
			return Caller{}, &Error{Status: http.StatusForbidden, Title: TitleNotAuthorized,
				Description: "The X-Project-ID header does not match the authenticated project."}
		}
		cred.HasProject = true
	case cred.Signature != nil:
		// A signed request acts in the project its grant names.
		c.Project = cred.Project
		if !s.authRequired {
			c.Roles = parseRoles(cred.Roles)
		}
		grant := *cred.Signature
		grant.Project = cred.Project
		if !s.verifySigned(op, grant) {
			return Caller{}, ErrSignatureRefused
		}
	case s.authRequired:
		return Caller{}, ErrNotAuthenticated
	default:
		c.Project, c.Roles = cred.Project, parseRoles(cred.Roles)
	}
	if op.Framing != nil {
		if e := op.Framing(); e != nil {
			return Caller{}, e
		}
	}
	if !op.Unscoped {
		cid, e := s.normalizeClientID(cred.HasClientID, cred.ClientID)
		if e != nil {
			return Caller{}, e
		}
		c.ClientID = cid
		if e := checkProject(cred.HasProject, c.Project); e != nil {
			return Caller{}, e
		}
		if e := s.throttle(c); e != nil {
			return Caller{}, e
		}
		if op.Name != "" {
			if e := op.Namespace.validateName(c.Project, op.Name); e != nil {
				return Caller{}, e
			}
		}
	}
	if op.Rule != "" {
		if e := s.authorize(c, op.Rule); e != nil {
			return Caller{}, e
		}
	}
	return c, nil
}

// parseRoles splits an X-Roles header ("admin, member") into roles.
func parseRoles(header string) []string {
	var out []string
	for _, r := range strings.Split(header, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// validateName checks a queue or topic name with the rules of its
// namespace.
func (ns Namespace) validateName(project, name string) *Error {
	if ns == Topics {
		return validateTopicName(project, name)
	}
	return validateQueueName(project, name)
}

// Path returns the API path of a queue's or topic's collection, as
// pre-signed URLs name it ("/v2/queues/q/messages"): the resource a
// websocket message action addresses.
func (ns Namespace) Path(name, collection string) string {
	base := "/v2/queues/"
	if ns == Topics {
		base = "/v2/topics/"
	}
	return base + name + "/" + collection
}
