package syncer

import "testing"

// TestUserID: the user_id column is data's top-level user_id, by exact key.
func TestUserID(t *testing.T) {
	for _, c := range []struct {
		data string
		want any // string, or nil for NULL
	}{
		{`{"user_id":"u1","n":1}`, "u1"},
		{`{"user_id":"\u00e9\"x"}`, `é"x`},
		{`{"user_id":42}`, "42"},
		{`{"user_id":1e3}`, "1e3"},
		{`{"user_id":true}`, "true"},
		{`{"user_id":{"a":1}}`, `{"a":1}`},
		{`{"user_id":null}`, nil},
		{`{"user\u005fid":"esc"}`, "esc"},
		{`{"User_Id":"u"}`, nil},
		{`{"x":{"user_id":"nested"}}`, nil},
		{`[1,2]`, nil},
		{`not json`, nil},
	} {
		got := userID([]byte(c.data))
		switch {
		case c.want == nil && got != nil:
			t.Errorf("%s: user_id %q, want none", c.data, *got)
		case c.want != nil && (got == nil || *got != c.want):
			t.Errorf("%s: user_id %v, want %q", c.data, got, c.want)
		}
	}
}
