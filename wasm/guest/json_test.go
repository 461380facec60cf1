package guest

import (
	"encoding/json"
	"testing"
)

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "ctl\x01\x1f\n\r\t", "é ü 日本", "\u2028\u2029", "bad\xffutf8", "\x00"} {
		got := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: %s is not JSON: %v", s, got, err)
		}
		want, _ := json.Marshal(s) // encoding/json also maps invalid UTF-8 to U+FFFD
		var wantBack string
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q: round trip %q, want %q", s, back, wantBack)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("hello\n\"x\"")
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendJSONString(nil, s)
		if !json.Valid(got) {
			t.Fatalf("%q -> invalid JSON %s", s, got)
		}
	})
}

func TestJSONObject(t *testing.T) {
	o := NewJSONObject([]byte("prefix"))
	o.String("a", "x")
	o.Uint("b", 7)
	o.Int("c", -1)
	o.Bool("d", true)
	o.Raw("e", []byte(`{"k":[1]}`))
	buf, obj := o.Finish()
	if string(buf) != `prefix`+string(obj) || string(obj) != `{"a":"x","b":7,"c":-1,"d":true,"e":{"k":[1]}}` {
		t.Fatalf("buf %s obj %s", buf, obj)
	}
	empty := NewJSONObject(nil)
	if _, obj := empty.Finish(); string(obj) != "{}" {
		t.Fatalf("empty object %s", obj)
	}
}
