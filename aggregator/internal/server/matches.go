package server

import (
	"net/http"
	"strings"

	"github.com/edgetrack/edgetrack/aggregator/internal/query"
	"github.com/edgetrack/edgetrack/aggregator/internal/store"
)

// Cookie-sync matches are events the cookiesync rule emits: source
// cookiesync, category "cookiesync", name "match", session = our uid, id
// "cs:<partner>:<partner id>:<uid>". Partner names and ids never contain ':'
// (the rule refuses them), so the id splits unambiguously.
const (
	matchCategory = "cookiesync"
	matchName     = "match"
	matchIDPrefix = "cs:"
	// maxMatchScan bounds how many match events one lookup reads.
	maxMatchScan = 10000
)

// matchesParams are the query parameters GET /matches reads.
var matchesParams = []string{"uid", "partner", "pi"}

// matches answers the seed's `matches` call:
//
//	GET /matches?uid=<our uid>            → {"<partner>": "<partner id>", …}
//	GET /matches?partner=<p>&pi=<their id> → {"uid": "<our uid>"}
//
// Each partner's latest match wins.
func (s *Server) matches(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := query.CheckParams(q, matchesParams); err != nil {
		return statusError(http.StatusBadRequest, err)
	}
	uid, partner, pi := q.Get("uid"), q.Get("partner"), q.Get("pi")
	switch {
	case uid != "" && partner == "" && pi == "":
		if !matchToken(uid) {
			return errorf(http.StatusBadRequest, "uid %q is not a user id", uid)
		}
		return s.matchesByUID(w, r, uid)
	case uid == "" && partner != "" && pi != "":
		if !matchToken(partner) || !matchToken(pi) {
			return errorf(http.StatusBadRequest, "partner and pi must be non-empty and may not contain ':' or control characters")
		}
		return s.matchByPartnerID(w, r, partner, pi)
	default:
		return errorf(http.StatusBadRequest, "give either uid, or partner and pi")
	}
}

func (s *Server) matchesByUID(w http.ResponseWriter, r *http.Request, uid string) error {
	out := map[string]string{}
	cursor := ""
	for read := 0; read < maxMatchScan; {
		res, err := s.store.Query(r.Context(), store.Query{Session: uid, Category: matchCategory, Name: matchName, Limit: 1000, Cursor: cursor})
		if err != nil {
			return storeError(err)
		}
		for _, ev := range res.Events { // newest first: the first per partner is the latest
			if p, pid, _, ok := splitMatchID(ev.GetId()); ok {
				if _, seen := out[p]; !seen {
					out[p] = pid
				}
			}
		}
		read += len(res.Events)
		if res.Next == "" {
			break
		}
		cursor = res.Next
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) matchByPartnerID(w http.ResponseWriter, r *http.Request, partner, pi string) error {
	evs, err := s.store.IDPrefix(r.Context(), matchIDPrefix+partner+":"+pi+":", maxMatchScan)
	if err != nil {
		return storeError(err)
	}
	uid, newest := "", int64(0)
	for _, ev := range evs {
		if _, _, u, ok := splitMatchID(ev.GetId()); ok && (uid == "" || store.EventTime(ev) > newest) {
			uid, newest = u, store.EventTime(ev)
		}
	}
	if uid == "" {
		return errorf(http.StatusNotFound, "no match for partner %q id %q", partner, pi)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"uid": uid})
}

// splitMatchID splits "cs:<partner>:<pi>:<uid>".
func splitMatchID(id string) (partner, pi, uid string, ok bool) {
	rest, found := strings.CutPrefix(id, matchIDPrefix)
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

func matchToken(s string) bool {
	if s == "" || len(s) > 1024 {
		return false
	}
	for _, c := range s {
		if c == ':' || c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
