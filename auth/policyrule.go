package auth

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// This file is oslo.policy's rule language (oslo_policy/_parser.py and
// _checks.py, version 4.0): the tokenizer, the greedy shift-reduce parser
// and the checks it builds, ported construct by construct so that a rule
// means here what it means to oslo. Where oslo would log "Failed to
// understand rule" and deny, or would raise while enforcing (a 500 in
// Zaqar), parsing here fails instead and the node refuses to start.

// check is one node of a parsed rule. String renders it as oslo's str()
// does, which the parser reads back to the same tree.
type check interface {
	eval(ev *evaluation) bool
	String() string
}

// evaluation is one decision in progress.
type evaluation struct {
	policy *Policy
	creds  *Credentials
	target map[string]string
}

type trueCheck struct{}

func (trueCheck) eval(*evaluation) bool { return true }
func (trueCheck) String() string        { return "@" }

type falseCheck struct{}

func (falseCheck) eval(*evaluation) bool { return false }
func (falseCheck) String() string        { return "!" }

type notCheck struct{ c check }

func (n *notCheck) eval(ev *evaluation) bool { return !n.c.eval(ev) }
func (n *notCheck) String() string           { return "not " + n.c.String() }

type andCheck struct{ cs []check }

func (a *andCheck) eval(ev *evaluation) bool {
	for _, c := range a.cs {
		if !c.eval(ev) {
			return false
		}
	}
	return true
}
func (a *andCheck) String() string { return joinChecks(a.cs, " and ") }

type orCheck struct{ cs []check }

func (o *orCheck) eval(ev *evaluation) bool {
	for _, c := range o.cs {
		if c.eval(ev) {
			return true
		}
	}
	return false
}
func (o *orCheck) String() string { return joinChecks(o.cs, " or ") }

func joinChecks(cs []check, op string) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return "(" + strings.Join(parts, op) + ")"
}

// ruleCheck is "rule:NAME": the named rule decides (oslo's RuleCheck). A
// name nobody defined falls to the "default" rule if there is one, else
// denies.
type ruleCheck struct{ name string }

func (r *ruleCheck) eval(ev *evaluation) bool {
	c, ok := ev.policy.resolve(r.name)
	return ok && c.eval(ev)
}
func (r *ruleCheck) String() string { return "rule:" + r.name }

// roleCheck is "role:NAME": the caller holds NAME, compared without
// regard to case (oslo's RoleCheck lower-cases both sides). NAME may
// interpolate the target ("role:%(project_id)s").
type roleCheck struct {
	raw   string
	match template
}

func (r *roleCheck) eval(ev *evaluation) bool {
	want, ok := r.match.format(ev.target)
	if !ok {
		return false
	}
	want = pythonLower(want)
	for _, role := range ev.creds.Roles {
		if pythonLower(role) == want {
			return true
		}
	}
	return false
}
func (r *roleCheck) String() string { return "role:" + r.raw }

// genericCheck is "KIND:MATCH" for any other KIND (oslo's GenericCheck).
// MATCH, interpolated from the target, must equal either the literal KIND
// ("True:%(enabled)s", "'member':%(role)s") or the caller's credential
// named KIND (any element of it, for roles) rendered as Python's str()
// would.
type genericCheck struct {
	rawKind, rawMatch string
	literal           string // KIND's value, if it is a literal
	isLiteral         bool
	match             template
}

func (g *genericCheck) eval(ev *evaluation) bool {
	want, ok := g.match.format(ev.target)
	if !ok {
		return false
	}
	if g.isLiteral {
		return want == g.literal
	}
	for _, v := range ev.creds.values(g.rawKind) {
		if v == want {
			return true
		}
	}
	return false
}
func (g *genericCheck) String() string { return g.rawKind + ":" + g.rawMatch }

// template is a check's right-hand side with its "%(key)s" references to
// the target, as Python's "%" operator with a dict reads it.
type template []templatePart

type templatePart struct {
	text  string
	isKey bool
}

