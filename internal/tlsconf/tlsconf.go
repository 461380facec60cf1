// Package tlsconf gives edgetrack's listeners their certificates and its
// clients the authorities they trust, from the PEM files the configuration
// names.
//
// A listener's [Certificate] can be reloaded while it serves (the binaries
// do it on SIGHUP): handshakes after the reload present the new certificate,
// connections already open keep theirs, and a reload that fails keeps the
// old certificate, so a half-written file never takes a listener down.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/edgetrack/edgetrack/internal/config"
)

// Certificate is a listener's certificate chain and key, loaded from files.
// Its methods are safe for concurrent use.
type Certificate struct {
	setting           string // the configuration section naming the files, for errors
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// Load reads a PEM certificate chain (leaf first) and its PEM private key.
// setting names the configuration section the files come from (such as
// "edge.tls"); errors name it and the file that is wrong.
func Load(setting, certFile, keyFile string) (*Certificate, error) {
	c := &Certificate{setting: setting, certFile: certFile, keyFile: keyFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// ForListener loads a listener's certificate from its configuration
// section (such as edge.tls); nil, without error, when the section names no
// files and the listener stays plain HTTP.
func ForListener(setting string, t config.TLS) (*Certificate, error) {
	if !t.Enabled() {
		return nil, nil
	}
	return Load(setting, t.CertFile, t.KeyFile)
}

// LogValue describes the certificate in log lines: the setting, the names
// it is for and when it expires.
func (c *Certificate) LogValue() slog.Value {
	leaf := c.Leaf()
	names := leaf.DNSNames
	for _, ip := range leaf.IPAddresses {
		names = append(names[:len(names):len(names)], ip.String())
	}
	return slog.GroupValue(
		slog.String("setting", c.setting),
		slog.String("subject", leaf.Subject.String()),
		slog.Any("names", names),
		slog.Time("not_after", leaf.NotAfter),
	)
}

// Reload reads the files again. On success, new handshakes present the new
// certificate; on failure the old one stays and the error says why.
func (c *Certificate) Reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("%s: loading cert_file %s and key_file %s: %w", c.setting, c.certFile, c.keyFile, err)
	}
	// LoadX509KeyPair parses the leaf unless GODEBUG=x509keypairleaf=0.
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("%s: cert_file %s: %w", c.setting, c.certFile, err)
		}
	}
	c.cur.Store(&pair)
	return nil
}

// Setting is the configuration section the certificate comes from.
func (c *Certificate) Setting() string { return c.setting }

// Leaf is the certificate presented now (its subject, names and expiry).
func (c *Certificate) Leaf() *x509.Certificate { return c.cur.Load().Leaf }

// NotAfter is when the certificate presented now expires.
func (c *Certificate) NotAfter() time.Time { return c.Leaf().NotAfter }

// ServerConfig is a server-side TLS configuration presenting the current
// certificate, TLS 1.2 or later, offering the given application protocols
// (ALPN), such as "h2" and "http/1.1".
func (c *Certificate) ServerConfig(protocols ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: protocols,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cur.Load(), nil
		},
	}
}

// Listener wraps ln so that every connection speaks TLS with the current
// certificate. A nil c returns ln unchanged: the listener stays plain HTTP.
func (c *Certificate) Listener(ln net.Listener, protocols ...string) net.Listener {
	if c == nil {
		return ln
	}
	return tls.NewListener(ln, c.ServerConfig(protocols...))
}

// ClientConfig is a client-side TLS configuration trusting only the
// certificate authorities in caFile (PEM), as curl --cacert does: for an
// aggregator with a certificate from a private CA. An empty caFile returns
// nil, which means the system's roots (and SSL_CERT_FILE, SSL_CERT_DIR).
// setting names the option, for errors.
func ClientConfig(setting, caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", setting, caFile)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

// Set is the certificates of one process's listeners; nil entries (plain
// listeners) are skipped.
type Set []*Certificate

// Reload reloads every certificate and returns every failure, joined; the
// ones that loaded are in use even when another failed.
func (s Set) Reload() error {
	var errs []error
	for _, c := range s {
		if c != nil {
			errs = append(errs, c.Reload())
		}
	}
	return errors.Join(errs...)
}

// Log writes one line per certificate in use: its setting, names and expiry.
func (s Set) Log(log *slog.Logger, msg string) {
	for _, c := range s {
		if c != nil {
			log.Info(msg, "tls", c)
		}
	}
}

// Enabled reports whether any listener of the set speaks TLS.
func (s Set) Enabled() bool {
	for _, c := range s {
		if c != nil {
			return true
		}
	}
	return false
}
