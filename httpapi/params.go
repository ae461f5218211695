package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/zaqar-raft/zaqar/service"
)

// query reads query parameters with Zaqar's rules (contract §2.7): an
// empty value counts as absent, comma-separated values and repeated keys
// form lists.
type query struct{ v url.Values }

func newQuery(r *http.Request) query { return query{r.URL.Query()} }

// str returns the first non-empty value of name.
func (q query) str(name string) (string, bool) {
	for _, v := range q.v[name] {
		if v != "" {
			return v, true
		}
	}
	return "", false
}

// list returns all values of name split on commas, or nil if absent.
func (q query) list(name string) []string {
	var out []string
	for _, v := range q.v[name] {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

func (q query) has(name string) bool {
	_, ok := q.str(name)
	return ok
}

func (q query) boolean(name string) (bool, *service.Error) {
	v, ok := q.str(name)
	if !ok {
		return false, nil
	}
	switch v {
	case "true", "True", "t", "yes", "y", "1", "on":
		return true, nil
	case "false", "False", "f", "no", "n", "0", "off":
		return false, nil
	}
	return false, &service.Error{Status: http.StatusBadRequest, Title: service.TitleInvalidParameter,
		Description: `The "` + name + `" parameter is invalid. The value of the parameter must be "true" or "false".`}
}

// integer returns the value of an integer parameter, or nil if absent.
func (q query) integer(name string) (*int, *service.Error) {
	v, ok := q.str(name)
	if !ok {
		return nil, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return nil, &service.Error{Status: http.StatusBadRequest, Title: service.TitleInvalidParameter,
			Description: `The "` + name + `" parameter is invalid. The value must be an integer.`}
	}
	return &n, nil
}

// linkQuery builds the query string of a "next" link from the parameters
// the client sent (in the given order) and a marker.
type linkQuery struct{ parts []string }

func (l *linkQuery) add(name, value string) {
	l.parts = append(l.parts, url.QueryEscape(name)+"="+url.QueryEscape(value))
}

func (l *linkQuery) String() string { return strings.Join(l.parts, "&") }
