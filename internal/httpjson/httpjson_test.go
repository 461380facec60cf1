package httpjson

import (
	"math"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := Write(rec, 201, map[string]string{"a": "<b>"}); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 201 || rec.Body.String() != "{\"a\":\"<b>\"}\n" || rec.Header().Get("Content-Type") != "application/json" ||
		rec.Header().Get("Content-Length") != "12" {
		t.Fatalf("%d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
	rec = httptest.NewRecorder()
	if err := Write(rec, 200, math.NaN()); err == nil || rec.Body.Len() != 0 {
		t.Fatalf("unencodable value: err %v, body %q", err, rec.Body.String())
	}
}
