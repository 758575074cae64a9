package caddymodule

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"strings"
)

// The status page is one HTML file with its style and script inline, so
// that it needs nothing but its own path. The three parts are kept apart
// in status_page/ and put together once; the Content-Security-Policy
// allows exactly the inline style and script by their hashes (no
// 'unsafe-inline', no 'unsafe-eval'), and fetches only from the page's
// own origin.

//go:embed status_page/page.html status_page/page.css status_page/page.js
var statusAssets embed.FS

// Where the style and the script go in page.html.
const (
	statusStyleSlot  = "<style></style>"
	statusScriptSlot = "<script></script>"
)

type statusPageAsset struct {
	html []byte
	csp  string
}

var statusPage = mustBuildStatusPage()

func mustBuildStatusPage() statusPageAsset {
	p, err := buildStatusPage()
	if err != nil {
		panic(err) // the embedded files are part of the binary: a test catches this
	}
	return p
}

func buildStatusPage() (statusPageAsset, error) {
	read := func(name string) (string, error) {
		b, err := statusAssets.ReadFile("status_page/" + name)
		return string(b), err
	}
	html, err := read("page.html")
	if err != nil {
		return statusPageAsset{}, err
	}
	css, err := read("page.css")
	if err != nil {
		return statusPageAsset{}, err
	}
	js, err := read("page.js")
	if err != nil {
		return statusPageAsset{}, err
	}
	if strings.Count(html, statusStyleSlot) != 1 || strings.Count(html, statusScriptSlot) != 1 {
		return statusPageAsset{}, fmt.Errorf("status page: page.html needs one %s and one %s", statusStyleSlot, statusScriptSlot)
	}
	if strings.Contains(strings.ToLower(css), "</style") || strings.Contains(strings.ToLower(js), "</script") {
		return statusPageAsset{}, fmt.Errorf("status page: the style or the script closes its own element")
	}
	html = strings.Replace(html, statusStyleSlot, "<style>"+css+"</style>", 1)
	html = strings.Replace(html, statusScriptSlot, "<script>"+js+"</script>", 1)
	csp := fmt.Sprintf("default-src 'none'; script-src '%s'; style-src '%s'; connect-src 'self'; img-src data:; "+
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'", cspHash(js), cspHash(css))
	return statusPageAsset{html: []byte(html), csp: csp}, nil
}

// cspHash is the CSP source expression that allows an inline element with
// exactly this content.
func cspHash(content string) string {
	sum := sha256.Sum256([]byte(content))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}
