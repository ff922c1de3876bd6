package main

import (
	"go/doc/comment"
	"strings"
)

// Doc comments are parsed with go/doc/comment (paragraphs, lists, code
// blocks, [Name] links) and printed as Markdown here rather than with
// comment.Printer.Markdown, which escapes every '_' and would turn
// FC_POD_NAME into FC\_POD\_NAME in the file people grep.

func (r *renderer) parseDoc(text string) *comment.Doc {
	p := comment.Parser{
		LookupSym: func(recv, name string) bool {
			return recv == "" && r.seen[name]
		},
	}
	return p.Parse(text)
}

// blockDoc renders a doc comment as Markdown blocks.
func (r *renderer) blockDoc(text string) string {
	var blocks []string
	for _, b := range r.parseDoc(text).Content {
		switch b := b.(type) {
		case *comment.Paragraph:
			blocks = append(blocks, r.inline(b.Text))
		case *comment.Heading:
			blocks = append(blocks, "#### "+r.inline(b.Text))
		case *comment.Code:
			blocks = append(blocks, "```\n"+strings.TrimSuffix(b.Text, "\n")+"\n```")
		case *comment.List:
			var items []string
			for _, it := range b.Items {
				items = append(items, listMarker(it)+r.listItem(it, " "))
			}
			blocks = append(blocks, strings.Join(items, "\n"))
		}
	}
	return strings.Join(blocks, "\n\n")
}

// cellDoc renders a doc comment on one line, for a table cell.
func (r *renderer) cellDoc(text string) string {
	var parts []string
	for _, b := range r.parseDoc(text).Content {
		switch b := b.(type) {
		case *comment.Paragraph:
			parts = append(parts, r.inline(b.Text))
		case *comment.Heading:
			parts = append(parts, "**"+r.inline(b.Text)+"**")
		case *comment.Code:
			var lines []string
			for l := range strings.SplitSeq(strings.TrimSuffix(b.Text, "\n"), "\n") {
				lines = append(lines, code(l))
			}
			parts = append(parts, strings.Join(lines, "<br>"))
		case *comment.List:
			var items []string
			for _, it := range b.Items {
				items = append(items, listMarker(it)+r.listItem(it, " "))
			}
			parts = append(parts, strings.Join(items, "<br>"))
		}
	}
	return strings.Join(parts, "<br><br>")
}

func listMarker(it *comment.ListItem) string {
	if it.Number != "" {
		return it.Number + ". "
	}
	return "- "
}

func (r *renderer) listItem(it *comment.ListItem, sep string) string {
	var parts []string
	for _, b := range it.Content {
		if p, ok := b.(*comment.Paragraph); ok {
			parts = append(parts, r.inline(p.Text))
		}
	}
	return strings.Join(parts, sep)
}

// inline renders text on one line: a doc comment's line breaks are only
// wrapping.
func (r *renderer) inline(text []comment.Text) string {
	var b strings.Builder
	for _, t := range text {
		switch t := t.(type) {
		case comment.Plain:
			b.WriteString(escapeText(string(t)))
		case comment.Italic:
			b.WriteString("*" + escapeText(string(t)) + "*")
		case *comment.Link:
			b.WriteString("[" + r.inline(t.Text) + "](" + t.URL + ")")
		case *comment.DocLink:
			if t.ImportPath == "" && t.Recv == "" {
				b.WriteString("[" + r.inline(t.Text) + "](#" + anchor(t.Name) + ")")
			} else {
				b.WriteString(r.inline(t.Text))
			}
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// escapeText escapes what Markdown would read as markup in prose, and
// nothing else: emphasis characters that are not inside a word, HTML tags,
// and link brackets.
func escapeText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		var prev, next byte = ' ', ' '
		if i > 0 {
			prev = s[i-1]
		}
		if i+1 < len(s) {
			next = s[i+1]
		}
		switch {
		case c == '*', c == '\\' && isPunct(next):
			b.WriteByte('\\')
		case c == '_' && !(isWord(prev) && isWord(next)):
			b.WriteByte('\\')
		case c == '<' && (isLetter(next) || next == '/' || next == '!' || next == '?'):
			b.WriteString("&lt;")
			continue
		case c == ']' && (next == '(' || next == '['):
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isWord(c byte) bool   { return isLetter(c) || c >= '0' && c <= '9' }
func isPunct(c byte) bool  { return strings.IndexByte("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) >= 0 }
