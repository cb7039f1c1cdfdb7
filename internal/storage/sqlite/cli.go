package sqlite

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

// NewCommand returns the `sqlite` command that the main program adds to the
// collector's root command: maintenance of a SQLite database file.
func NewCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:          "sqlite",
		Short:        "Maintain the SQLite database file of the fallom exporter",
		SilenceUsage: true,
	}
	cmd.AddCommand(newPageSizeCommand())
	return cmd
}

func newPageSizeCommand() *cobra.Command {
	var set int
	cmd := &cobra.Command{
		Use:   "page-size FILE",
		Short: "Show the page size of a database file, or convert the file to another page size",
		Long: "A new database file gets storage.sqlite.page_size (default " + strconv.Itoa(DefaultPageSize) + ");\n" +
			"an existing file keeps the page size it was made with. --set rewrites the file with the given\n" +
			"page size (the journal switched out of WAL, VACUUM, WAL again), keeping every row.\n\n" +
			"Stop the collector first: while anything has the file open the conversion fails and changes\n" +
			"nothing. VACUUM writes a copy of the database before replacing it: it needs free disk space\n" +
			"about the size of the file and takes about as long as reading and writing it.",
		Example: "  fallomcol sqlite page-size ./data/fallom.db\n" +
			"  fallomcol sqlite page-size --set 16384 ./data/fallom.db",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			out := cmd.OutOrStdout()
			if set == 0 {
				n, err := filePageSize(path)
				if err != nil {
					return err
				}
				if n == 0 {
					return fmt.Errorf("%s is not a SQLite database (missing, empty or another kind of file)", path)
				}
				fmt.Fprintf(out, "%s: page size %d\n", path, n)
				return nil
			}
			before, after, err := ConvertPageSize(cmd.Context(), path, set)
			if err != nil {
				return err
			}
			if before == after {
				fmt.Fprintf(out, "%s: page size is %d already; nothing changed\n", path, after)
				return nil
			}
			fmt.Fprintf(out, "%s: page size %d -> %d\n", path, before, after)
			return nil
		},
	}
	cmd.Flags().IntVar(&set, "set", 0, "convert the file to this page size (a power of two from 512 to 65536)")
	return cmd
}
