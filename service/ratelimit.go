package service

import (
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/time/rate"
)

// RateLimit is a per-project request rate limit (off when PerSecond is 0).
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// projectLimiter keeps one token bucket per recently active project.
type projectLimiter struct {
	cfg     RateLimit
	buckets *expirable.LRU[string, *rate.Limiter]
}

func newProjectLimiter(cfg RateLimit) *projectLimiter {
	if cfg.PerSecond <= 0 {
		return nil
	}
	if cfg.Burst <= 0 {
		cfg.Burst = int(cfg.PerSecond) + 1
	}
	return &projectLimiter{cfg: cfg, buckets: expirable.NewLRU[string, *rate.Limiter](100000, nil, 10*time.Minute)}
}

// throttle answers 429 when the caller's project is over its rate limit.
// The error's description says when to retry.
func (s *Service) throttle(c Caller) *Error {
	if s.limiter == nil {
		return nil
	}
	b, ok := s.limiter.buckets.Get(c.Project)
	if !ok {
		b = rate.NewLimiter(rate.Limit(s.limiter.cfg.PerSecond), s.limiter.cfg.Burst)
		s.limiter.buckets.Add(c.Project, b)
	}
	if b.Allow() {
		return nil
	}
	return &Error{Status: http.StatusTooManyRequests, Title: "Too many requests",
		Description: "The project is over its rate limit of " + strconv.FormatFloat(s.limiter.cfg.PerSecond, 'f', -1, 64) + " requests per second. Please try again in a moment."}
}
