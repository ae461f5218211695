package store

import "math"

// Never is the expiry of a record whose TTL reaches past the last instant
// a unix-nanosecond int64 can hold (2262-04-11T23:47:16.854775807Z). No
// `now` the store is handed can reach it (the leader's clock is read as
// unix nanoseconds too), so a record expiring at Never stays live for as
// long as time can be told. Its reported TTL is kept in seconds beside it.
const Never int64 = math.MaxInt64

// maxDeadlineSeconds is the largest number of seconds whose nanoseconds fit
// an int64.
const maxDeadlineSeconds int64 = math.MaxInt64 / 1_000_000_000

// Deadline returns now plus seconds, in unix nanoseconds, saturated to
// [0, Never]: an expiry past year 2262 becomes Never instead of wrapping
// into the past, and a deadline before 1970 is 0 (already past, and first
// in the expiry indexes, where a wrapped negative value would sort last
// and never be collected). Every expiry, visibility and claim deadline the
// store computes goes through it; it depends only on its arguments, which
// are in the log, so every replica computes the same value.
func Deadline(now, seconds int64) int64 {
	switch {
	case seconds > maxDeadlineSeconds:
		return Never
	case seconds < -maxDeadlineSeconds:
		return 0
	}
	d := seconds * 1e9
	switch {
	case d > 0 && now > Never-d:
		return Never
	case d < 0 && now < math.MinInt64-d:
		return 0
	}
	return max(now+d, 0)
}

// addSeconds adds two durations in seconds, saturating instead of
// wrapping (a claim's TTL plus its grace).
func addSeconds(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}
