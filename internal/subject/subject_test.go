package subject

import "testing"

func TestSetAgreesWithMatches(t *testing.T) {
	subjects := []Subject{{Session, "s1"}, {UID, "cookie-uid"}, {User, "42"}, {Device, "d-7"}}
	var entries []Entry
	for _, s := range subjects {
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, Entry{Kind: s.Kind, Hash: s.Hash()})
	}
	set := NewSet(entries)
	if set.Len() != 4 {
		t.Fatalf("Len = %d", set.Len())
	}
	events := []struct {
		session, data string
	}{
		{"s1", `{}`}, {"s2", `{}`}, {"cookie-uid", ``}, {"x", `{"user_id":42}`}, {"x", `{"user_id":"42"}`},
		{"x", `{"user_id":421}`}, {"x", `{"device_id":"d-7"}`}, {"x", `{"device":"d-7"}`}, {"", `{"nested":{"user_id":42}}`},
		{"", `not json`},
	}
	for _, ev := range events {
		want := false
		for _, s := range subjects {
			want = want || s.Matches(ev.session, []byte(ev.data))
		}
		if got := set.Suppressed(ev.session, []byte(ev.data)); got != want {
			t.Errorf("Suppressed(%q, %s) = %v, Matches says %v", ev.session, ev.data, got, want)
		}
	}
	if (Subject{UID, "a"}).Hash() != (Subject{Session, "a"}).Hash() {
		t.Error("a uid and a session of the same value hash differently")
	}
	if (Subject{User, "a"}).Hash() == (Subject{Session, "a"}).Hash() {
		t.Error("a user and a session of the same value hash the same")
	}
	var empty *Set
	if empty.Suppressed("s1", nil) || empty.Len() != 0 {
		t.Error("a nil set suppresses")
	}
}

func TestValidate(t *testing.T) {
	for _, s := range []Subject{{"email", "x"}, {Session, ""}, {User, "a\x00"}, {Device, "\xff"}, {Session, string(make([]byte, 257))}} {
		if s.Validate() == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// FuzzSetAgreesWithMatches: for any event (session, data from the network)
// and any subject, the hashed set and the plain match agree.
func FuzzSetAgreesWithMatches(f *testing.F) {
	f.Add("session_id", "s1", "s1", []byte(`{}`))
	f.Add("user_id", "42", "x", []byte(`{"user_id":42}`))
	f.Add("device_id", "d", "", []byte(`{"device_id":"d","user_id":"d"}`))
	f.Add("uid", "u", "u", []byte(`not json`))
	f.Add("user_id", "1e2", "", []byte(`{"user_id":1e2}`))
	f.Fuzz(func(t *testing.T, kind, value, session string, data []byte) {
		s := Subject{Kind: Kind(kind), Value: value}
		if s.Validate() != nil {
			return
		}
		set := NewSet([]Entry{{Kind: s.Kind, Hash: s.Hash()}})
		if got, want := set.Suppressed(session, data), s.Matches(session, data); got != want {
			t.Fatalf("subject %q, event (%q, %q): Suppressed %v, Matches %v", s, session, data, got, want)
		}
	})
}
