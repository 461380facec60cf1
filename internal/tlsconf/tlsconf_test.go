package tlsconf_test

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgetrack/edgetrack/internal/tlsconf"
	"github.com/edgetrack/edgetrack/internal/tlsconf/tlsconftest"
)

// serve accepts TLS connections on loopback with c's certificate and
// answers each with one byte.
func serve(t *testing.T, c *tlsconf.Certificate) string {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := c.Listener(raw)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.Write([]byte{1})
			}()
		}
	}()
	return raw.Addr().String()
}

// servedSerial dials addr trusting only ca and returns the serial number of
// the certificate presented.
func servedSerial(t *testing.T, addr string, ca *tlsconftest.CA) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func TestReloadPresentsTheNewCertificate(t *testing.T) {
	ca := tlsconftest.NewCA(t)
	dir := t.TempDir()
	first := ca.Issue(dir)
	c, err := tlsconf.Load("edge.tls", first.CertFile, first.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, c)
	if got := servedSerial(t, addr, ca); got != first.Serial.String() {
		t.Fatalf("served serial %s, want %s", got, first.Serial)
	}

	second := ca.Issue(dir) // renewed in place
	if got := servedSerial(t, addr, ca); got != first.Serial.String() {
		t.Fatalf("before Reload: served serial %s, want the first %s", got, first.Serial)
	}
	if err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, addr, ca); got != second.Serial.String() {
		t.Fatalf("after Reload: served serial %s, want the second %s", got, second.Serial)
	}
	if c.Leaf().SerialNumber.Cmp(second.Serial) != 0 {
		t.Errorf("Leaf() serial %s, want %s", c.Leaf().SerialNumber, second.Serial)
	}
}

func TestFailedReloadKeepsTheOldCertificate(t *testing.T) {
	ca := tlsconftest.NewCA(t)
	dir := t.TempDir()
	first := ca.Issue(dir)
	c, err := tlsconf.Load("aggregator.tls", first.CertFile, first.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, c)
	if err := os.WriteFile(first.KeyFile, []byte("-----BEGIN PRIVATE KEY-----\nhalf"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = tlsconf.Set{nil, c}.Reload()
	if err == nil || !strings.Contains(err.Error(), "aggregator.tls") || !strings.Contains(err.Error(), first.KeyFile) {
		t.Fatalf("Reload of a broken key: %v; want an error naming aggregator.tls and %s", err, first.KeyFile)
	}
	if got := servedSerial(t, addr, ca); got != first.Serial.String() {
		t.Fatalf("after a failed Reload: served serial %s, want the old %s", got, first.Serial)
	}
}

func TestLoadErrorsNameTheSetting(t *testing.T) {
	ca := tlsconftest.NewCA(t)
	leaf := ca.Issue(t.TempDir())
	other := ca.Issue(t.TempDir())
	cases := []struct {
		name, cert, key, want string
	}{
		{"missing cert", filepath.Join(t.TempDir(), "none.pem"), leaf.KeyFile, "no such file"},
		{"key of another certificate", leaf.CertFile, other.KeyFile, "private key does not match"},
		{"key file is a certificate", leaf.CertFile, leaf.CertFile, "key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tlsconf.Load("edge.admin_tls", tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), "edge.admin_tls") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v; want an error naming edge.admin_tls and %q", err, tc.want)
			}
		})
	}
}

func TestClientConfigTrustsOnlyTheCAFile(t *testing.T) {
	ca, stranger := tlsconftest.NewCA(t), tlsconftest.NewCA(t)
	leaf := ca.Issue(t.TempDir())
	c, err := tlsconf.Load("aggregator.tls", leaf.CertFile, leaf.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, c)
	dial := func(caFile string) error {
		cfg, err := tlsconf.ClientConfig("edge.aggregator_ca_file", caFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ServerName = "127.0.0.1"
		conn, err := tls.Dial("tcp", addr, cfg)
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(ca.File); err != nil {
		t.Errorf("with the issuing CA: %v", err)
	}
	if err := dial(stranger.File); err == nil {
		t.Error("with another CA: the handshake succeeded")
	}

	if cfg, err := tlsconf.ClientConfig("edge.aggregator_ca_file", ""); cfg != nil || err != nil {
		t.Errorf("empty CA file: %v, %v; want nil, nil (the system roots)", cfg, err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	if _, err := tlsconf.ClientConfig("edge.aggregator_ca_file", notPEM); err == nil || !strings.Contains(err.Error(), "edge.aggregator_ca_file") {
		t.Errorf("a CA file without certificates: %v; want an error naming the setting", err)
	}
}

func TestNilCertificateListenerIsPlain(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var c *tlsconf.Certificate
	if ln := c.Listener(raw); ln != raw {
		t.Errorf("nil certificate wrapped the listener: %T", ln)
	}
}
