package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// decodePolicyFile reads a policy file as oslo.policy's
// parse_file_contents does: JSON if it parses as JSON, else YAML. It
// returns each rule's source, a string (the policy language) or a list
// (the legacy list-of-lists form, checked by parseList). An empty file
// defines nothing.
//
// oslo turns a rule that is null, false, 0 or {} into "allow everybody"
// and fails on other non-string values; both are refused here, as are
// plain YAML scalars that YAML 1.1 (PyYAML, which oslo uses) would read as
// something other than a string: yes, on, 12:30, 2024-01-01.
func decodePolicyFile(b []byte) (map[string]any, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: not UTF-8", errSyntax)
	}
	var doc any
	jsonErr := json.Unmarshal(b, &doc)
	if jsonErr == nil {
		return fromJSON(doc)
	}
	rules, yamlErr := fromYAML(b)
	if yamlErr != nil {
		if first := bytes.TrimLeft(b, " \t\r\n"); len(first) > 0 && first[0] == '{' {
			return nil, fmt.Errorf("%w: not JSON (%v) nor YAML (%v)", errSyntax, jsonErr, yamlErr)
		}
		return nil, yamlErr
	}
	return rules, nil
}

func fromJSON(doc any) (map[string]any, error) {
	if doc == nil {
		return map[string]any{}, nil
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: the file must be an object of rule names to rules", errSyntax)
	}
	for name, v := range obj {
		if err := checkRuleValue(v); err != nil {
			return nil, fmt.Errorf("rule %q: %w", name, err)
		}
	}
	return obj, nil
}

func checkRuleValue(v any) error {
	switch v.(type) {
	case string, []any:
		return nil
	}
	return fmt.Errorf("%w: a rule is a string (or a list of lists of strings), not %s", errSyntax, jsonKind(v))
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func fromYAML(b []byte) (map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return map[string]any{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("%w: %v", errSyntax, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: a policy file holds one YAML document", errSyntax)
	}
	root := deref(&doc)
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return map[string]any{}, nil
		}
		root = deref(root.Content[0])
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return map[string]any{}, nil
	}
	if root.Kind != yaml.MappingNode || root.ShortTag() != "!!map" {
		return nil, fmt.Errorf("%w: the file must be a mapping of rule names to rules", errSyntax)
	}
	rules := make(map[string]any, len(root.Content)/2)
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := deref(root.Content[i]), deref(root.Content[i+1])
		name, ok := yamlString(key)
		if !ok {
			return nil, fmt.Errorf("%w: line %d: a rule name must be a string (quote it)", errSyntax, key.Line)
		}
		v, err := yamlRule(val, 0)
		if err != nil {
			return nil, fmt.Errorf("rule %q (line %d): %w", name, val.Line, err)
		}
		rules[name] = v
	}
	return rules, nil
}

// yamlRule converts a rule's node: a string, or a list of strings and
// lists (depth 0 and 1; parseList checks the rest).
func yamlRule(n *yaml.Node, depth int) (any, error) {
	if s, ok := yamlString(n); ok {
		return s, nil
	}
	if n.Kind == yaml.SequenceNode && n.ShortTag() == "!!seq" && depth < 2 {
		list := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlRule(deref(c), depth+1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		return list, nil
	}
	return nil, fmt.Errorf("%w: a rule is a string (or a list of lists of strings); quote it if it is meant as one", errSyntax)
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// yamlString returns a scalar that both YAML 1.2 and YAML 1.1 read as a
// string.
func yamlString(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return "", false
	}
	const quoted = yaml.SingleQuotedStyle | yaml.DoubleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle | yaml.TaggedStyle
	if n.Style&quoted == 0 && yaml11NonString.MatchString(n.Value) {
		return "", false
	}
	return n.Value, true
}

// yaml11NonString matches the plain scalars PyYAML's resolver reads as
// bool, float, int, merge, null, timestamp or value (yaml/resolver.py).
var yaml11NonString = regexp.MustCompile(`^(?:` +
	`yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF` +
	`|[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?` +
	`|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)` +
	`|[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+` +
	`|<<|~|null|Null|NULL|` +
	`|[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]` +
	`|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?` +
	`|=` +
	`)$`)
