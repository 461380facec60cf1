package eventdata

import "testing"

func TestField(t *testing.T) {
	for _, c := range []struct {
		data, key, want string
		ok              bool
	}{
		{`{"user_id":"u1"}`, "user_id", "u1", true},
		{`{"user_id":42}`, "user_id", "42", true},
		{`{"user_id":"a\"b"}`, "user_id", `a"b`, true},
		{`{"user_id":null}`, "user_id", "", false},
		{`{"other":1}`, "user_id", "", false},
		{`{"nested":{"user_id":"x"}}`, "user_id", "", false},
		{`{"user_idx":"x"}`, "user_id", "", false},
		{`{"device_id":"d"}`, "device_id", "d", true},
		{`[1,2]`, "user_id", "", false},
		{`not json`, "user_id", "", false},
		{``, "user_id", "", false},
	} {
		got, ok := Field([]byte(c.data), c.key)
		if got != c.want || ok != c.ok {
			t.Errorf("Field(%s, %s) = %q, %v; want %q, %v", c.data, c.key, got, ok, c.want, c.ok)
		}
	}
}
