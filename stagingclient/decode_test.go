package stagingclient_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/delivery-edge/edge/stagingclient"
)

func TestDecodePage(t *testing.T) {
	ev := func(st int, extra string) string {
		return `{"sourceTime":` + itoa(st) + `,"kind":"document","id":"story1","uuid":"u","nodeType":"story","state":"published"` + extra + `}`
	}
	for _, tc := range []struct {
		name, body string
		since      int64
		wantErr    string // "" = valid
		check      func(t *testing.T, p stagingclient.Page)
	}{
		{name: "empty page", body: `{"events":[],"sourceTime":5}`, check: func(t *testing.T, p stagingclient.Page) {
			if upTo, more := p.UpTo(); upTo != 5 || more || p.Events == nil {
				t.Errorf("UpTo = %d, %v; events %#v", upTo, more, p.Events)
			}
		}},
		{name: "changedProperties absent, empty, listed", body: `{"events":[` + ev(1, ``) + `,` + ev(2, `,"changedProperties":[]`) + `,` +
			ev(3, `,"changedProperties":["a","b"]`) + `,` + ev(4, `,"changedProperties":null`) + `],"sourceTime":9}`,
			check: func(t *testing.T, p stagingclient.Page) {
				cp := func(i int) []string { return p.Events[i].ChangedProperties }
				if cp(0) != nil || cp(1) == nil || len(cp(1)) != 0 || strings.Join(cp(2), ",") != "a,b" || cp(3) != nil {
					t.Errorf("changedProperties: %#v %#v %#v %#v", cp(0), cp(1), cp(2), cp(3))
				}
				if upTo, more := p.UpTo(); upTo != 4 || !more {
					t.Errorf("UpTo = %d, %v, want 4, true", upTo, more)
				}
			}},
		{name: "unknown fields are ignored", body: `{"events":[` + ev(7, `,"future":{"x":1}`) + `],"sourceTime":7,"server":"s1"}`,
			check: func(t *testing.T, p stagingclient.Page) {
				if upTo, more := p.UpTo(); upTo != 7 || more {
					t.Errorf("UpTo = %d, %v", upTo, more)
				}
			}},
		{name: "not JSON", body: `<html>502 Bad Gateway</html>`, wantErr: "invalid character"},
		{name: "empty", body: ``, wantErr: "empty body"},
		{name: "null", body: `null`, wantErr: `missing "sourceTime"`},
		{name: "array", body: `[]`, wantErr: "cannot unmarshal array"},
		{name: "events null", body: `{"events":null,"sourceTime":1}`, wantErr: `missing "events"`},
		{name: "no events", body: `{"sourceTime":1}`, wantErr: `missing "events"`},
		{name: "no sourceTime", body: `{"events":[]}`, wantErr: `missing "sourceTime"`},
		{name: "sourceTime as string", body: `{"events":[],"sourceTime":"1"}`, wantErr: "cannot unmarshal string"},
		{name: "sourceTime as float", body: `{"events":[],"sourceTime":1.5}`, wantErr: "cannot unmarshal number 1.5"},
		{name: "negative sourceTime", body: `{"events":[],"sourceTime":-1}`, wantErr: "negative sourceTime"},
		{name: "trailing data", body: `{"events":[],"sourceTime":1} {}`, wantErr: "trailing data"},
		{name: "event without kind", body: `{"events":[{"sourceTime":1,"id":"a","state":"published"}],"sourceTime":1}`, wantErr: `event 0: missing "kind"`},
		{name: "event without id", body: `{"events":[{"sourceTime":1,"kind":"node","state":"published"}],"sourceTime":1}`, wantErr: `event 0: missing "id"`},
		{name: "event without state", body: `{"events":[{"sourceTime":1,"kind":"node","id":"/a"}],"sourceTime":1}`, wantErr: `event 0: missing "state"`},
		{name: "event without sourceTime", body: `{"events":[{"kind":"node","id":"/a","state":"deleted"}],"sourceTime":1}`, wantErr: `event 0: missing "sourceTime"`},
		{name: "unknown kind and state are passed on", body: `{"events":[{"sourceTime":1,"kind":"folder","id":"a","state":"published"},` +
			`{"sourceTime":2,"kind":"node","id":"/a","state":"saved"},` + ev(3, ``) + `],"sourceTime":3}`,
			check: func(t *testing.T, p stagingclient.Page) {
				if len(p.Events) != 3 || p.Events[0].Kind != "folder" || p.Events[1].State != "saved" || p.Events[2].ID != "story1" {
					t.Fatalf("events %+v", p.Events)
				}
				if stagingclient.KnownKind("folder") || !stagingclient.KnownKind(p.Events[1].Kind) ||
					stagingclient.KnownState("saved") || !stagingclient.KnownState(p.Events[0].State) {
					t.Error("KnownKind/KnownState disagree with the constants")
				}
				if upTo, more := p.UpTo(); upTo != 3 || more {
					t.Errorf("UpTo = %d, %v, want 3, false", upTo, more)
				}
			}},
		{name: "overlong kind and state are cut", body: `{"events":[{"sourceTime":1,"kind":"` + strings.Repeat("k", 70) +
			`","id":"a","state":"` + strings.Repeat("a", 63) + `é"}],"sourceTime":1}`,
			check: func(t *testing.T, p stagingclient.Page) {
				if k := p.Events[0].Kind; k != strings.Repeat("k", stagingclient.MaxNameLen) {
					t.Errorf("kind %q (%d bytes)", k, len(k))
				}
				// "é" is two bytes: cutting at 64 would split it.
				if s := p.Events[0].State; s != strings.Repeat("a", 63) {
					t.Errorf("state %q (%d bytes)", s, len(s))
				}
			}},
		{name: "empty kind", body: `{"events":[{"sourceTime":1,"kind":"","id":"a","state":"published"}],"sourceTime":1}`, wantErr: `event 0: empty "kind"`},
		{name: "empty state", body: `{"events":[{"sourceTime":1,"kind":"node","id":"a","state":""}],"sourceTime":1}`, wantErr: `event 0: empty "state"`},
		{name: "kind not a string", body: `{"events":[{"sourceTime":1,"kind":7,"id":"a","state":"published"}],"sourceTime":1}`, wantErr: "cannot unmarshal number"},
		{name: "event as string", body: `{"events":["x"],"sourceTime":1}`, wantErr: "cannot unmarshal string"},
		{name: "changedProperties not strings", body: `{"events":[` + ev(1, `,"changedProperties":[1]`) + `],"sourceTime":1}`, wantErr: "cannot unmarshal number"},
		{name: "empty property name", body: `{"events":[` + ev(1, `,"changedProperties":[""]`) + `],"sourceTime":1}`, wantErr: "empty name"},
		{name: "out of order", body: `{"events":[` + ev(2, ``) + `,` + ev(1, ``) + `],"sourceTime":3}`, wantErr: "event 1: sourceTime 1 is not after the previous event's 2"},
		{name: "duplicate", body: `{"events":[` + ev(2, ``) + `,` + ev(2, ``) + `],"sourceTime":3}`, wantErr: "not after the previous"},
		{name: "not after since", since: 5, body: `{"events":[` + ev(5, ``) + `],"sourceTime":6}`, wantErr: "not after since=5"},
		{name: "newer than the answer", body: `{"events":[` + ev(8, ``) + `],"sourceTime":7}`, wantErr: "newer than the answer's sourceTime 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := stagingclient.DecodePage([]byte(tc.body), tc.since)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.check != nil {
					tc.check(t, p)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %s as %+v", tc.body, p)
			}
			if !errors.Is(err, stagingclient.ErrBadResponse) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want ErrBadResponse mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestDecodeDocumentAndVariants(t *testing.T) {
	d, err := stagingclient.DecodeDocument([]byte(`{"id":"story1","uuid":"u","nodeType":"story","state":"published","modified":5,"sourceTime":6,"properties":{"focus":{"x":0.5}}}`))
	if err != nil || d.ID != "story1" || d.Modified != 5 || d.SourceTime != 6 || d.Properties["focus"].(map[string]any)["x"] != 0.5 {
		t.Errorf("%+v, %v", d, err)
	}
	for _, bad := range []string{``, `null`, `{}`, `{"id":""}`, `{"id":1}`, `{"id":"a","modified":-1}`, `{"id":"a"}x`} {
		if _, err := stagingclient.DecodeDocument([]byte(bad)); !errors.Is(err, stagingclient.ErrBadResponse) {
			t.Errorf("DecodeDocument(%q) = %v", bad, err)
		}
	}
	defs, err := stagingclient.DecodeVariants([]byte(`[{"name":"16x9","aspect":"16x9","width":0,"modified":3}]`))
	if err != nil || len(defs) != 1 || defs[0].Aspect != "16x9" {
		t.Errorf("%+v, %v", defs, err)
	}
	for _, bad := range []string{``, `null`, `{}`, `[{"aspect":"1x1"}]`, `[{"name":"a","width":-1}]`, `[{"name":"a","width":"1"}]`} {
		if _, err := stagingclient.DecodeVariants([]byte(bad)); !errors.Is(err, stagingclient.ErrBadResponse) {
			t.Errorf("DecodeVariants(%q) = %v", bad, err)
		}
	}
}

// FuzzDecodePage: the decoder never panics; what it accepts keeps the
// protocol's invariants (order, bounded kind and state) and survives a round trip unchanged; what it
// refuses is refused with ErrBadResponse.
func FuzzDecodePage(f *testing.F) {
	for _, s := range []string{
		`{"events":[],"sourceTime":0}`,
		`{"events":[{"sourceTime":1,"kind":"document","id":"story1","uuid":"u","nodeType":"story","state":"published","changedProperties":["a"]}],"sourceTime":2}`,
		`{"events":[{"sourceTime":1,"kind":"node","id":"/p","state":"deleted","changedProperties":[]},{"sourceTime":3,"kind":"yellow","id":"x","state":"offline"}],"sourceTime":3}`,
		`{"events":[{"sourceTime":1e3,"kind":"node","id":"/p","state":"deleted"}],"sourceTime":1000}`,
		`{"events":[{"sourceTime":1,"kind":"folder","id":"a","state":"saved"}],"sourceTime":1}`,
		`{"events":null,"sourceTime":1}`,
		`{"error":"NotUpToDate","sourceTime":5}`,
		`[1,2,3]`, `"x"`, `{"events":[{}]}`, ``,
	} {
		f.Add([]byte(s), int64(0))
	}
	f.Add([]byte(`{"events":[{"sourceTime":10,"kind":"document","id":"a","state":"published"}],"sourceTime":10}`), int64(9))
	f.Fuzz(func(t *testing.T, data []byte, since int64) {
		p, err := stagingclient.DecodePage(data, since)
		if err != nil {
			if !errors.Is(err, stagingclient.ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
			return
		}
		if p.SourceTime < 0 || p.Events == nil {
			t.Fatalf("accepted page %+v", p)
		}
		prev := since
		for i, e := range p.Events {
			if e.SourceTime <= prev || e.SourceTime > p.SourceTime || e.ID == "" {
				t.Fatalf("event %d %+v breaks the order (since %d, page %d)", i, e, since, p.SourceTime)
			}
			for _, v := range []string{e.Kind, e.State} {
				if v == "" || len(v) > stagingclient.MaxNameLen || !utf8.ValidString(v) {
					t.Fatalf("kind or state %q accepted", v)
				}
			}
			prev = e.SourceTime
		}
		upTo, more := p.UpTo()
		if len(p.Events) > 0 && upTo != prev || len(p.Events) == 0 && (more || upTo != p.SourceTime) || more && upTo >= p.SourceTime {
			t.Fatalf("UpTo() = %d, %v for %+v", upTo, more, p)
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := stagingclient.DecodePage(again, since)
		if err != nil {
			t.Fatalf("re-encoded page refused: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip changed the page:\n%+v\n%+v", p, p2)
		}
	})
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
