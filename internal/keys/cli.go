package keys

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fallom/fallom-collector/internal/principal"
)

// EnvKeysFile overrides the default keys file location, for the CLI and for
// the shipped default config (`${env:FALLOM_KEYS_FILE:-./data/keys.yaml}`).
const EnvKeysFile = "FALLOM_KEYS_FILE"

// DefaultKeysFile is used when neither --keys-file nor FALLOM_KEYS_FILE is set.
const DefaultKeysFile = "./data/keys.yaml"

func defaultKeysFile() string {
	if v := os.Getenv(EnvKeysFile); v != "" {
		return v
	}
	return DefaultKeysFile
}

// NewCommand returns the `keys` command (create, list, revoke) that the main
// program adds to the collector's root command.
func NewCommand() *cobra.Command {
	var keysFile string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke fallom API keys (flm_...) in the keys file",
		Long: "Manage the keys file read by the fallomauth extension. A running collector reloads the\n" +
			"file on change, so created and revoked keys take effect without a restart.\n" +
			"The file stores only the sha256 of generated keys; a new key is printed once.",
		SilenceUsage: true,
	}
	cmd.PersistentFlags().StringVar(&keysFile, "keys-file", defaultKeysFile(),
		"keys file to edit ($"+EnvKeysFile+" overrides the default)")
	cmd.AddCommand(newCreateCommand(&keysFile), newListCommand(&keysFile), newRevokeCommand(&keysFile))
	return cmd
}

func newCreateCommand(keysFile *string) *cobra.Command {
	var project, name, expires, scopeList string
	cmd := &cobra.Command{
		Use:   "create --project P --name N [--scopes ingest,read] [--expires 2027-01-01T00:00:00Z|720h|90d]",
		Short: "Generate a key, print it once on stdout and append its sha256 entry to the keys file",
		Example: "  KEY=$(fallomcol keys create --project acme --name openrouter-prod --expires 90d)\n" +
			"  curl -H \"Authorization: Bearer $KEY\" ...",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now().UTC()
			if err := ValidateLabel("--name", name); err != nil {
				return err
			}
			if err := ValidateLabel("--project", project); err != nil {
				return err
			}
			scopes, err := principal.ParseScopes(scopeList)
			if err != nil {
				return fmt.Errorf("--scopes: %w", err)
			}
			var expiresAt time.Time
			if expires != "" {
				t, err := ParseExpiry(expires, now)
				if err != nil {
					return err
				}
				if !t.After(now) {
					return errors.New("--expires is in the past")
				}
				expiresAt = t
			}
			return create(cmd.OutOrStdout(), cmd.ErrOrStderr(), *keysFile, newKeySpec{
				project: project, name: name, expiresAt: expiresAt, scopes: scopes,
			}, now)
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "project the key belongs to (required)")
	cmd.Flags().StringVar(&name, "name", "", "unique name of the key, e.g. openrouter-prod (required)")
	cmd.Flags().StringVar(&expires, "expires", "", "expiry: an RFC 3339 time, or a duration from now such as 720h or 90d (default: never)")
	cmd.Flags().StringVar(&scopeList, "scopes", string(principal.Ingest),
		"what the key may do, comma-separated: ingest (send data), read (console and query API)")
	_ = cmd.MarkFlagRequired("project")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// newKeySpec is what `keys create` was asked for.
type newKeySpec struct {
	project, name string
	expiresAt     time.Time
	scopes        []principal.Scope
}

func create(stdout, stderr io.Writer, path string, spec newKeySpec, now time.Time) error {
	project, name, expiresAt := spec.project, spec.name, spec.expiresAt
	doc, entries, _, err := ReadDocument(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name == name {
			return fmt.Errorf("a key named %q already exists in %s (revoke it or choose another name)", name, path)
		}
	}
	if _, err := Validate("keys", entries); err != nil {
		return fmt.Errorf("%s has errors, fix them first (the collector is not loading it either):\n%w", path, err)
	}
	key, err := Generate()
	if err != nil {
		return err
	}
	digest := DigestOf(key)
	doc.Append(name, project, digest, expiresAt, spec.scopes, "created "+now.Format(time.RFC3339)+" by `keys create`")
	data, err := doc.Bytes()
	if err != nil {
		return err
	}
	// Re-parse what is about to be written: never leave a file the
	// extension would refuse.
	if _, check, err := ParseDocument(data); err != nil {
		return fmt.Errorf("refusing to write keys file: %w", err)
	} else if _, err := Validate("keys", check); err != nil {
		return fmt.Errorf("refusing to write keys file: %w", err)
	}
	if err := WriteFileAtomic(path, data); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, key); err != nil {
		return err
	}
	exp := "never expires"
	if !expiresAt.IsZero() {
		exp = "expires " + expiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(stderr, "Created key %q for project %q with scopes %s (fingerprint %s, %s).\n"+
		"The key above is shown only once: store it now. Only its sha256 was appended to %s;\n"+
		"a running collector picks it up without a restart.\n",
		name, project, principal.Join(spec.scopes), digest.Fingerprint(), exp, absPath(path))
	return nil
}

func newListCommand(keysFile *string) *cobra.Command {
	return &cobra.Command{
		Use:          "list",
		Short:        "List keys: name, project, scopes, digest fingerprint, expiry, revocation (never a key)",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return list(cmd.OutOrStdout(), cmd.ErrOrStderr(), *keysFile, time.Now())
		},
	}
}

