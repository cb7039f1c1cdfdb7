package jsonenc

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "tab\tnl\ncr\r", "\x01\x1f", "emoji 🚀 rtl \u202e", "\u2028"} {
		got := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q -> %s: %v", s, got, err)
		}
		if back != s {
			t.Errorf("%q round-tripped to %q", s, back)
		}
	}
}

func TestAppendStringReplacesNULAndInvalidUTF8(t *testing.T) {
	got := AppendString([]byte("x"), "a\x00b\xffc")
	if string(got) != "x\"a\uFFFDb\uFFFDc\"" {
		t.Fatalf("got %s", got)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\x00", "\xff\xfe", `"\`, "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendString(nil, s)
		if !utf8.Valid(got) || !json.Valid(got) {
			t.Fatalf("%q -> invalid %q", s, got)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(s) && !containsNUL(s) && back != s {
			t.Fatalf("%q round-tripped to %q", s, back)
		}
	})
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}
