package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fallom-e2e"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestReadmeTLSExample: the README's "TLS in front" block added to a copy of
// the shipped config serves OTLP/HTTP over HTTPS, keys still required, and
// refuses plain HTTP.
func TestReadmeTLSExample(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	shipped, err := os.ReadFile(filepath.Join(collectortest.RepoRoot(t), "config", "config.yaml"))
	require.NoError(t, err)
	const anchor = "        endpoint: ${env:FALLOM_HTTP_ENDPOINT:-0.0.0.0:4318}\n"
	require.Contains(t, string(shipped), anchor, "the default config changed: adapt this test")
	tlsBlock := "        tls:\n          cert_file: " + certFile + "\n          key_file: " + keyFile +
		"\n          min_version: \"1.2\"\n          reload_interval: 1h\n"
	cfgPath := filepath.Join(dir, "my-config.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(strings.Replace(string(shipped), anchor, anchor+tlsBlock, 1)), 0o600))

	key := collectortest.CreateKey(t, filepath.Join(dir, "keys.yaml"), "acme", "tls")
	in := startIn(t, dir, key, []string{"--config", cfgPath})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	post := func(scheme, auth string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, scheme+"://"+in.ep.HTTP+"/v1/traces",
			bytes.NewReader(readFixture(t, "openrouter-delivery.json")))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, msg := post("https", key)
	require.Equal(t, http.StatusOK, code, msg)
	code, _ = post("https", "")
	require.Equal(t, http.StatusUnauthorized, code, "a key is still required")
	// Go's TLS server answers a plain HTTP request with 400 and closes the
	// connection at once, with the request's body unread: the client then
	// reads either that 400 or a connection reset, whichever reaches it
	// first. Both are a refusal; what matters is that nothing is stored.
	req, err := http.NewRequest(http.MethodPost, "http://"+in.ep.HTTP+"/v1/traces",
		bytes.NewReader(readFixture(t, "openrouter-delivery.json")))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	if resp, err := client.Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP is refused: %s", b)
	} else {
		require.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) ||
			strings.Contains(err.Error(), "connection reset"), "plain HTTP: %v", err)
	}
	require.Equal(t, 3, count(t, in.db(t), `SELECT COUNT(*) FROM spans WHERE project_id = 'acme'`))
}
