// Command bare-server is the benchmarks' ceiling for a handler inside
// net/http: a plain Go server answering from a docroot with
// http.ServeContent on the open file (sendfile), or from memory; over
// HTTP or, with -cert and -key, HTTPS.
package main

import (
	"bytes"
	"flag"
	"log"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8090", "listen address")
	root := flag.String("root", ".", "docroot")
	memory := flag.Bool("memory", false, "answer from memory (files read once)")
	cert := flag.String("cert", "", "TLS certificate file (with -key: serve HTTPS, HTTP/1.1 and HTTP/2)")
	key := flag.String("key", "", "TLS key file")
	flag.Parse()

	var mu sync.RWMutex
	cache := map[string][]byte{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Join(*root, filepath.FromSlash(path.Clean(r.URL.Path)))
		if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		if *memory {
			mu.RLock()
			b, ok := cache[name]
			mu.RUnlock()
			if !ok {
				var err error
				if b, err = os.ReadFile(name); err != nil {
					http.NotFound(w, r)
					return
				}
				mu.Lock()
				cache[name] = b
				mu.Unlock()
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
			return
		}
		f, err := os.Open(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", info.ModTime(), f)
	})
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if *cert != "" {
		log.Fatal(srv.ListenAndServeTLS(*cert, *key))
	}
	log.Fatal(srv.ListenAndServe())
}
