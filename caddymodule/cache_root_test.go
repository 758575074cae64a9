package caddymodule

import "testing"

func TestVarPlaceholder(t *testing.T) {
	tests := []struct{ in, want string }{
		{"{http.vars.root}", "root"},
		{"{http.vars.site_root}", "site_root"},
		{"/srv/www", ""},
		{"{http.vars.root}/sub", ""},
		{"/srv/{http.vars.root}", ""},
		{"{http.vars.}", ""},
		{"{http.vars.a}{http.vars.b}", ""},
		{"{http.request.host}", ""},
	}
	for _, tt := range tests {
		if got := varPlaceholder(tt.in); got != tt.want {
			t.Errorf("varPlaceholder(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
