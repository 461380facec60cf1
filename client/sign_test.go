package client

import (
	"crypto/md5"
	"encoding/hex"
	"testing"
)

// The public test vector of the Hamustro protocol.
func TestSignPublicVector(t *testing.T) {
	got := Sign("1454514088", []byte("something"), "ultrasafesecret")
	const want = "DAfTAP+9T/K/N08k+nwRTWNpfacimS8DJcQG1I4+Moo="
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestSign(t *testing.T) {
	base := Sign("1454514088", []byte("something"), "ultrasafesecret")
	for _, tc := range []struct {
		name         string
		time, secret string
		body         []byte
	}{
		{"other time", "1454514089", "ultrasafesecret", []byte("something")},
		{"other body", "1454514088", "ultrasafesecret", []byte("somethinG")},
		{"other secret", "1454514088", "ultrasafesecreT", []byte("something")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sign(tc.time, tc.body, tc.secret); got == base || len(got) != 44 {
				t.Fatalf("Sign = %q, want a different 44-character signature than %q", got, base)
			}
		})
	}
}

// Golden values computed with coreutils:
//
//	d=$(printf %s device-1 | sha256sum | cut -d' ' -f1)
//	printf %s "$d:client-1:17.4:2.3.0" | md5sum
func TestSessionID(t *testing.T) {
	const (
		wantDevice  = "03204de92e11fc8c528139be419065920eb83dbff1a4663bbea455aa6e9702bd"
		wantSession = "d055f27e22ba6a7603cb4a7a05aaae71"
	)
	if got := HashDeviceID("device-1"); got != wantDevice {
		t.Errorf("HashDeviceID = %s, want %s", got, wantDevice)
	}
	if got := SessionID("device-1", "client-1", "17.4", "2.3.0"); got != wantSession {
		t.Errorf("SessionID = %s, want %s", got, wantSession)
	}
	// The proto's form: md5hex of the Collection's own (hashed) device_id.
	sum := md5.Sum([]byte(wantDevice + ":client-1:17.4:2.3.0"))
	if got := hex.EncodeToString(sum[:]); got != wantSession {
		t.Errorf("md5hex(collection fields) = %s, want %s", got, wantSession)
	}
	for _, other := range [][4]string{
		{"device-2", "client-1", "17.4", "2.3.0"},
		{"device-1", "client-2", "17.4", "2.3.0"},
		{"device-1", "client-1", "17.5", "2.3.0"},
		{"device-1", "client-1", "17.4", "2.3.1"},
	} {
		if got := SessionID(other[0], other[1], other[2], other[3]); got == wantSession {
			t.Errorf("SessionID%q = the session of different inputs", other)
		}
	}
}
