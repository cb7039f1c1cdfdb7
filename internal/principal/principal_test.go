package principal

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseScopes(t *testing.T) {
	got, err := ParseScopes(" read , ingest")
	require.NoError(t, err)
	require.Equal(t, []Scope{Read, Ingest}, got)
	require.Equal(t, "read,ingest", Join(got))
	for in, want := range map[string]string{
		"":                         `unknown scope ""`,
		"write":                    `unknown scope "write" (known: ingest,read)`,
		"READ":                     `unknown scope "READ"`,
		"read,read":                `scope "read" is listed twice`,
		"ingest,":                  `unknown scope ""`,
		"flm_0123456789abcdefghij": `unknown scope "(value not shown)"`,
	} {
		_, err := ParseScopes(in)
		require.ErrorContains(t, err, want, in)
	}
}

func TestMissingScopeError(t *testing.T) {
	var err error = &MissingScopeError{Scope: Read}
	wrapped := fmt.Errorf("console login: %w", err)
	require.ErrorIs(t, wrapped, ErrMissingScope)
	var mse *MissingScopeError
	require.True(t, errors.As(wrapped, &mse))
	require.Equal(t, Read, mse.Scope)
	require.Contains(t, err.Error(), `lacks the "read" scope`)
	require.NotErrorIs(t, errors.New("other"), ErrMissingScope)
}

func TestPrincipalHas(t *testing.T) {
	p := Principal{ProjectID: "acme", KeyName: "k", Scopes: []Scope{Read}}
	require.True(t, p.Has(Read))
	require.False(t, p.Has(Ingest))
	require.False(t, Principal{}.Has(Ingest))
}
