package edgegroup

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache"
)

// FuzzServletParams feeds arbitrary query strings and passwords to the
// cache servlet's parameter check: it never panics, an accepted request
// is complete and consistent, the password is enforced, and an accepted
// flush can be written as a sync line and read back unchanged.
func FuzzServletParams(f *testing.F) {
	for _, seed := range []struct{ query, password string }{
		{"action=flush&key=home&group=live", ""},
		{"action=flush&key=home&group=live&password=secret", "secret"},
		{"action=flush&key=a%3Bb&group=live&forward=false&timestamp=1328196977070", ""},
		{"action=sync&group=live&since=1328196977070", ""},
		{"action=sync&group=live&since=-1", ""},
		{"action=flush&key=%0A&group=g", ""},
		{"action=flush&key=k&group=g&timestamp=99999999999999999999", ""},
		{"action=sync&action=flush&group=g;key=x", "p"},
		{"password=%00&action=sync&group=%7F", "\x00"},
	} {
		f.Add(seed.query, seed.password)
	}
	now := time.UnixMilli(1_700_000_000_000)
	f.Fuzz(func(t *testing.T, query, password string) {
		form, _ := url.ParseQuery(query)
		req, msg := parseServletRequest(form, password, now)
		if msg != "" {
			switch msg {
			case msgUnknownAction, msgPasswordRequired, msgInvalidPassword, msgNoKey, msgNoGroup,
				msgInvalidKey, msgInvalidGroup, msgInvalidSince, msgInvalidTimestamp:
			default:
				t.Fatalf("unexpected message %q", msg)
			}
			return
		}
		if req.Action != actionFlush && req.Action != actionSync {
			t.Fatalf("accepted action %q", req.Action)
		}
		if password != "" && form.Get(paramPassword) != password {
			t.Fatalf("accepted password %q, want %q", form.Get(paramPassword), password)
		}
		if req.Group == "" || !validName(req.Group, maxGroupLen) {
			t.Fatalf("accepted group %q", req.Group)
		}
		if req.Forward && form.Get(paramForward) != "" {
			if b, err := strconv.ParseBool(form.Get(paramForward)); err != nil || !b {
				t.Fatalf("forward=%q taken as true", form.Get(paramForward))
			}
		}
		switch req.Action {
		case actionFlush:
			if req.Key == "" || !validName(req.Key, maxKeyLen) || req.Time <= 0 {
				t.Fatalf("accepted flush %+v", req)
			}
			line := appendSyncLine(nil, cache.Flush{Key: req.Key, Time: req.Time})
			back, bad := parseSyncAnswer(line)
			if bad != 0 || len(back) != 1 || back[0].Key != req.Key || back[0].Time != req.Time {
				t.Fatalf("sync line %q read back as %+v (%d bad)", line, back, bad)
			}
		case actionSync:
			if req.Since < 0 {
				t.Fatalf("accepted since %d", req.Since)
			}
		}
	})
}

// FuzzSyncAnswer reads arbitrary peer answers: no panic, and every flush
// read is one that could be applied and written again.
func FuzzSyncAnswer(f *testing.F) {
	f.Add([]byte("home;1000\nsection:/politik;2000\r\n"))
	f.Add([]byte(";5\nx;\n;\n\n\na;b;c;7"))
	f.Add([]byte("k;-1\nk;1e3\nk\x00;4\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		flushes, _ := parseSyncAnswer(body)
		for _, fl := range flushes {
			if fl.Key == "" || fl.Time <= 0 || !validName(fl.Key, maxKeyLen) {
				t.Fatalf("read %+v", fl)
			}
			back, bad := parseSyncAnswer(appendSyncLine(nil, fl))
			if bad != 0 || len(back) != 1 || back[0] != fl {
				t.Fatalf("%+v does not round-trip: %+v", fl, back)
			}
		}
	})
}
