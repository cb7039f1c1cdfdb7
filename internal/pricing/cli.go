package pricing

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fallom/fallom-collector/internal/atomicfile"
)

// EnvPricingFile names the pricing file for the CLI and for the shipped
// default config (`pricing_file: ${env:FALLOM_PRICING_FILE:-}`).
const EnvPricingFile = "FALLOM_PRICING_FILE"

// DefaultPricingFile is where `prices import` writes when neither --out nor
// FALLOM_PRICING_FILE is set.
const DefaultPricingFile = "./data/prices.yaml"

// maxListBytes bounds a price list read into memory (LiteLLM's whole file is
// about 1.5 MB).
const maxListBytes = 64 << 20

func defaultPricingFile() string {
	if v := os.Getenv(EnvPricingFile); v != "" {
		return v
	}
	return DefaultPricingFile
}

// NewCommand returns the `prices` command that the main program adds to the
// collector's root command.
func NewCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "prices",
		Short: "Refresh the pricing file from OpenRouter's or LiteLLM's public price list",
		Long: "Costs that spans do not report are computed from a built-in price table (" + BuiltinSource + ")\n" +
			"and a pricing file that overrides it (openroutermapping pricing_file). `prices import` writes that\n" +
			"file from a public price list. The collector reads the file at start: restart it after an import.",
		SilenceUsage: true,
	}
	cmd.AddCommand(newImportCommand())
	return cmd
}

