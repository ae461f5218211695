package raftnode

import "context"

type requestIDKey struct{}

// HeaderRequestID carries a client request's id on forwarded calls, so the
// leader's logs name the request that caused an entry.
const HeaderRequestID = "X-Openstack-Request-Id"

// WithRequestID returns ctx carrying a request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
