package barrier

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// roleStatusJSON is the part of a v1alpha1.TaskRoleStatus that the barrier
// reads: which task has which pod IP.
type roleStatusJSON struct {
	Name         string           `json:"name"`
	TaskStatuses []taskStatusJSON `json:"taskStatuses"`
}

// taskStatusJSON is the part of a v1alpha1.TaskStatus that the barrier reads.
type taskStatusJSON struct {
	Index           int32 `json:"index"`
	DeletionPending bool  `json:"deletionPending"`
	AttemptStatus   struct {
		PodIP *string `json:"podIP"`
	} `json:"attemptStatus"`
}

// decodeRoleStatuses reads the barrier's fields from the JSON of
// []v1alpha1.TaskRoleStatus, with encoding/json's meaning (the meaning
// v1alpha1.FrameworkAttemptStatus.UnmarshalJSON gives them) but without
// decoding the fields it does not need. A 1000-task status is about 400 KiB
// of JSON, which every waiter reads at release: scanStatuses reads the
// common shape a few times faster than encoding/json, and anything it does
// not expect (escapes, keys differing in case, duplicate keys, unusual
// numbers) goes to encoding/json.
func decodeRoleStatuses(data []byte) ([]roleStatusJSON, error) {
	if roles, ok := scanRoleStatuses(data); ok {
		return roles, nil
	}
	var roles []roleStatusJSON
	if err := json.Unmarshal(data, &roles); err != nil {
		return nil, fmt.Errorf("decode task role statuses: %w", err)
	}
	return roles, nil
}

// scanRoleStatuses is decodeRoleStatuses's fast path: ok is false when data
// is not valid JSON of the plain shape it handles, and the result must then
// come from encoding/json.
func scanRoleStatuses(data []byte) (roles []roleStatusJSON, ok bool) {
	s := scanner{data: data}
	s.space()
	if !s.consume('[') {
		return nil, false
	}
	roles = []roleStatusJSON{}
	s.space()
	if s.consume(']') {
		return roles, s.end()
	}
	for {
		var r roleStatusJSON
		if !s.role(&r) {
			return nil, false
		}
		roles = append(roles, r)
		s.space()
		if s.consume(']') {
			return roles, s.end()
		}
		if !s.consume(',') {
			return nil, false
		}
	}
}

// scanner walks JSON strictly: every method returns false at the first
// byte it does not accept.
type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) consume(c byte) bool {
	if s.pos < len(s.data) && s.data[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.space()
	return s.pos == len(s.data)
}

// object calls field for each key of an object, positioned at the key's
// value; field must consume the value. A key seen twice, or one that
// matches a wanted key only when case is ignored (encoding/json would take
// it), is not for the fast path.
func (s *scanner) object(wanted []string, field func(key string) bool) bool {
	s.space()
	if !s.consume('{') {
		return false
	}
	var seen uint8
	s.space()
	if s.consume('}') {
		return true
	}
	for {
		s.space()
		key, ok := s.plainBytes()
		if !ok {
			return false
		}
		s.space()
		if !s.consume(':') {
			return false
		}
		s.space()
		handled := false
		for i, w := range wanted {
			if string(key) == w {
				if seen&(1<<i) != 0 || !field(w) {
					return false
				}
				seen |= 1 << i
				handled = true
				break
			}
			if bytes.EqualFold(key, []byte(w)) {
				return false
			}
		}
		if !handled && !s.skipValue() {
			return false
		}
		s.space()
		if s.consume('}') {
			return true
		}
		if !s.consume(',') {
			return false
		}
	}
}

func (s *scanner) role(r *roleStatusJSON) bool {
	return s.object([]string{"name", "taskStatuses"}, func(key string) bool {
		if key == "name" {
			name, ok := s.plainString()
			r.Name = name
			return ok
		}
		if !s.consume('[') {
			return false
		}
		r.TaskStatuses = []taskStatusJSON{}
		s.space()
		if s.consume(']') {
			return true
		}
		for {
			var t taskStatusJSON
			if !s.task(&t) {
				return false
			}
			r.TaskStatuses = append(r.TaskStatuses, t)
			s.space()
			if s.consume(']') {
				return true
			}
			if !s.consume(',') {
				return false
			}
		}
	})
}

func (s *scanner) task(t *taskStatusJSON) bool {
	return s.object([]string{"index", "deletionPending", "attemptStatus"}, func(key string) bool {
		switch key {
		case "index":
			return s.int32(&t.Index)
		case "deletionPending":
			if s.literal("true") {
				t.DeletionPending = true
				return true
			}
			return s.literal("false")
		default:
			return s.object([]string{"podIP"}, func(string) bool {
				if s.literal("null") {
					t.AttemptStatus.PodIP = nil
					return true
				}
				ip, ok := s.plainString()
				t.AttemptStatus.PodIP = &ip
				return ok
			})
		}
	})
}

// plainString is plainBytes as a string.
func (s *scanner) plainString() (string, bool) {
	b, ok := s.plainBytes()
	return string(b), ok
}

// plainBytes reads a string of ASCII without escapes or control
// characters: encoding/json replaces invalid UTF-8, and folds keys with
// Unicode's rules.
func (s *scanner) plainBytes() ([]byte, bool) {
	if !s.consume('"') {
		return nil, false
	}
	start := s.pos
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return s.data[start : s.pos-1], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		s.pos++
	}
	return nil, false
}

