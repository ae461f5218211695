package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/zaqar-raft/zaqar/internal/jsonx"
)

// validateQueueName checks a queue (or topic) name and the project it is
// addressed in (contract §5.1, §2.3).
func validateQueueName(project, name string) *Error {
	if len(project) > MaxProjectLength {
		return Errf(http.StatusBadRequest, TitleInvalidQueueID, "Project ids may not be more than %d characters long.", MaxProjectLength)
	}
	if len(name) > MaxNameLength {
		return Errf(http.StatusBadRequest, TitleInvalidQueueID, "Queue names may not be more than %d characters long.", MaxNameLength)
	}
	if isDotSegment(name) {
		return Errf(http.StatusBadRequest, TitleInvalidQueueID, "Queue names may not be \".\" or \"..\".")
	}
	if !validName(name) {
		return Errf(http.StatusBadRequest, TitleInvalidQueueID, "Queue names may only contain ASCII letters, digits, underscores, dashes and dots.")
	}
	return nil
}

// validateTopicName checks a topic name and its project (contract §2.1).
func validateTopicName(project, name string) *Error {
	e := validateQueueName(project, name)
	if e != nil {
		e.Title = "Invalid topic identification"
		e.Description = strings.ReplaceAll(e.Description, "Queue names", "Topic names")
	}
	return e
}

// validName reports whether name may name a queue or topic. Upstream's
// pattern allows "." and ".."; they are refused here because a path that
// ends in them (/v2/queues/..) is a different resource, or none, once a
// client or proxy normalises it.
func validName(name string) bool {
	if name == "" || len(name) > MaxNameLength || isDotSegment(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// isDotSegment reports whether name is a dot-segment of a URL path
// (RFC 3986 §3.3).
func isDotSegment(name string) bool { return name == "." || name == ".." }

// checkProject applies the project header rules (contract §2.3).
func checkProject(present bool, project string) *Error {
	if !present {
		return &Error{Status: http.StatusBadRequest, Title: "Project-Id Missing", Description: "The header X-PROJECT-ID was missing"}
	}
	if project == "" {
		return &Error{Status: http.StatusBadRequest, Title: "Empty project header not allowed"}
	}
	return nil
}

// normalizeClientID checks a Client-ID and returns the value used to
// compare clients (contract §2.2): in strict mode the 32 lowercase hex
// digits of the UUID, so dashed and undashed spellings are one client.
func (s *Service) normalizeClientID(present bool, v string) (string, *Error) {
	if !present {
		return "", &Error{Status: http.StatusBadRequest, Title: TitleMissingHeader, Description: `The "Client-Id" header is required.`}
	}
	if s.limits.ClientIDMode == "off" {
		if len(v) < s.limits.MinClientIDLength || len(v) > s.limits.MaxClientIDLength {
			return "", &Error{Status: http.StatusBadRequest, Title: fmt.Sprintf("Length of client id must be at least %d and no greater than %d.", s.limits.MinClientIDLength, s.limits.MaxClientIDLength)}
		}
		return v, nil
	}
	u, ok := parseUUID(v)
	if !ok {
		return "", &Error{Status: http.StatusBadRequest, Title: TitleWrongUUID, Description: "Malformed hexadecimal UUID."}
	}
	return u, nil
}

// parseUUID accepts what Python's uuid.UUID(str) accepts (without the
// stray-underscore quirk) and returns 32 lowercase hex digits.
func parseUUID(v string) (string, bool) {
	v = strings.ReplaceAll(v, "urn:", "")
	v = strings.ReplaceAll(v, "uuid:", "")
	v = strings.Trim(v, "{}")
	v = strings.ReplaceAll(v, "-", "")
	if len(v) != 32 {
		return "", false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", false
		}
	}
	return strings.ToLower(v), true
}

// parseDocument checks raw as a JSON document (contract §2.6).
func parseDocument(raw []byte) *Error {
	switch err := jsonx.Check(raw); {
	case errors.Is(err, jsonx.ErrIntegerTooLarge):
		return badBody("JSON contains integer that is too large.")
	case err != nil:
		return badBody("Request body could not be parsed.")
	}
	return nil
}

// parseObject parses raw as a JSON object. notObject is the description
// used when raw is valid JSON of another type.
func parseObject(raw []byte, notObject string) (map[string]json.RawMessage, *Error) {
	if e := parseDocument(raw); e != nil {
		return nil, e
	}
	if jsonx.Kind(raw) != '{' {
		return nil, badBody("%s", notObject)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, badBody("Request body could not be parsed.")
	}
	return obj, nil
}

// isNull reports whether a raw JSON value is null (or absent).
func isNull(v json.RawMessage) bool {
	return len(v) == 0 || bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

// isFalsy reports whether a raw JSON value is false in Python's sense.
func isFalsy(v json.RawMessage) bool {
	t := string(bytes.TrimSpace(v))
	switch t {
	case "", "null", "false", `""`, "[]", "{}":
		return true
	}
	if f, err := strconv.ParseFloat(t, 64); err == nil && f == 0 {
		return true
	}
	if jsonx.Kind(v) == '[' || jsonx.Kind(v) == '{' {
		var x []any
		if json.Unmarshal(v, &x) == nil && len(x) == 0 {
			return true
		}
		var m map[string]any
		if json.Unmarshal(v, &m) == nil && len(m) == 0 {
			return true
		}
	}
	return false
}

// asInt decodes a raw JSON integer. Booleans, floats and strings fail.
func asInt(v json.RawMessage) (int64, bool) {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || !(t[0] == '-' || t[0] >= '0' && t[0] <= '9') || bytes.ContainsAny(t, ".eE") {
		return 0, false
	}
	n, err := strconv.ParseInt(string(t), 10, 64)
	return n, err == nil
}

func asBool(v json.RawMessage) (bool, bool) {
	switch string(bytes.TrimSpace(v)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func asString(v json.RawMessage) (string, bool) {
	if jsonx.Kind(v) != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// intField reads an optional integer field of a body object, with Zaqar's
// type error. ok is false when the field is absent.
func intField(obj map[string]json.RawMessage, name string) (v int64, ok bool, e *Error) {
	raw, present := obj[name]
	if !present {
		return 0, false, nil
	}
	n, isInt := asInt(raw)
	if !isInt {
		return 0, false, badBody(`The value of the "%s" field must be a int.`, name)
	}
	return n, true, nil
}
