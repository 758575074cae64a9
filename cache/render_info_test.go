package cache

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseDependencies(t *testing.T) {
	many := `"story1";props="` + strings.TrimSpace(strings.Repeat("p ", 0)) + `a b c d e f g h i j k"`
	tests := []struct {
		name   string
		header string
		want   []Dependency
		err    bool
	}{
		{"full", `"story100"`, []Dependency{{Kind: DepDocument, Name: "story100"}}, false},
		{"props", `"story100";props="topline sophora:id"`,
			[]Dependency{{Kind: DepDocument, Name: "story100", Props: []string{"sophora:id", "topline"}}}, false},
		{"props dedup", `"s";props="b a b"`, []Dependency{{Kind: DepDocument, Name: "s", Props: []string{"a", "b"}}}, false},
		{"children is full", `"s";props="a";children`, []Dependency{{Kind: DepDocument, Name: "s"}}, false},
		{"more than ten props is full", many, []Dependency{{Kind: DepDocument, Name: "story1"}}, false},
		{"ten props stay", `"s";props="a b c d e f g h i j"`,
			[]Dependency{{Kind: DepDocument, Name: "s", Props: strings.Fields("a b c d e f g h i j")}}, false},
		{"empty props is full", `"s";props=""`, []Dependency{{Kind: DepDocument, Name: "s"}}, false},
		{"node", `"/politik";type=node;props="title"`, []Dependency{{Kind: DepNode, Name: "/politik", Props: []string{"title"}}}, false},
		{"yellow", `"story1";type=yellow`, []Dependency{{Kind: DepYellow, Name: "story1"}}, false},
		{"resource", `"story.tmpl";type=resource;hash="abc"`, []Dependency{{Kind: DepResource, Name: "story.tmpl", Hash: "abc"}}, false},
		{"several", `"a", "b";type=node`, []Dependency{{Kind: DepDocument, Name: "a"}, {Kind: DepNode, Name: "b"}}, false},
		{"resource without hash", `"t";type=resource`, nil, true},
		{"unknown type", `"t";type=banana`, nil, true},
		{"token instead of string", `story1`, nil, true},
		{"inner list", `("a" "b")`, nil, true},
		{"garbage", `"unterminated`, nil, true},
		{"empty name", `""`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDependencies([]string{tt.header})
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if !tt.err && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseRenderInfo(t *testing.T) {
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name        string
		h           http.Header
		keys        []string
		pregen      bool
		expires     time.Time
		uncacheable bool
		err         bool
	}{
		{"nothing", http.Header{}, nil, false, time.Time{}, false, false},
		{"keys", http.Header{"Delivery-Cache-Keys": {`"b", "a", a`}}, []string{"a", "b"}, false, time.Time{}, false, false},
		{"pregenerate", http.Header{"Delivery-Pregenerate": {"?1"}}, nil, true, time.Time{}, false, false},
		{"pregenerate off", http.Header{"Delivery-Pregenerate": {"?0"}}, nil, false, time.Time{}, false, false},
		{"pregenerate bad", http.Header{"Delivery-Pregenerate": {"1"}}, nil, false, time.Time{}, false, true},
		{"max-age", http.Header{"Cache-Control": {"public, max-age=60"}}, nil, false, now.Add(time.Minute), false, false},
		{"s-maxage wins", http.Header{"Cache-Control": {"max-age=60, s-maxage=120"}}, nil, false, now.Add(2 * time.Minute), false, false},
		{"expires", http.Header{"Expires": {now.Add(time.Hour).UTC().Format(http.TimeFormat)}}, nil, false, now.Add(time.Hour), false, false},
		{"expires past", http.Header{"Expires": {now.Add(-time.Hour).UTC().Format(http.TimeFormat)}}, nil, false, time.Time{}, true, false},
		{"private", http.Header{"Cache-Control": {"private"}}, nil, false, time.Time{}, true, false},
		{"no-store", http.Header{"Cache-Control": {"No-Store"}}, nil, false, time.Time{}, true, false},
		{"max-age=0", http.Header{"Cache-Control": {"max-age=0"}}, nil, false, time.Time{}, true, false},
		{"cookie", http.Header{"Set-Cookie": {"a=b"}}, nil, false, time.Time{}, true, false},
		{"bad deps", http.Header{"Delivery-Dependencies": {"(("}}, nil, false, time.Time{}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRenderInfo(tt.h, now)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if tt.err {
				return
			}
			if !reflect.DeepEqual(got.Keys, tt.keys) || got.Pregenerate != tt.pregen ||
				!got.Expires.Equal(tt.expires) || got.Uncacheable != tt.uncacheable {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestStripRenderHeaders(t *testing.T) {
	h := http.Header{"Delivery-Dependencies": {`"a"`}, "Delivery-Cache-Keys": {`"k"`}, "Delivery-Pregenerate": {"?1"},
		"Cache-Control": {"max-age=5"}, "Content-Type": {"text/html"}}
	StripRenderHeaders(h, true)
	if len(h) != 1 || h.Get("Content-Type") == "" {
		t.Fatalf("left %v", h)
	}
}