func newImportCommand() *cobra.Command {
	var out, asOf string
	var replace, skipInvalid bool
	cmd := &cobra.Command{
		Use:   "import FILE|-",
		Short: "Write the per-token prices of an OpenRouter model list or LiteLLM price file into the pricing file",
		Long: "FILE is OpenRouter's GET https://openrouter.ai/api/v1/models answer or LiteLLM's\n" +
			"model_prices_and_context_window.json (told apart by content); - reads standard input.\n\n" +
			"The list's models replace the entries of earlier imports of the same name, and the entries of an\n" +
			"earlier import of the same list that it no longer has are removed; entries you wrote by hand (no\n" +
			"source:) are never changed. --replace writes the list alone. Each imported entry records its\n" +
			"source and date (source: openrouter@2026-12-02), and a cost computed from it is stored with\n" +
			"fallom.price_source = <file name>:<source>.\n\n" +
			"Nothing is written when a model's price is negative, not a number or not finite: the errors name\n" +
			"the models (--skip-invalid leaves those models out instead). Prices that fail the per-token sanity\n" +
			"guard (over USD 1,000 per million tokens, or 100x the built-in price of the model: a per-million or\n" +
			"per-1K price in a per-token field) are left out and named on stderr.",
		Example: "  curl -s https://openrouter.ai/api/v1/models -o models.json\n" +
			"  fallomcol prices import models.json --out ./data/prices.yaml\n" +
			"  FALLOM_PRICING_FILE=./data/prices.yaml fallomcol   # restart the collector with the new prices",
		Args:         cobra.ExactArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImport(cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), importOptions{
				in: args[0], out: out, asOf: asOf, replace: replace, skipInvalid: skipInvalid, now: time.Now(),
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", defaultPricingFile(),
		"pricing file to write ($"+EnvPricingFile+" overrides the default)")
	cmd.Flags().StringVar(&asOf, "as-of", "",
		"date of the prices, YYYY-MM-DD (default: the date FILE was last modified, today for -)")
	cmd.Flags().BoolVar(&replace, "replace", false, "write the list alone, dropping every entry the file had")
	cmd.Flags().BoolVar(&skipInvalid, "skip-invalid", false, "leave out models with invalid prices (each named on stderr) instead of writing nothing")
	return cmd
}

type importOptions struct {
	in, out, asOf        string
	replace, skipInvalid bool
	now                  time.Time
}

func runImport(stdin io.Reader, stdout, stderr io.Writer, o importOptions) error {
	data, modTime, err := readList(stdin, o.in)
	if err != nil {
		return err
	}
	date := modTime.UTC().Format(time.DateOnly)
	if modTime.IsZero() {
		date = o.now.UTC().Format(time.DateOnly)
	}
	if o.asOf != "" {
		d, err := time.Parse(time.DateOnly, o.asOf)
		if err != nil {
			return fmt.Errorf("--as-of %q: expected a date such as 2026-12-02", o.asOf)
		}
		date = d.Format(time.DateOnly)
	}
	list, err := ParsePriceList(data)
	if err != nil {
		return fmt.Errorf("%s: %w", o.in, err)
	}
	if len(list.Invalid) > 0 {
		if !o.skipInvalid {
			return fmt.Errorf("%s: %d model(s) have invalid prices; nothing was written (--skip-invalid leaves them out):\n%w",
				o.in, len(list.Invalid), errors.Join(list.Invalid...))
		}
		for _, e := range list.Invalid {
			fmt.Fprintf(stderr, "skipped: %v\n", e)
		}
	}
	for _, e := range list.Refused {
		fmt.Fprintf(stderr, "left out: %v\n", e)
	}
	if len(list.Models) == 0 {
		return fmt.Errorf("%s: no model with valid per-token prices; nothing was written", o.in)
	}
	for _, w := range list.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}

	existing, err := os.ReadFile(o.out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pricing file: %w", err)
	}
	source := string(list.Format) + "@" + date
	content, res, err := MergePriceList(existing, list, source, o.replace)
	if err != nil {
		return fmt.Errorf("pricing file %s: %w", o.out, err)
	}
	// Never leave a file the collector would refuse.
	table, err := Parse(content)
	if err != nil {
		return fmt.Errorf("refusing to write pricing file %s: %w", o.out, err)
	}
	if err := atomicfile.Write(o.out, content, 0o644, 0o755); err != nil {
		return fmt.Errorf("writing pricing file %s: %w", o.out, err)
	}

	fmt.Fprintf(stdout, "Imported %d models from the %s list (%s) into %s: %d added, %d changed, %d unchanged, %d removed (gone from the list)",
		len(list.Models), list.Format, source, absPath(o.out), len(res.Added), len(res.Changed), res.Unchanged, len(res.Removed))
	if len(res.KeptOwn) > 0 {
		fmt.Fprintf(stdout, ", %d hand-written kept over the list (%s)", len(res.KeptOwn), sample(res.KeptOwn))
	}
	if res.Kept > 0 {
		fmt.Fprintf(stdout, ", %d other entries kept", res.Kept)
	}
	fmt.Fprintf(stdout, "; the file prices %d model names.\n", table.Len())
	if len(list.Refused) > 0 {
		fmt.Fprintf(stdout, "Left out %d models whose prices fail the per-token sanity guard (named on stderr)\n", len(list.Refused))
	}
	for _, reason := range sortedKeys(list.Skipped) {
		names := list.Skipped[reason]
		fmt.Fprintf(stdout, "Skipped %d: %s (%s)\n", len(names), reason, sample(names))
	}
	for _, note := range sortedKeys(list.Notes) {
		fmt.Fprintf(stdout, "Note: %d %s\n", list.Notes[note], note)
	}
	fmt.Fprintf(stdout, "The collector reads the pricing file at start: restart it with pricing_file: %s (the default config reads $%s).\n",
		o.out, EnvPricingFile)
	return nil
}

// readList reads the price list and, for a file, its modification time.
func readList(stdin io.Reader, name string) ([]byte, time.Time, error) {
	var r io.Reader = stdin
	var modTime time.Time
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, modTime, err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			modTime = fi.ModTime()
		}
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxListBytes+1))
	if err != nil {
		return nil, modTime, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > maxListBytes {
		return nil, modTime, fmt.Errorf("%s: over %d MiB, not a price list", name, maxListBytes>>20)
	}
	return data, modTime, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sample lists the first few names.
func sample(names []string) string {
	const most = 3
	if len(names) <= most {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:most], ", ") + fmt.Sprintf(", ... %d more", len(names)-most)
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
