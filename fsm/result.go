package fsm

import (
	"fmt"

	"github.com/zaqar-raft/zaqar/internal/codec"
	"github.com/zaqar-raft/zaqar/internal/ids"
	"github.com/zaqar-raft/zaqar/store"
)

// Status is a command's outcome when it did not simply succeed.
type Status byte

// Statuses.
const (
	StatusOK         Status = iota
	StatusNotFound          // the queue or claim does not exist
	StatusConflict          // a compare-and-set saw a newer version
	StatusClaimed           // the message is claimed and no/another claim id was given
	StatusNotClaimed        // a claim id was given but the message is not claimed
	StatusBadClaim          // the claim id cannot name a claim
	StatusTooLarge          // the post exceeds the queue's size limit (Count holds the limit)
	StatusInUse             // the pool belongs to a flavor (ID names it)
	StatusMisplaced         // the catalog places the queue on another pool: it is not created here
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotFound:
		return "not found"
	case StatusConflict:
		return "conflict"
	case StatusClaimed:
		return "claimed"
	case StatusNotClaimed:
		return "not claimed"
	case StatusBadClaim:
		return "bad claim id"
	case StatusTooLarge:
		return "too large"
	case StatusInUse:
		return "in use"
	case StatusMisplaced:
		return "misplaced"
	}
	return fmt.Sprintf("status(%d)", byte(s))
}

// Result is what applying one command produced. Only the fields a command
// documents are set.
type Result struct {
	Status   Status
	Changed  bool             // CreateQueue: created; RenewClaim: renewed; SetSecret: stored; Subscribe: new
	ID       string           // Subscribe: the subscription's id (new or existing)
	Count    int              // CollectGarbage: expiry entries processed; PostMessages: messages visible at once
	Messages []*store.Message // CreateClaim: claimed; PopMessages: popped
}

// EntryResult is what applying one log entry produced.
type EntryResult struct {
	Index   uint64   // Raft index of the entry
	Now     int64    // the entry's timestamp, unix nanoseconds
	Results []Result // one per command, in order
	// Commands are the entry's commands (in memory only, for OnApply
	// observers; not sent back to forwarding nodes).
	Commands []Command
}

func outcomeResult(o store.DeleteOutcome) Result {
	switch o {
	case store.DeniedClaimed:
		return Result{Status: StatusClaimed}
	case store.DeniedNotClaimed:
		return Result{Status: StatusNotClaimed}
	case store.DeniedBadClaim:
		return Result{Status: StatusBadClaim}
	}
	return Result{}
}

func validClaimID(s string) bool { return ids.Valid(s) }

// EncodeEntryResult encodes r for sending back to the node that forwarded
// the entry.
func EncodeEntryResult(r *EntryResult) []byte {
	var e codec.Encoder
	e.Uvarint(r.Index)
	e.Int64(r.Now)
	e.Uvarint(uint64(len(r.Results)))
	for _, res := range r.Results {
		e.Byte(byte(res.Status))
		e.Bool(res.Changed)
		e.String(res.ID)
		e.Uvarint(uint64(res.Count))
		e.Uvarint(uint64(len(res.Messages)))
		for _, m := range res.Messages {
			e.Buf = store.AppendMessage(e.Buf, m)
		}
	}
	return e.Buf
}

// DecodeEntryResult decodes what EncodeEntryResult wrote.
func DecodeEntryResult(b []byte) (*EntryResult, error) {
	d := codec.NewDecoder(b)
	r := &EntryResult{Index: d.Uvarint(), Now: d.Int64()}
	n := d.Count(4)
	r.Results = make([]Result, n)
	for i := range r.Results {
		res := &r.Results[i]
		res.Status = Status(d.Byte())
		res.Changed = d.Bool()
		res.ID = d.String()
		res.Count = int(d.Uvarint() & 0xFFFFFFFF)
		nm := d.Count(2)
		for j := 0; j < nm; j++ {
			m, err := store.ReadMessage(d)
			if err != nil {
				return nil, fmt.Errorf("fsm: decode result message: %w", err)
			}
			res.Messages = append(res.Messages, m)
		}
	}
	if err := d.Done(); err != nil {
		return nil, fmt.Errorf("fsm: decode entry result: %w", err)
	}
	return r, nil
}
