package export

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// loadTLSFiles adds a CA file (the only roots trusted) and a client
// certificate to c; key names the configuration block in errors
// ("syslog.tls", "hec.tls").
func loadTLSFiles(c *tls.Config, key, caFile, certFile, keyFile string) error {
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("%s.ca_file: %w", key, err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s.ca_file %s: no PEM certificate in it", key, caFile)
		}
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("%s: client certificate: %w", key, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return nil
}
