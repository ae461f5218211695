package service

import (
	"errors"
	"fmt"
	"time"

	"github.com/zaqar-raft/zaqar/fsm"
)

// Limits are the configurable bounds and defaults of contract §2.9.
type Limits struct {
	DefaultMessageTTL        int64
	DefaultMessageDelay      int64
	DefaultClaimTTL          int64
	DefaultClaimGrace        int64
	DefaultSubscriptionTTL   int64
	MaxQueuesPerPage         int
	MaxMessagesPerPage       int
	MaxSubscriptionsPerPage  int
	MaxMessagesPerClaimOrPop int
	MaxQueueMetadata         int
	MaxMessagesPostSize      int
	MaxMessageTTL            int64
	MaxMessageDelay          int64
	MaxClaimTTL              int64
	MaxClaimGrace            int64
	// ClientIDMode is "strict" (Client-ID must be a UUID) or "off" (any
	// string of MinClientIDLength..MaxClientIDLength characters).
	ClientIDMode      string
	MinClientIDLength int
	MaxClientIDLength int
	// DeleteWithClaimID makes bulk deletes require the claims of the
	// messages they name (message_delete_with_claim_id).
	DeleteWithClaimID bool
	// EnableChecksum adds an MD5 checksum to every stored message.
	EnableChecksum bool
	// MaxBodyBytes caps request bodies that Zaqar leaves uncapped.
	MaxBodyBytes int
}

// Fixed minimums (code constants upstream).
const (
	MinMessageTTL      = 60
	MinClaimTTL        = 60
	MinClaimGrace      = 60
	MinSubscriptionTTL = 60
	MaxNameLength      = 64
	MaxProjectLength   = 256
	defaultPageSize    = 10
)

// DefaultLimits returns the reference's defaults.
func DefaultLimits() Limits {
	return Limits{
		DefaultMessageTTL:        3600,
		DefaultMessageDelay:      0,
		DefaultClaimTTL:          300,
		DefaultClaimGrace:        60,
		DefaultSubscriptionTTL:   3600,
		MaxQueuesPerPage:         20,
		MaxMessagesPerPage:       20,
		MaxSubscriptionsPerPage:  20,
		MaxMessagesPerClaimOrPop: 20,
		MaxQueueMetadata:         64 * 1024,
		MaxMessagesPostSize:      256 * 1024,
		MaxMessageTTL:            1209600,
		MaxMessageDelay:          900,
		MaxClaimTTL:              43200,
		MaxClaimGrace:            43200,
		ClientIDMode:             "strict",
		MinClientIDLength:        10,
		MaxClientIDLength:        36,
		MaxBodyBytes:             1 << 20,
	}
}

// maxPostSizeLimit bounds -max-messages-post-size: a forwarded entry (the
// messages plus their framing) must fit the node-to-node body cap of 64 MiB.
const maxPostSizeLimit = 32 << 20

// Check refuses limits that cannot work as configured: a bound below its
// minimum, a default outside its bounds, or a value the command encoding
// would not carry whole (nothing is clamped or wrapped silently).
func (l Limits) Check() error {
	var errs []error
	atLeast := func(name string, v, min int64) {
		if v < min {
			errs = append(errs, fmt.Errorf("%s is %d; it must be at least %d", name, v, min))
		}
	}
	within := func(name string, v, min, max int64) {
		if v < min || v > max {
			errs = append(errs, fmt.Errorf("%s is %d; it must be from %d to %d", name, v, min, max))
		}
	}
	// Message and claim deadlines travel in ungated commands, which must
	// stay within fsm.MaxShortTTL (fsm/DESIGN.md, "Expiries past 2262").
	within("max-message-ttl", l.MaxMessageTTL, MinMessageTTL, fsm.MaxShortTTL)
	within("max-claim-ttl", l.MaxClaimTTL, MinClaimTTL, fsm.MaxShortTTL)
	within("max-claim-grace", l.MaxClaimGrace, MinClaimGrace, fsm.MaxShortTTL)
	within("max-message-delay", l.MaxMessageDelay, 0, fsm.MaxShortTTL)
	within("default-message-ttl", l.DefaultMessageTTL, MinMessageTTL, l.MaxMessageTTL)
	within("default-message-delay", l.DefaultMessageDelay, 0, l.MaxMessageDelay)
	within("default-claim-ttl", l.DefaultClaimTTL, MinClaimTTL, l.MaxClaimTTL)
	within("default-claim-grace", l.DefaultClaimGrace, MinClaimGrace, l.MaxClaimGrace)
	within("default-subscription-ttl", l.DefaultSubscriptionTTL, MinSubscriptionTTL, maxSubscriptionTTL(time.Now()))
	atLeast("max-queues-per-page", int64(l.MaxQueuesPerPage), 1)
	atLeast("max-messages-per-page", int64(l.MaxMessagesPerPage), 1)
	atLeast("max-subscriptions-per-page", int64(l.MaxSubscriptionsPerPage), 1)
	within("max-messages-per-claim-or-pop", int64(l.MaxMessagesPerClaimOrPop), 1, fsm.MaxTakeLimit)
	atLeast("max-queue-metadata", int64(l.MaxQueueMetadata), 1)
	within("max-messages-post-size", int64(l.MaxMessagesPostSize), 1, maxPostSizeLimit)
	atLeast("max-body-bytes", int64(l.MaxBodyBytes), 1)
	atLeast("min-length-client-id", int64(l.MinClientIDLength), 1)
	atLeast("max-length-client-id", int64(l.MaxClientIDLength), int64(l.MinClientIDLength))
	return errors.Join(errs...)
}
