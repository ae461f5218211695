package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/cors"

	"github.com/zaqar-raft/zaqar/auth"
	"github.com/zaqar-raft/zaqar/service"
)

// CORSConfig is the CORS policy (contract §15); off when AllowedOrigins is
// empty.
type CORSConfig struct {
	AllowedOrigins   []string
	AllowCredentials bool
	ExposeHeaders    []string
	AllowMethods     []string
	AllowHeaders     []string
	MaxAge           int // seconds
}

// DefaultCORS returns Zaqar's defaults with no origin allowed (CORS off).
func DefaultCORS() CORSConfig {
	return CORSConfig{
		AllowCredentials: true,
		ExposeHeaders:    []string{"X-Auth-Token", "X-Subject-Token", "X-Service-Token", "X-OpenStack-Request-ID"},
		AllowMethods:     []string{"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"},
		AllowHeaders: []string{"X-Auth-Token", "X-Identity-Status", "X-Roles", "X-Service-Catalog", "X-User-Id",
			"X-Tenant-Id", "X-OpenStack-Request-ID", "X-Trace-Info", "X-Trace-HMAC", "Client-id"},
		MaxAge: 3600,
	}
}

// withCORS wraps next in the CORS layer, outermost: it answers preflights
// itself, without authentication.
func withCORS(cfg CORSConfig, next http.Handler) http.Handler {
	if len(cfg.AllowedOrigins) == 0 {
		return next
	}
	return cors.Handler(cors.Options{
		AllowedOrigins: cfg.AllowedOrigins, AllowedMethods: cfg.AllowMethods, AllowedHeaders: cfg.AllowHeaders,
		ExposedHeaders: cfg.ExposeHeaders, AllowCredentials: cfg.AllowCredentials, MaxAge: cfg.MaxAge,
	})(next)
}

// KeystoneAuth is what the REST API needs from a Keystone validator.
type KeystoneAuth interface {
	auth.Validator
	WWWAuthenticate() string
}

type identityKey struct{}

func identityFrom(r *http.Request) *auth.Identity {
	id, _ := r.Context().Value(identityKey{}).(*auth.Identity)
	return id
}

// authenticate is the Keystone gate (contract §2.1 step 3): everything but
// GET / and /metrics needs a valid X-Auth-Token, except requests carrying
// a non-empty URL-Signature, whose signature is checked instead. Unlike
// upstream, an EXTRA-SPEC header never skips authentication.
func (h *handler) authenticate(next http.Handler) http.Handler {
	if h.auth == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" || r.URL.Path == "/metrics" || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		if strings.TrimSpace(r.Header.Get("Url-Signature")) != "" {
			next.ServeHTTP(w, r)
			return
		}
		id, err := h.auth.Validate(r.Context(), r.Header.Get("X-Auth-Token"))
		switch {
		case errors.Is(err, auth.ErrInvalidToken):
			w.Header().Set("WWW-Authenticate", h.auth.WWWAuthenticate())
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{
				"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication.",
			}})
			return
		case err != nil:
			h.log.Warn("token validation failed", "err", err)
			writeError(w, &service.Error{Status: http.StatusServiceUnavailable, Title: service.TitleServiceUnavailable,
				Description: "The identity service could not be reached to validate the token. Please try again in a few seconds."})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// limitHeaders refuses requests whose headers exceed the configured size
// with 431 and a Zaqar error body (the server's own hard limit, set higher,
// answers without one).
func (h *handler) limitHeaders(next http.Handler) http.Handler {
	if h.maxHeaderBytes <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := len(r.RequestURI)
		for k, vs := range r.Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		if n > h.maxHeaderBytes {
			writeError(w, &service.Error{Status: http.StatusRequestHeaderFieldsTooLarge, Title: "Request headers too large",
				Description: "The request line and headers exceed the limit of this service."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitConcurrency answers 503 at once, with Retry-After, when the node is
// already serving its maximum number of requests: an overloaded node sheds
// load quickly instead of queueing without bound.
func (h *handler) limitConcurrency(next http.Handler) http.Handler {
	if h.inFlight == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
			next.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			writeError(w, &service.Error{Status: http.StatusServiceUnavailable, Title: service.TitleServiceUnavailable,
				Description: "This node is serving as many requests as it may. Please try again in a few seconds."})
		}
	})
}
