package registry

import (
	"reflect"
	"testing"
)

func TestEntryCodecRoundTrip(t *testing.T) {
	entries := []Entry{
		{},
		{Key: "/a.html", Created: 1700000000000},
		{Key: "/politik/story100.html", Host: "www.example.org", Created: 1700000000123, Expires: -1, Force: true,
			Deps: []Dependency{
				{Kind: DepDocument, Name: "story100"},
				{Kind: DepDocument, Name: "story101", Props: []string{"title", "topline"}},
				{Kind: DepNode, Name: "/politik", Props: []string{"name"}},
				{Kind: DepYellow, Name: "story100"},
				{Kind: DepResource, Name: "page.tmpl", Hash: "v1"},
			},
			Keys: []string{"story100", "section:/politik"}},
	}
	for _, want := range entries {
		var got Entry
		if err := unmarshalEntry(marshalEntry(&want), &got); err != nil {
			t.Fatalf("%+v: %v", want, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
}

func TestEntryCodecRejectsDamage(t *testing.T) {
	b := marshalEntry(&Entry{Key: "/a.html", Deps: []Dependency{{Kind: DepDocument, Name: "x", Props: []string{"p"}}}})
	for i := range len(b) {
		var e Entry
		_ = unmarshalEntry(b[:i], &e) // must not panic
	}
	var e Entry
	if err := unmarshalEntry(append(b, 0), &e); err == nil {
		t.Error("trailing bytes accepted")
	}
	if err := unmarshalEntry([]byte{9}, &e); err == nil {
		t.Error("unknown version accepted")
	}
}
