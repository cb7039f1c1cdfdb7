package fallomauthextension

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/internal/keys"
)

// fuzzKey is the one configured key of the fuzz target.
const fuzzKey = "flm_fuzzKEY_0123456789-abcdefghij"

// bearerForm is an independent statement of the accepted Authorization
// form: scheme Bearer in any case, one space, a non-blank token.
var bearerForm = regexp.MustCompile(`(?s)^(?i:bearer) ([^ \t].*)$`)

// FuzzAuthenticateHeaders drives Authenticate with arbitrary Authorization
// and X-Api-Key values under every header-name spelling and checks:
//   - no panic, and the outcome does not depend on how the header name is
//     spelled (HTTP canonical, gRPC lowercase, other case);
//   - a rejection is exactly one of the six fixed errors, so no input ever
//     reaches an error message;
//   - acceptance happens only for the configured key in an accepted form, and
//     then the principal is attached;
//   - the configured key in a valid form is always accepted.
func FuzzAuthenticateHeaders(f *testing.F) {
	for _, seed := range [][2]string{
		{"Bearer " + fuzzKey, ""},
		{"bearer " + fuzzKey, ""},
		{"BEARER " + fuzzKey, ""},
		{"", fuzzKey},
		{"Basic dXNlcjpwYXNz", fuzzKey},
		{"Basic dXNlcjpwYXNz", ""},
		{"Bearer  " + fuzzKey, ""},
		{"Bearer\t" + fuzzKey, ""},
		{"Bearer", ""},
		{"Bearer ", ""},
		{fuzzKey, ""},
		{"Bearer " + fuzzKey + " ", ""},
		{" Bearer " + fuzzKey, ""},
		{"Bearer flm_short", ""},
		{"Bearer flm_" + strings.Repeat("A", 129), ""},
		{"Bearer flm_0123456789abcdef0123456789abcdef", ""},
		{"Bearer sk-or-v1-abc", ""},
		{"", "Bearer " + fuzzKey},
		{"Bearer flm_\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", ""},
		{"Bearer flm_ünïcödé_ünïcödé_ünïcödé", ""},
		{"\xff\xfe", "\xff"},
	} {
		f.Add(seed[0], seed[1])
	}

	a, err := newAuthenticator(&Config{Keys: []KeyEntry{{Name: "fuzz", Project: "fz", KeySHA256: keys.DigestOf(fuzzKey).Hex()}}},
		componenttest.NewNopTelemetrySettings())
	require.NoError(f, err)
	sixErrors := []error{ErrMissingKey, ErrWrongScheme, ErrNotFlmKey, ErrUnknownKey, ErrRevokedKey, ErrExpiredKey}

	f.Fuzz(func(t *testing.T, authorization, apiKey string) {
		spellings := [][2]string{
			{"Authorization", "X-Api-Key"},
			{"authorization", "x-api-key"},
			{"AUTHORIZATION", "X-API-KEY"},
		}
		var first error
		for i, sp := range spellings {
			sources := map[string][]string{}
			if authorization != "" {
				sources[sp[0]] = []string{authorization}
			}
			if apiKey != "" {
				sources[sp[1]] = []string{apiKey}
			}
			ctx, err := a.Authenticate(context.Background(), sources)
			if i == 0 {
				first = err
			} else {
				require.Equal(t, first, err, "outcome depends on the header name spelling %v", sp)
			}
			if err != nil {
				isOne := false
				for _, e := range sixErrors {
					isOne = isOne || err == e //nolint:errorlint // identity: the fixed value, nothing wrapped in
				}
				require.True(t, isOne, "unexpected error %q", err)
				require.Nil(t, client.FromContext(ctx).Auth)
				continue
			}
			auth := client.FromContext(ctx).Auth
			require.NotNil(t, auth)
			require.Equal(t, "fz", auth.GetAttribute(fallomattr.AuthProjectID))
			trimmedAuth := strings.Trim(authorization, " \t")
			m := bearerForm.FindStringSubmatch(trimmedAuth)
			viaBearer := m != nil && m[1] == fuzzKey
			viaAPIKey := (m == nil) && strings.Trim(apiKey, " \t") == fuzzKey
			require.True(t, viaBearer || viaAPIKey, "accepted without presenting the key: %q / %q", authorization, apiKey)
		}

		// Completeness: the key in a valid form always passes.
		if strings.EqualFold(authorization, "bearer "+fuzzKey) && authorization[7:] == fuzzKey {
			require.NoError(t, first)
		}
		if errors.Is(first, ErrUnknownKey) {
			// Only well-formed keys get as far as the lookup.
			presented, _ := extractKey(map[string][]string{"Authorization": {authorization}, "X-Api-Key": {apiKey}})
			require.True(t, keys.ValidFormat(presented))
		}
	})
}