func list(stdout, stderr io.Writer, path string, now time.Time) error {
	_, entries, exists, err := ReadDocument(path)
	if err != nil {
		return err
	}
	if !exists {
		fmt.Fprintf(stderr, "%s does not exist yet: no keys (create one with `keys create`).\n", path)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPROJECT\tSCOPES\tFINGERPRINT\tEXPIRES_AT\tREVOKED\tSTATUS")
	for i := range entries {
		e := &entries[i]
		fp := "invalid"
		if d, err := e.Digest(); err == nil {
			fp = d.Fingerprint()
		}
		expiresAt := "never"
		if !e.ExpiresAt.IsZero() {
			expiresAt = e.ExpiresAt.UTC().Format(time.RFC3339)
		}
		scopes := "invalid"
		if sc, err := ValidateScopes(e.Scopes); err == nil {
			scopes = principal.Join(sc)
		}
		status := "active"
		switch {
		case fp == "invalid", scopes == "invalid":
			status = "invalid"
		case e.Revoked:
			status = "revoked"
		case !e.ExpiresAt.IsZero() && !now.Before(e.ExpiresAt):
			status = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%t\t%s\n", shown(e.Name), shown(e.Project), scopes, fp, expiresAt, e.Revoked, status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, err := Validate("keys", entries); err != nil {
		fmt.Fprintf(stderr, "warning: the collector will refuse %s until this is fixed:\n%v\n", path, err)
	}
	return nil
}

// shown hides a label that is really a pasted key.
func shown(label string) string {
	if looksLikeKey(label) {
		return "(not shown)"
	}
	return label
}

func newRevokeCommand(keysFile *string) *cobra.Command {
	return &cobra.Command{
		Use:          "revoke NAME",
		Short:        "Mark the key called NAME as revoked (takes effect without a restart)",
		Args:         cobra.ExactArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return revoke(cmd.ErrOrStderr(), *keysFile, args[0], time.Now().UTC())
		},
	}
}

func revoke(stderr io.Writer, path, name string, now time.Time) error {
	doc, entries, exists, err := ReadDocument(path)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("%s does not exist: no key named %q", path, name)
	}
	var found *Entry
	for i := range entries {
		if entries[i].Name == name {
			found = &entries[i]
		}
	}
	if found == nil {
		return fmt.Errorf("no key named %q in %s", name, path)
	}
	if found.Revoked {
		fmt.Fprintf(stderr, "Key %q is already revoked.\n", name)
		return nil
	}
	doc.Revoke(name, "revoked "+now.Format(time.RFC3339)+" by `keys revoke`")
	data, err := doc.Bytes()
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(path, data); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "Revoked key %q in %s; a running collector rejects it from its next reload.\n", name, absPath(path))
	return nil
}

func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// ParseExpiry reads --expires: a time in the keys file's expires_at forms
// (ParseExpiresAt), a Go duration ("720h") or a number of days ("90d"), the
// latter two counted from now.
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	if t, err := ParseExpiresAt(s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n > 0 {
			return now.Add(time.Duration(n) * 24 * time.Hour), nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("--expires %q: expected an RFC 3339 time (2027-01-01T00:00:00Z) or a positive duration (720h, 90d)", s)
}