// int32 reads an integer in int32's range, written as JSON writes one.
func (s *scanner) int32(v *int32) bool {
	start := s.pos
	s.consume('-')
	digits := s.pos
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
	}
	if s.pos == digits || (s.data[digits] == '0' && s.pos-digits > 1) {
		return false
	}
	if s.pos < len(s.data) && (s.data[s.pos] == '.' || s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		return false
	}
	n, err := strconv.ParseInt(string(s.data[start:s.pos]), 10, 32)
	if err != nil {
		return false
	}
	*v = int32(n)
	return true
}

func (s *scanner) literal(word string) bool {
	if bytes.HasPrefix(s.data[s.pos:], []byte(word)) {
		s.pos += len(word)
		return true
	}
	return false
}

// skipValue passes over any JSON value, checking its syntax.
func (s *scanner) skipValue() bool {
	s.space()
	if s.pos >= len(s.data) {
		return false
	}
	switch c := s.data[s.pos]; {
	case c == '"':
		return s.skipString()
	case c == '{':
		s.pos++
		s.space()
		if s.consume('}') {
			return true
		}
		for {
			s.space()
			if !s.skipString() {
				return false
			}
			s.space()
			if !s.consume(':') || !s.skipValue() {
				return false
			}
			s.space()
			if s.consume('}') {
				return true
			}
			if !s.consume(',') {
				return false
			}
		}
	case c == '[':
		s.pos++
		s.space()
		if s.consume(']') {
			return true
		}
		for {
			if !s.skipValue() {
				return false
			}
			s.space()
			if s.consume(']') {
				return true
			}
			if !s.consume(',') {
				return false
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		return s.skipNumber()
	}
}

// skipString passes over a string, escapes included.
func (s *scanner) skipString() bool {
	if !s.consume('"') {
		return false
	}
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		s.pos++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if s.pos >= len(s.data) {
				return false
			}
			e := s.data[s.pos]
			s.pos++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if s.pos+4 > len(s.data) {
					return false
				}
				for _, h := range s.data[s.pos : s.pos+4] {
					if !isHex(h) {
						return false
					}
				}
				s.pos += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// skipNumber passes over a number as JSON's grammar defines it.
func (s *scanner) skipNumber() bool {
	s.consume('-')
	digits := func() int {
		start := s.pos
		for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
			s.pos++
		}
		return s.pos - start
	}
	start := s.pos
	n := digits()
	if n == 0 || (n > 1 && s.data[start] == '0') {
		return false
	}
	if s.consume('.') && digits() == 0 {
		return false
	}
	if s.consume('e') || s.consume('E') {
		if !s.consume('+') {
			s.consume('-')
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}
