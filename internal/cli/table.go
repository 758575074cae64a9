package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// Table writes rows in aligned columns (a header row first).
type Table struct {
	tw *tabwriter.Writer
}

// NewTable starts a table on w with the column headers.
func NewTable(w io.Writer, headers ...string) *Table {
	t := &Table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(headers) > 0 {
		t.Row(anySlice(headers)...)
	}
	return t
}

// Row adds a row; cells are printed with Cell.
func (t *Table) Row(cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = Cell(c)
	}
	fmt.Fprintln(t.tw, strings.Join(s, "\t"))
}

// Flush writes the table.
func (t *Table) Flush() error { return t.tw.Flush() }

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// Cell is a value as a table shows it: tabs and newlines become spaces
// (they would break the columns), nil is "-", a float without a fraction
// is shown as an integer (JSON numbers decode as float64).
func Cell(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		s = x
	case float64:
		if x == float64(int64(x)) {
			s = fmt.Sprint(int64(x))
		} else {
			s = fmt.Sprintf("%.2f", x)
		}
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = Cell(e)
		}
		s = strings.Join(parts, ",")
	case map[string]any:
		b, _ := json.Marshal(x)
		s = string(b)
	default:
		s = fmt.Sprint(x)
	}
	if s == "" {
		return "-"
	}
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

// Flatten turns a decoded JSON object into dotted names and values, in
// name order: {"a":{"b":1}} is a.b = 1. Lists of scalars stay one value;
// a list of objects becomes name[i].field.
func Flatten(v map[string]any) [][2]any {
	var out [][2]any
	flatten("", v, &out)
	return out
}

func flatten(prefix string, v any, out *[][2]any) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 && prefix != "" {
			*out = append(*out, [2]any{prefix, "-"})
			return
		}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			flatten(name, x[k], out)
		}
	case []any:
		objects := len(x) > 0
		for _, e := range x {
			if _, ok := e.(map[string]any); !ok {
				objects = false
			}
		}
		if !objects {
			*out = append(*out, [2]any{prefix, x})
			return
		}
		for i, e := range x {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), e, out)
		}
	default:
		*out = append(*out, [2]any{prefix, x})
	}
}
