package registry

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

func TestCheckEntry(t *testing.T) {
	id := FileID{Root: 1, File: "a/page.html"}
	big := strings.Repeat("k", bolt.MaxKeySize)
	tests := []struct {
		name string
		id   FileID
		e    Entry
		ok   bool
	}{
		{"plain", id, Entry{Key: "/a/page.html", Keys: []string{"k"}, Deps: []Dependency{{Kind: DepDocument, Name: "d"}}}, true},
		{"key of 32768 bytes", id, Entry{Keys: []string{big}}, false},
		{"index key just fits", id, Entry{Keys: []string{big[:bolt.MaxKeySize-2-len(id.File)-2]}}, true},
		{"index key one byte over", id, Entry{Keys: []string{big[:bolt.MaxKeySize-2-len(id.File)-1]}}, false},
		{"dependency of 40000 bytes", id, Entry{Deps: []Dependency{{Kind: DepNode, Name: strings.Repeat("d", 40000)}}}, false},
		{"resource without a name", id, Entry{Deps: []Dependency{{Kind: DepResource, Hash: "h"}}}, false},
		{"file name too long", FileID{1, big}, Entry{}, false},
		{"entry too large", id, Entry{Host: strings.Repeat("h", maxEntryBytes)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckEntry(tt.id, &tt.e)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckEntry = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !isRecordError(err) {
				t.Fatalf("%v is not a record error", err)
			}
		})
	}
}

func TestEncodedEntrySize(t *testing.T) {
	for _, e := range []Entry{
		{},
		{Key: "/a.html", Host: "h", Created: -1 << 40, Expires: 1 << 50, Force: true, Keys: []string{"", strings.Repeat("k", 300)},
			Deps: []Dependency{{Kind: DepResource, Name: "r", Hash: "h"}, {Kind: DepDocument, Name: "d", Props: []string{"a", "b"}}}},
	} {
		if got, want := encodedEntrySize(&e), len(marshalEntry(&e)); got != want {
			t.Errorf("encodedEntrySize = %d, want %d", got, want)
		}
	}
}

func TestIsRecordError(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{berrors.ErrKeyTooLarge, true},
		{fmt.Errorf("put: %w", berrors.ErrValueTooLarge), true},
		{berrors.ErrKeyRequired, true},
		{fmt.Errorf("decode entry x: %w", errBadEntry), true},
		{&LimitError{What: "x", Got: 2, Limit: 1}, true},
		{berrors.ErrDatabaseNotOpen, false},
		{errors.New("write: no space left on device"), false},
		{berrors.ErrTxClosed, false},
	} {
		if got := isRecordError(tt.err); got != tt.want {
			t.Errorf("isRecordError(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestLogOnceIsBounded(t *testing.T) {
	var l logOnce
	for i := range logOnceCap {
		if first, remembered := l.first(fmt.Sprint("/u", i)); !first || !remembered {
			t.Fatalf("url %d: first %v remembered %v", i, first, remembered)
		}
	}
	if first, _ := l.first("/u0"); first {
		t.Error("a remembered URL was logged again")
	}
	if first, remembered := l.first("/new"); !first || remembered {
		t.Errorf("past the cap: first %v remembered %v, want true false", first, remembered)
	}
	if len(l.seen) != logOnceCap {
		t.Errorf("set grew to %d", len(l.seen))
	}
}
