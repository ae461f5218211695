// Package msgschema is a pipeline stage that checks the bodies of posted
// messages against a JSON Schema kept in the queue's (or topic's) metadata
// under "_message_schema". A queue without the key accepts any body, as
// every Zaqar queue does.
package msgschema

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/golang-lru/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/zaqar-raft/zaqar/service"
)

// MetadataKey is the metadata key that holds a queue's schema.
const MetadataKey = "_message_schema"

// maxDetail bounds how much of a validation error the caller is shown.
const maxDetail = 512

// Stage is the schema filter. Compiled schemas are cached by their bytes,
// so a busy queue compiles its schema once.
type Stage struct {
	compiled *lru.Cache[[sha256.Size]byte, compiled]
}

// compiled is a cache entry: a schema or why it does not compile.
type compiled struct {
	schema *jsonschema.Schema
	err    error
}

// New returns the stage, caching up to cacheSize compiled schemas (at
// least 1).
func New(cacheSize int) *Stage {
	c, _ := lru.New[[sha256.Size]byte, compiled](max(cacheSize, 1)) // only fails for a size below 1
	return &Stage{compiled: c}
}

// Name implements service.Stage.
func (*Stage) Name() string { return "message_schema" }

// Before refuses queue metadata whose schema does not compile, and posts
// with a body the queue's schema rejects.
func (st *Stage) Before(_ context.Context, op *service.Op) *service.Error {
	switch op.Kind {
	case service.OpSetQueueMetadata:
		raw, ok := schemaOf(op)
		if !ok {
			return nil
		}
		if _, err := st.schema(raw); err != nil {
			return refuse("The queue's %s is not a usable JSON Schema: %s", MetadataKey, detail(err))
		}
	case service.OpPostMessages:
		// Most queues have no schema: skip the metadata's decoding.
		if !bytes.Contains(op.Metadata, []byte(`"`+MetadataKey+`"`)) {
			return nil
		}
		raw, ok := schemaOf(op)
		if !ok {
			return nil
		}
		sch, err := st.schema(raw)
		if err != nil {
			// Set before this stage checked metadata: refuse rather
			// than let everything through.
			return refuse("The queue's %s is not a usable JSON Schema (update the queue's metadata): %s", MetadataKey, detail(err))
		}
		for i, m := range op.Messages {
			body, err := jsonschema.UnmarshalJSON(bytes.NewReader(m.Body))
			if err == nil {
				err = sch.Validate(body)
			}
			if err != nil {
				return refuse("Message %d does not match the queue's %s: %s", i, MetadataKey, detail(err))
			}
		}
	}
	return nil
}

// After implements service.Stage; the filter has nothing to do after commit.
func (*Stage) After(context.Context, *service.Op) {}

// schemaOf returns the schema in op's metadata; a null one is none.
func schemaOf(op *service.Op) (json.RawMessage, bool) {
	raw, ok := op.MetadataValue(MetadataKey)
	if !ok || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

// schema compiles raw, or returns it from the cache.
func (st *Stage) schema(raw json.RawMessage) (*jsonschema.Schema, error) {
	key := sha256.Sum256(raw)
	if c, ok := st.compiled.Get(key); ok {
		return c.schema, c.err
	}
	c := compiled{}
	c.schema, c.err = compile(raw)
	st.compiled.Add(key, c)
	return c.schema, c.err
}

// schemaURL is where a queue's schema is filed in its own compiler.
const schemaURL = "urn:zaqar:message-schema"

// compile compiles one schema in a compiler of its own that loads nothing:
// a "$ref" may point inside the schema or at the drafts' meta-schemas,
// never at a file or a URL (a tenant must not make a node read either).
func compile(raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	switch doc.(type) {
	case map[string]any, bool:
	default:
		return nil, errors.New("a schema is a JSON object or a boolean")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(refuseLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, err
	}
	return c.Compile(schemaURL)
}

// refuseLoader loads no external document.
type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s is not loaded: a message schema may refer only to itself", url)
}

func refuse(format string, args ...any) *service.Error {
	return service.Errf(http.StatusBadRequest, service.TitleInvalidAPIRequest, format, args...)
}

// detail renders err on one line, bounded.
func detail(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > maxDetail {
		s = strings.ToValidUTF8(s[:maxDetail], "") + "…"
	}
	return s
}
