// Package cookiesync is the built-in cookie-sync rule: it matches our user id
// (the uid cookie) with a partner's user id by redirecting the browser between
// the two sides, after the Rockstat cookie-sync service.
//
// # Routes and flows
//
// The host routes these GET paths to the rule; the rule tells them apart by
// path:
//
//	/cookiesync/i    /cs/i  init  ?p=partner
//	/cookiesync/sync /cs/s  sync  ?p=partner&pi=<partner's id>
//	/cookiesync/done /cs/d  done  ?p=partner&pi=<partner's id>&ui=<our id>
//
// A sync runs init → sync → done, started from either side:
//
//   - init:local → sync:remote → done:local. Our page loads /cs/i?p=acme; we
//     answer 302 to acme's sync_url with our uid; acme records the match and
//     sends the browser to our /cs/d?p=acme&pi=<acme id>&ui=<our uid>; we
//     check ui against the cookie, record the match and answer a pixel.
//   - init:remote → sync:local → done:remote. Acme's init sends the browser to
//     our /cs/s?p=acme&pi=<acme id>; we record the match and answer 302 to
//     acme's done_url with both ids.
//
// Every recorded match is one event (source cookiesync, category
// "cookiesync", name "match", id "cs:<partner>:<pi>:<uid>" so that repeats
// deduplicate, data {"uid","partner","partner_id","flow"}). A sync's match
// rides on a 302: the host must make events durable for 3xx verdicts as well
// as 2xx ones.
//
// # Settings (abi.Config)
//
//	partners        one value per partner: name|sync_url|done_url|host1,host2
//	                name: 1–64 of [A-Za-z0-9._-], unique ignoring case.
//	                sync_url: the partner's sync endpoint; must contain {uid}
//	                (our id) and may not contain {pi} (unknown at init).
//	                done_url: the partner's done endpoint; must contain {uid}
//	                and may contain {pi} (the partner's own id).
//	                Both absolute https URLs (http only with allow_http),
//	                without userinfo, whose host (with port, if any) is one of
//	                the allowed hosts; no placeholder in the scheme or host,
//	                and no '{' or '}' other than {uid} and {pi}.
//	allow_http      "true" also allows http:// partner URLs (default false)
//	cookie_max_age  uid cookie lifetime in seconds, 1–34560000 (400 days, the
//	                browsers' cap); default 31536000 (one year)
//	cookie_domain   Domain attribute of the uid cookie; default none (host-only)
//	vendor_id       our IAB TCF vendor id, 1–65535; required when gdpr_default
//	                is applies. Without it a gdpr=1 request is refused with
//	                451, as vendor consent cannot be established.
//	gdpr_default    required: what a request without a gdpr parameter means,
//	                "applies" (as gdpr=1, so a consent string is needed) or
//	                "not_applies"
//	max_id_bytes    longest pi or ui accepted, 1–1024; default 128
//
// Every setting is checked by New, which reports all problems at once;
// unknown settings, settings given twice and single-valued settings with
// several values are errors too.
//
// # What a request gets
//
// The order of checks is: path (404), method (405), a repeated p, pi, ui,
// gdpr or gdpr_consent (pixel), missing p (400), consent (400/451), opt-out (pixel), partner
// (pixel), ids (pixel), ui against the cookie (done only: 400). Only a request
// that passes them all gets a cookie, an event or a Location. A flow reads
// only its own parameters: pi and ui on init, and ui on sync, are ignored,
// since they go nowhere.
//
//   - Success: init 302 to sync_url; sync 302 to done_url with one event; done
//     200 pixel with one event. Each sets the uid cookie again (refreshing its
//     lifetime): Secure, HttpOnly, SameSite=None, Path=/, Max-Age, Domain when
//     configured.
//   - The pixel (200, a 1×1 transparent GIF, no Location, no cookie, no
//     event): whatever the Rockstat service answered with a pixel — unknown
//     partner, bad or missing pi/ui, steering attempts, repeated parameters,
//     and opt-out. A browser that was sent here by an image tag or a chain of
//     redirects gets an image either way; the reason is for the operator.
//   - 400: the caller's own bug — no p, a gdpr value other than 0 or 1, a
//     consent string that is missing (under gdpr) or undecodable, and a done
//     whose ui is not the id in our cookie (or there is no cookie).
//   - 451: a decodable consent string that does not allow storage (purpose 1
//     and vendor consent for vendor_id are both required).
//
// Every answer but success carries a machine-readable reason (the Reason*
// constants) in the header X-Edgetrack-Reason and at the start of
// Verdict.Message, so the host can log and count it. Every answer carries
// Cache-Control: no-store, since redirects and pixels carry ids.
//
// # Safety: the target never comes from the request
//
// A Location is only ever a configured template, validated by New, with ids
// inserted query-escaped. Ids are accepted only as 1–max_id_bytes bytes of
// [A-Za-z0-9._~-] and not made only of dots; values that look like steering
// ("//", ":", "\", "@", CR, LF, "%0d", "%0a", whitespace) are counted as
// such. The partner must be exactly a configured name (case matters). The
// built Location is read again and must have the template's scheme and host,
// or no Location is given; that reader (splitOrigin) refuses anything RFC
// 3986 and browsers might read differently (backslashes, userinfo, bytes
// outside printable ASCII), and the tests check it against net/url, which
// the guest does not use (it is slow and large under TinyGo).
//
// # Consent
//
// gdpr=1 (or no gdpr with gdpr_default=applies) needs a TCF v2 consent string
// in gdpr_consent whose core segment gives consent to purpose 1 (storage) and
// to vendor_id. It is checked before anything is written. gdpr=0 proceeds and
// ignores gdpr_consent. Publisher restrictions and legitimate-interest
// sections are not read.
//
// # Opt-out
//
// A cookie named optout, whatever its value, means the user opted out: every
// flow answers the pixel with reason opted_out, writes no cookie (the uid
// cookie is neither set nor refreshed) and records no match. init and sync do
// not redirect, since the redirect would carry an id to the partner.
//
// # The uid cookie
//
// uid is read from the Cookie header(s); the first uid cookie counts. A value
// of 1–64 bytes of [A-Za-z0-9._~-] is kept (ids from an earlier system
// survive); anything else is replaced by a new id: 128 random bits from
// host.Random as 32 lower-case hex digits.
package cookiesync