// parseTemplate accepts literal text, "%%" and "%(key)s". Python would
// also take other conversions ("%(key)r", "%s", "%d"), which either raise
// while enforcing or compare against a rendering of the whole target; they
// are refused here.
func parseTemplate(s string) (template, error) {
	var t template
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			lit.WriteByte(s[i])
			continue
		}
		rest := s[i+1:]
		switch {
		case strings.HasPrefix(rest, "%"):
			lit.WriteByte('%')
			i++
		case strings.HasPrefix(rest, "("):
			end := strings.IndexAny(rest[1:], "()")
			if end < 0 || rest[1+end] != ')' || !strings.HasPrefix(rest[2+end:], "s") {
				return nil, fmt.Errorf("%q: only %%(name)s and %%%% may follow %%", s)
			}
			if lit.Len() > 0 {
				t = append(t, templatePart{text: lit.String()})
				lit.Reset()
			}
			t = append(t, templatePart{text: rest[1 : 1+end], isKey: true})
			i += 1 + end + 2
		default:
			return nil, fmt.Errorf("%q: only %%(name)s and %%%% may follow %%", s)
		}
	}
	if lit.Len() > 0 || len(t) == 0 {
		t = append(t, templatePart{text: lit.String()})
	}
	return t, nil
}

// format fills the template from target; false if a key is missing (oslo
// then denies: KeyError).
func (t template) format(target map[string]string) (string, bool) {
	if len(t) == 1 && !t[0].isKey {
		return t[0].text, true
	}
	var b strings.Builder
	for _, p := range t {
		if !p.isKey {
			b.WriteString(p.text)
			continue
		}
		v, ok := target[p.text]
		if !ok {
			return "", false
		}
		b.WriteString(v)
	}
	return b.String(), true
}

// errSyntax marks every reason a rule is refused.
var errSyntax = errors.New("invalid rule")

func syntaxErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errSyntax}, args...)...)
}

// parseCheck reads one check, "KIND:MATCH", "@" or "!" (oslo's
// _parse_check). Text rules and list rules both use it.
func parseCheck(s string) (check, error) {
	switch s {
	case "!":
		return falseCheck{}, nil
	case "@":
		return trueCheck{}, nil
	}
	kind, match, ok := strings.Cut(s, ":")
	if !ok {
		return nil, syntaxErr("%q is not a check (KIND:MATCH, @ or !)", s)
	}
	switch kind {
	case "rule":
		return &ruleCheck{name: match}, nil
	case "role":
		t, err := parseTemplate(match)
		if err != nil {
			return nil, syntaxErr("%s: %v", s, err)
		}
		return &roleCheck{raw: match, match: t}, nil
	case "http", "https":
		return nil, syntaxErr("%q: remote (http/https) checks are not supported", s)
	}
	t, err := parseTemplate(match)
	if err != nil {
		return nil, syntaxErr("%s: %v", s, err)
	}
	g := &genericCheck{rawKind: kind, rawMatch: match, match: t}
	if lit, ok := pythonLiteral(kind); ok {
		g.literal, g.isLiteral = lit, true
	} else if !isCredentialName(kind) {
		return nil, syntaxErr("%q: %q must be a credential name (like project_id) or a literal (True, False, None, a number or a quoted string)", s, kind)
	}
	return g, nil
}

// pythonLiteral reads the literals oslo evaluates a check's KIND as (with
// ast.literal_eval) and returns str() of the value. Python accepts more
// (floats, tuples, escapes, prefixes); those are refused, not guessed.
func pythonLiteral(s string) (string, bool) {
	switch s {
	case "True", "False", "None":
		return s, true
	}
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		inner := s[1 : len(s)-1]
		if !strings.ContainsAny(inner, "\\\n\r\x00"+s[:1]) && utf8.ValidString(inner) {
			return inner, true
		}
		return "", false
	}
	if s != "" && strings.Trim(s, "0123456789") == "" {
		if t := strings.TrimLeft(s, "0"); t == "" {
			return "0", true
		} else if t == s {
			return s, true
		}
	}
	return "", false
}

