package eye

// Scan exposes scan to the tests of package eye_test.
func Scan(r *Rule, body []byte) (elems int, why string, tooDeep bool) { return r.scan(body) }
