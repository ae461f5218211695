// Package service is the one place where Zaqar operations are defined: it
// validates what transports decoded, turns requests into commands with
// their ids fixed, proposes them through the Raft node, and answers reads
// from the store after the read barrier. The REST and websocket transports
// only translate between their wire formats and these calls.
package service

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/zaqar-raft/zaqar/raftnode"
)

// Error is an API error: an HTTP-like status with Zaqar's title and
// description. Transports render it once, in their own shape.
type Error struct {
	Status      int
	Title       string
	Description string
}

func (e *Error) Error() string {
	if e.Description == "" {
		return fmt.Sprintf("%d %s", e.Status, e.Title)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Title, e.Description)
}

// Titles Zaqar uses (contract §2.8).
const (
	TitleInvalidAPIRequest   = "Invalid API request"
	TitleInvalidBody         = "Invalid request body"
	TitleInvalidQueueID      = "Invalid queue identification"
	TitleInvalidParameter    = "Invalid parameter"
	TitleUnableToDelete      = "Unable to delete"
	TitleNotAuthorized       = "Not authorized"
	TitleNotFound            = "Not found"
	TitleConflict            = "Resource conflict"
	TitleServiceUnavailable  = "Service temporarily unavailable"
	TitleMissingHeader       = "Missing header value"
	TitleWrongUUID           = "Wrong UUID value"
	TitleNotImplemented      = "Not implemented"
	TitleInternalServerError = "Internal server error"
)

// Errf builds an Error with a formatted description.
func Errf(status int, title, format string, args ...any) *Error {
	return &Error{Status: status, Title: title, Description: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return Errf(http.StatusBadRequest, TitleInvalidAPIRequest, format, args...)
}

func badBody(format string, args ...any) *Error {
	return Errf(http.StatusBadRequest, TitleInvalidBody, format, args...)
}

func notFound(format string, args ...any) *Error {
	return Errf(http.StatusNotFound, TitleNotFound, format, args...)
}

// unavailable maps a consensus failure to Zaqar's 503, saying what failed.
func unavailable(what string, err error) *Error {
	desc := what + " Please try again in a few seconds."
	switch {
	case errors.Is(err, raftnode.ErrUnknownOutcome):
		desc = what + " The outcome is unknown (the cluster changed leader while the request was in flight); check before retrying."
	case errors.Is(err, raftnode.ErrUpgradeInProgress):
		desc = what + " Not every node of the cluster runs a version that supports this operation yet; try again once the upgrade is complete."
	}
	return &Error{Status: http.StatusServiceUnavailable, Title: TitleServiceUnavailable, Description: desc}
}

// AsError converts any error to an *Error; errors that are not API errors
// become a 500 whose description is the error text.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Title: TitleInternalServerError, Description: err.Error()}
}
