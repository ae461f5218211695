package service

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
