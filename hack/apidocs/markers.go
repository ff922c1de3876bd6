package main

import (
	"fmt"
	"strconv"
	"strings"
)

// markers are the +marker lines of one doc comment, without the "+", in
// source order: "optional", "kubebuilder:validation:Minimum=0",
// "kubebuilder:resource:shortName=fw,categories=podkit".
type markers []string

// splitDoc separates a comment's text (ast.CommentGroup.Text) into its prose
// and its +marker lines.
func splitDoc(text string) (doc string, ms markers) {
	var prose []string
	for line := range strings.SplitSeq(text, "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "+") && len(t) > 1 {
			ms = append(ms, t[1:])
			continue
		}
		prose = append(prose, line)
	}
	return strings.TrimSpace(strings.Join(prose, "\n")), ms
}

// has reports whether the marker name is present without a value.
func (ms markers) has(name string) bool {
	for _, m := range ms {
		if m == name || m == name+"=true" {
			return true
		}
	}
	return false
}

// value returns the text after "name=" of the first such marker.
func (ms markers) value(name string) (string, bool) {
	for _, m := range ms {
		if v, ok := strings.CutPrefix(m, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// args returns the arguments of every "name:key=value,key=value" marker, in
// order, for markers such as kubebuilder:resource and
// kubebuilder:validation:XValidation.
func (ms markers) args(name string) ([]markerArgs, error) {
	var all []markerArgs
	for _, m := range ms {
		rest, ok := strings.CutPrefix(m, name+":")
		if !ok {
			continue
		}
		a, err := parseArgs(rest)
		if err != nil {
			return nil, fmt.Errorf("marker +%s: %w", m, err)
		}
		all = append(all, a)
	}
	return all, nil
}

// markerArgs are the key=value arguments of one marker, in order.
type markerArgs []markerArg

type markerArg struct{ key, value string }

func (a markerArgs) get(key string) string {
	for _, kv := range a {
		if kv.key == key {
			return kv.value
		}
	}
	return ""
}

// parseArgs parses controller-gen's argument syntax: comma-separated
// key=value pairs whose value is a Go double-quoted string, a backquoted
// string, a {…} literal with balanced braces, or bare text up to the next
// comma. Quoted values are returned unquoted.
func parseArgs(s string) (markerArgs, error) {
	var out markerArgs
	for s != "" {
		key, rest, ok := strings.Cut(s, "=")
		if !ok || key == "" || strings.ContainsAny(key, ",\"`{}") {
			return nil, fmt.Errorf("argument %q: want key=value", s)
		}
		var value string
		switch {
		case strings.HasPrefix(rest, `"`):
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, fmt.Errorf("argument %s: unterminated or malformed quoted string", key)
			}
			value, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		case strings.HasPrefix(rest, "`"):
			end := strings.IndexByte(rest[1:], '`')
			if end < 0 {
				return nil, fmt.Errorf("argument %s: unterminated backquoted string", key)
			}
			value, rest = rest[1:end+1], rest[end+2:]
		case strings.HasPrefix(rest, "{"):
			depth, end := 0, -1
			for i, c := range rest {
				if c == '{' {
					depth++
				} else if c == '}' {
					if depth--; depth == 0 {
						end = i
						break
					}
				}
			}
			if end < 0 {
				return nil, fmt.Errorf("argument %s: unbalanced braces", key)
			}
			value, rest = rest[:end+1], rest[end+1:]
		default:
			value, s, _ = strings.Cut(rest, ",")
			out = append(out, markerArg{key, value})
			continue
		}
		if rest != "" && rest[0] != ',' {
			return nil, fmt.Errorf("argument %s: want ',' after the value, got %q", key, rest)
		}
		out = append(out, markerArg{key, value})
		s = strings.TrimPrefix(rest, ",")
	}
	return out, nil
}
