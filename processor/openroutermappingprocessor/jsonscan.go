package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import "unicode/utf8"

// A small validating JSON scanner over strings. The OpenRouter shapes
// ({"messages":[...]} and {"completion":...,"toolCalls":[...],...}) are
// normalized by slicing the original text, which needs only the boundaries
// of top-level members; encoding/json would decode every message to throw it
// away again. The scanner validates exactly what encoding/json's Valid does
// (FuzzScanMatchesEncodingJSON checks it), so a slice it returns is valid
// JSON.

const maxJSONDepth = 512

// strSafe[c] is true for bytes that may appear unescaped inside a string.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func skipWS(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the index just past the JSON value that starts at s[i]
// (leading whitespace allowed), or -1 if there is no valid value there.
func skipValue(s string, i, depth int) int {
	i = skipWS(s, i)
	if i >= len(s) {
		return -1
	}
	switch c := s[i]; {
	case c == '"':
		return skipString(s, i)
	case c == '{':
		if depth >= maxJSONDepth {
			return -1
		}
		i = skipWS(s, i+1)
		if i < len(s) && s[i] == '}' {
			return i + 1
		}
		for {
			if i >= len(s) || s[i] != '"' {
				return -1
			}
			if i = skipString(s, i); i < 0 {
				return -1
			}
			if i = skipWS(s, i); i >= len(s) || s[i] != ':' {
				return -1
			}
			if i = skipValue(s, i+1, depth+1); i < 0 {
				return -1
			}
			if i = skipWS(s, i); i >= len(s) {
				return -1
			}
			switch s[i] {
			case ',':
				i = skipWS(s, i+1)
			case '}':
				return i + 1
			default:
				return -1
			}
		}
	case c == '[':
		if depth >= maxJSONDepth {
			return -1
		}
		i = skipWS(s, i+1)
		if i < len(s) && s[i] == ']' {
			return i + 1
		}
		for {
			if i = skipValue(s, i, depth+1); i < 0 {
				return -1
			}
			if i = skipWS(s, i); i >= len(s) {
				return -1
			}
			switch s[i] {
			case ',':
				i++
			case ']':
				return i + 1
			default:
				return -1
			}
		}
	case c == 't':
		return skipLiteral(s, i, "true")
	case c == 'f':
		return skipLiteral(s, i, "false")
	case c == 'n':
		return skipLiteral(s, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(s, i)
	}
	return -1
}

func skipLiteral(s string, i int, lit string) int {
	if len(s)-i >= len(lit) && s[i:i+len(lit)] == lit {
		return i + len(lit)
	}
	return -1
}

// skipString returns the index past the string starting at s[i] == '"'.
func skipString(s string, i int) int {
	i++
	for i < len(s) {
		// Prompts are long runs of plain text: test 8 bytes at a time
		// for a quote, a backslash or a control character.
		for i+8 <= len(s) && !specialInWord(load64(s, i)) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if strSafe[c] {
			i++
			continue
		}
		switch c {
		case '"':
			return i + 1
		case '\\':
			if i+1 >= len(s) {
				return -1
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s) {
					return -1
				}
				for _, h := range []byte(s[i+2 : i+6]) {
					if !isHex(h) {
						return -1
					}
				}
				i += 6
			default:
				return -1
			}
		default: // control character
			return -1
		}
	}
	return -1
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func skipNumber(s string, i int) int {
	if s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return -1
	}
	switch {
	case s[i] == '0':
		i++
	case s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return -1
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return -1
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return -1
		}
	}
	return i
}

// validJSON reports whether s is one JSON value (with optional whitespace).
func validJSON(s string) bool {
	end := skipValue(s, 0, 0)
	return end >= 0 && skipWS(s, end) == len(s)
}

// forEachMember calls fn for each member of the JSON object that is the whole
// of s, with the raw key (between its quotes, still escaped) and the bounds
// of the raw value. It returns false if s is not a valid JSON object; fn may
// stop early by returning false (the rest is then not validated).
func forEachMember(s string, fn func(key string, start, end int) bool) bool {
	i := skipWS(s, 0)
	if i >= len(s) || s[i] != '{' {
		return false
	}
	i = skipWS(s, i+1)
	if i < len(s) && s[i] == '}' {
		return skipWS(s, i+1) == len(s)
	}
	for {
		if i >= len(s) || s[i] != '"' {
			return false
		}
		kEnd := skipString(s, i)
		if kEnd < 0 {
			return false
		}
		key := s[i+1 : kEnd-1]
		i = skipWS(s, kEnd)
		if i >= len(s) || s[i] != ':' {
			return false
		}
		vStart := skipWS(s, i+1)
		vEnd := skipValue(s, vStart, 1)
		if vEnd < 0 {
			return false
		}
		if !fn(key, vStart, vEnd) {
			return true
		}
		i = skipWS(s, vEnd)
		if i >= len(s) {
			return false
		}
		switch s[i] {
		case ',':
			i = skipWS(s, i+1)
		case '}':
			return skipWS(s, i+1) == len(s)
		default:
			return false
		}
	}
}

// forEachArrayElem calls fn with the bounds of each element of the JSON
// array that is the whole of s. Same contract as forEachMember.
func forEachArrayElem(s string, fn func(start, end int) bool) bool {
	i := skipWS(s, 0)
	if i >= len(s) || s[i] != '[' {
		return false
	}
	i = skipWS(s, i+1)
	if i < len(s) && s[i] == ']' {
		return skipWS(s, i+1) == len(s)
	}
	for {
		end := skipValue(s, i, 1)
		if end < 0 {
			return false
		}
		if !fn(i, end) {
			return true
		}
		i = skipWS(s, end)
		if i >= len(s) {
			return false
		}
		switch s[i] {
		case ',':
			i = skipWS(s, i+1)
		case ']':
			return skipWS(s, i+1) == len(s)
		default:
			return false
		}
	}
}

// unquote decodes a raw JSON string literal (with its quotes): plain ASCII
// without escapes is sliced, anything else goes through encoding/json
// (surrogate pairs, \/ and invalid UTF-8 are its business).
func unquote(raw string) (string, bool) {
	if len(raw) < 2 {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	for i := 0; i < len(inner); i++ {
		if inner[i] == '\\' || inner[i] >= utf8.RuneSelf {
			return unquoteSlow(raw)
		}
	}
	return inner, true
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// load64 reads 8 bytes of s at i, little-endian (compiled to one load).
func load64(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// specialInWord reports whether any byte of w is '"', '\\' or below 0x20
// (the exact "has zero byte" / "has byte less than n" bit tricks).
func specialInWord(w uint64) bool {
	q := w ^ (lsb * '"')
	b := w ^ (lsb * '\\')
	return ((q-lsb)&^q|(b-lsb)&^b|(w-lsb*0x20)&^w)&msb != 0
}
