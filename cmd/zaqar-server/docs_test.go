package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestOperationsDoc_ListsEveryFlagWithItsDefault keeps the flag list of
// docs/operations.md ("Flags") exact: every flag of the binary is listed
// once with its default, and nothing else is listed.
func TestOperationsDoc_ListsEveryFlagWithItsDefault(t *testing.T) {
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "\n## Flags\n")
	if start < 0 {
		t.Fatal(`docs/operations.md has no "## Flags" section`)
	}
	section := doc[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	row := regexp.MustCompile("(?m)^\\| `-([a-z0-9-]+)` \\| ([^|]*) \\|")
	listed := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		name, def := m[1], strings.TrimSpace(m[2])
		if _, twice := listed[name]; twice {
			t.Errorf("-%s is listed twice", name)
		}
		switch {
		case def == `""`:
			def = ""
		case strings.HasPrefix(def, "`") && strings.HasSuffix(def, "`"):
			def = strings.Trim(def, "`")
		default:
			t.Errorf("-%s: default %s is neither `value` nor \"\"", name, def)
		}
		listed[name] = def
	}
	fs := newFlagSet(&options{})
	fs.VisitAll(func(f *flag.Flag) {
		def, ok := listed[f.Name]
		switch {
		case !ok:
			t.Errorf("-%s is not in docs/operations.md's flag list", f.Name)
		case def != f.DefValue:
			t.Errorf("-%s: the doc says default %q, the binary %q", f.Name, def, f.DefValue)
		}
		delete(listed, f.Name)
	})
	for name := range listed {
		t.Errorf("docs/operations.md lists -%s, which the binary does not have", name)
	}
}