// pythonKeywords cannot name a credential: oslo's literal_eval of them is
// a syntax error, raised while enforcing.
var pythonKeywords = map[string]bool{
	"and": true, "as": true, "assert": true, "async": true, "await": true, "break": true, "class": true,
	"continue": true, "def": true, "del": true, "elif": true, "else": true, "except": true, "finally": true,
	"for": true, "from": true, "global": true, "if": true, "import": true, "in": true, "is": true,
	"lambda": true, "nonlocal": true, "not": true, "or": true, "pass": true, "raise": true, "return": true,
	"try": true, "while": true, "with": true, "yield": true,
}

// isCredentialName accepts an ASCII Python identifier. oslo also reads
// dotted paths into nested credentials ("token.user.id"); this service's
// credentials are flat, so such a check could only deny or raise.
func isCredentialName(s string) bool {
	if s == "" || pythonKeywords[s] {
		return false
	}
	for i, c := range []byte(s) {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// pythonLower is Python's str.lower(): Go's per-rune mapping, plus the one
// unconditional multi-rune mapping (U+0130 to "i̇"). Python's final-sigma
// rule is not reproduced (see docs/security.md).
func pythonLower(s string) string {
	if strings.ContainsRune(s, '\u0130') {
		s = strings.ReplaceAll(s, "\u0130", "i\u0307")
	}
	return strings.ToLower(s)
}

// isPythonSpace is Python's str.isspace(), which is what oslo's tokenizer
// (re.split(r'\s+')) splits on: more than Go's unicode.IsSpace (U+001C to
// U+001F).
func isPythonSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f, ' ', 0x85, 0xa0, 0x1680,
		0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// token is one item of oslo's token stream, or a reduction of several.
type token struct {
	kind  string // "(", ")", "and", "or", "not", "string", "check", "and_expr", "or_expr"
	check check  // for check, and_expr (*andCheck) and or_expr (*orCheck)
}

// tokenize is oslo's _parse_tokenize: split on whitespace, peel leading
// "(" and trailing ")" off each word, recognise and/or/not in any case,
// and a word quoted at both ends as a string (which no reduction accepts).
func tokenize(rule string) ([]token, error) {
	var toks []token
	for _, word := range strings.FieldsFunc(rule, isPythonSpace) {
		clean := strings.TrimLeft(word, "(")
		for range len(word) - len(clean) {
			toks = append(toks, token{kind: "("})
		}
		if clean == "" {
			continue
		}
		word = clean
		clean = strings.TrimRight(word, ")")
		trail := len(word) - len(clean)
		switch lowered := pythonLower(clean); {
		case lowered == "and" || lowered == "or" || lowered == "not":
			toks = append(toks, token{kind: lowered})
		case clean == "":
		case len(word) >= 2 && (word[0] == '"' || word[0] == '\'') && word[len(word)-1] == word[0]:
			toks = append(toks, token{kind: "string"})
		default:
			c, err := parseCheck(clean)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: "check", check: c})
		}
		for range trail {
			toks = append(toks, token{kind: ")"})
		}
	}
	return toks, nil
}

// reducer is one of oslo's ParseState reductions: when the stack ends in
// pattern, reduce replaces those tokens.
type reducer struct {
	pattern []string
	reduce  func(ts []token) token
}

// reducers are tried in oslo's order after every shift, again after every
// reduction, until none applies. Their greed gives "and" precedence over
// "or", and "not" over both.
var reducers = []reducer{
	{[]string{"(", "check", ")"}, wrapCheck},
	{[]string{"(", "and_expr", ")"}, wrapCheck},
	{[]string{"(", "or_expr", ")"}, wrapCheck},
	{[]string{"check", "and", "check"}, func(ts []token) token {
		return token{kind: "and_expr", check: &andCheck{cs: []check{ts[0].check, ts[2].check}}}
	}},
	{[]string{"or_expr", "and", "check"}, func(ts []token) token {
		// "A or B and C": B leaves the "or" to be "and"ed with C (an
		// existing and-check, even a parenthesised one, is extended).
		or := ts[0].check.(*orCheck)
		last := or.cs[len(or.cs)-1]
		or.cs = or.cs[:len(or.cs)-1]
		if and, ok := last.(*andCheck); ok {
			and.cs = append(and.cs, ts[2].check)
			or.cs = append(or.cs, and)
		} else {
			or.cs = append(or.cs, &andCheck{cs: []check{last, ts[2].check}})
		}
		return token{kind: "or_expr", check: or}
	}},
	{[]string{"and_expr", "and", "check"}, func(ts []token) token {
		and := ts[0].check.(*andCheck)
		and.cs = append(and.cs, ts[2].check)
		return token{kind: "and_expr", check: and}
	}},
	{[]string{"and_expr", "or", "check"}, makeOr},
	{[]string{"check", "or", "check"}, makeOr},
	{[]string{"or_expr", "or", "check"}, func(ts []token) token {
		or := ts[0].check.(*orCheck)
		or.cs = append(or.cs, ts[2].check)
		return token{kind: "or_expr", check: or}
	}},
	{[]string{"not", "check"}, func(ts []token) token {
		return token{kind: "check", check: &notCheck{c: ts[1].check}}
	}},
}

