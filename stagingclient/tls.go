package stagingclient

import (
	"crypto/x509"
	"fmt"
	"os"
)

// LoadCAFile returns the system's CA pool (an empty one where the system
// has none) with the certificates of a PEM file added: the pool for
// Config.RootCAs when the staging servers have certificates of a private
// CA. A file without a certificate is an error.
func LoadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}
