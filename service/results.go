package service

import (
	"encoding/json"
	"time"

	"github.com/zaqar-raft/zaqar/store"
)

// The service's results are its own types, taken at one moment (the time
// a read was judged at, or the entry's time for a write), so transports
// render them without knowing the storage model or the clock.

// Message is a message as the API shows it.
type Message struct {
	ID       string
	TTL      int64
	Age      int64 // whole seconds since it was posted
	Body     json.RawMessage
	Checksum string // "" unless checksums are on
	// ClaimID is the claim holding the message at that moment, "" if none.
	ClaimID string
}

// messageAt is m as the API shows it at now, its body opened.
func (s *Service) messageAt(m *store.Message, now int64) (Message, error) {
	body, sum, err := s.openBody(m)
	if err != nil {
		return Message{}, err
	}
	out := Message{ID: m.ID, TTL: m.TTL, Age: m.Age(now), Body: body, Checksum: sum}
	if m.Claimed(now) {
		out.ClaimID = m.ClaimID
	}
	return out, nil
}

// messagesAt is messageAt of each message; one body that cannot be opened
// fails them all, so a page is never shown with a hole in it.
func (s *Service) messagesAt(msgs []*store.Message, now int64) ([]Message, error) {
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		var err error
		if out[i], err = s.messageAt(m, now); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PoppedMessage is a message a pop removed, in the one shape both
// transports answer with (contract §6.8, §13.4).
type PoppedMessage struct {
	ID         string          `json:"id"`
	Body       json.RawMessage `json:"body"`
	TTL        int64           `json:"ttl"`
	Age        int64           `json:"age"`
	ClaimID    *string         `json:"claim_id"` // the claim it last had, null if never
	ClaimCount int64           `json:"claim_count"`
}

func (s *Service) poppedAt(msgs []*store.Message, now int64) ([]PoppedMessage, error) {
	out := make([]PoppedMessage, len(msgs))
	for i, m := range msgs {
		body, _, err := s.openBody(m)
		if err != nil {
			return nil, err
		}
		p := PoppedMessage{ID: m.ID, Body: body, TTL: m.TTL, Age: m.Age(now), ClaimCount: m.ClaimCount}
		if m.ClaimID != "" {
			cid := m.ClaimID
			p.ClaimID = &cid
		}
		out[i] = p
	}
	return out, nil
}

// Subscription is a subscription in the one shape both transports answer
// with (contract §9.1).
type Subscription struct {
	ID         string          `json:"id"`
	Source     string          `json:"source"`
	Subscriber string          `json:"subscriber"`
	TTL        int64           `json:"ttl"`
	Age        int64           `json:"age"`
	Options    json.RawMessage `json:"options"`
	Confirmed  bool            `json:"confirmed"`
}

func subscriptionAt(s *store.Subscription, now int64) Subscription {
	return Subscription{ID: s.ID, Source: s.Source, Subscriber: s.Subscriber, TTL: s.TTL, Age: s.Age(now), Options: s.Options, Confirmed: s.Confirmed}
}

// StatsEdge is the oldest or newest message of a queue's stats.
type StatsEdge struct {
	ID      string
	Age     int64
	Created string // ISO 8601 in UTC, as Zaqar writes it
}

func statsEdgeAt(m *store.Message, now int64) *StatsEdge {
	if m == nil {
		return nil
	}
	return &StatsEdge{ID: m.ID, Age: m.Age(now), Created: time.Unix(0, m.CreatedAt).UTC().Format("2006-01-02T15:04:05Z")}
}