func wrapCheck(ts []token) token { return token{kind: "check", check: ts[1].check} }

func makeOr(ts []token) token {
	return token{kind: "or_expr", check: &orCheck{cs: []check{ts[0].check, ts[2].check}}}
}

// parseText parses a rule in the policy language (oslo's
// _parse_text_rule). The empty rule allows everybody.
func parseText(rule string) (check, error) {
	if rule == "" {
		return trueCheck{}, nil
	}
	toks, err := tokenize(rule)
	if err != nil {
		return nil, err
	}
	var stack []token
	for _, t := range toks {
		stack = append(stack, t)
		stack = reduceAll(stack)
	}
	if len(stack) != 1 {
		return nil, syntaxErr("%q does not parse", rule)
	}
	switch stack[0].kind {
	case "check", "and_expr", "or_expr":
		return stack[0].check, nil
	}
	// oslo returns the bare token here and fails when the rule is used.
	return nil, syntaxErr("%q is not a check", rule)
}

func reduceAll(stack []token) []token {
	for {
		reduced := false
		for _, r := range reducers {
			n := len(r.pattern)
			if len(stack) < n || !endsWith(stack, r.pattern) {
				continue
			}
			t := r.reduce(stack[len(stack)-n:])
			stack = append(stack[:len(stack)-n], t)
			reduced = true
			break
		}
		if !reduced {
			return stack
		}
	}
}

func endsWith(stack []token, pattern []string) bool {
	base := len(stack) - len(pattern)
	for i, k := range pattern {
		if stack[base+i].kind != k {
			return false
		}
	}
	return true
}

// parseList parses the legacy list-of-lists form (oslo's
// _parse_list_rule): the outer list is joined by "or", each inner list by
// "and", and each string is one check (no operators, no parentheses). The
// empty list allows everybody; a list of only empty lists nobody.
func parseList(rule []any) (check, error) {
	if len(rule) == 0 {
		return trueCheck{}, nil
	}
	var or []check
	for _, inner := range rule {
		var strs []any
		switch v := inner.(type) {
		case string:
			strs = []any{v}
		case []any:
			strs = v
		default:
			return nil, syntaxErr("a list rule holds strings and lists of strings, not %T", inner)
		}
		if len(strs) == 0 {
			continue
		}
		var and []check
		for _, s := range strs {
			str, ok := s.(string)
			if !ok {
				return nil, syntaxErr("a list rule's inner list holds strings, not %T", s)
			}
			c, err := parseCheck(str)
			if err != nil {
				return nil, err
			}
			and = append(and, c)
		}
		if len(and) == 1 {
			or = append(or, and[0])
		} else {
			or = append(or, &andCheck{cs: and})
		}
	}
	switch len(or) {
	case 0:
		return falseCheck{}, nil
	case 1:
		return or[0], nil
	}
	return &orCheck{cs: or}, nil
}

// references calls fn with the name of every rule c refers to.
func references(c check, fn func(string)) {
	switch c := c.(type) {
	case *ruleCheck:
		fn(c.name)
	case *notCheck:
		references(c.c, fn)
	case *andCheck:
		for _, x := range c.cs {
			references(x, fn)
		}
	case *orCheck:
		for _, x := range c.cs {
			references(x, fn)
		}
	}
}
