package sdkfile

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// EnvSDKFile overrides the default SDK file location, for the CLI and for
// the shipped default config (`${env:FALLOM_SDK_FILE:-./data/sdk.yaml}`).
const EnvSDKFile = "FALLOM_SDK_FILE"

// DefaultSDKFile is used when neither an argument nor FALLOM_SDK_FILE is given.
const DefaultSDKFile = "./data/sdk.yaml"

// NewCommand returns the `sdk` command that the main program adds to the
// collector's root command.
func NewCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:          "sdk",
		Short:        "Work with the SDK file (configs, prompts, prompt A/B tests and datasets served to the Fallom SDKs)",
		SilenceUsage: true,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check an SDK file as the collector would load it; exit status 1 with every problem when it is not valid",
		Long: "Reads FILE (default: $" + EnvSDKFile + ", else " + DefaultSDKFile + ") and checks it as the\n" +
			"fallomsdk receiver does before serving it. Each problem names its project, key and\n" +
			"version. A running collector keeps its last good file when an edit is not valid, so\n" +
			"run this before committing prompts and configs kept in git.",
		Example:      "  fallomcol sdk validate ./data/sdk.yaml",
		Args:         cobra.MaximumNArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := DefaultSDKFile
			if v := os.Getenv(EnvSDKFile); v != "" {
				path = v
			}
			if len(args) == 1 {
				path = args[0]
			}
			return validate(cmd.OutOrStdout(), path)
		},
	})
	return cmd
}

func validate(stdout io.Writer, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f, err := Parse(data)
	if errors.Is(err, ErrEmptyFile) {
		fmt.Fprintf(stdout, "%s: valid, empty (serves nothing)\n", path)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s is not valid:\n%w", path, err)
	}
	configs, prompts, tests, datasets := 0, 0, 0, 0
	for _, id := range f.Projects() {
		p := f.Project(id)
		configs += p.Configs
		prompts += p.Prompts
		tests += p.PromptABTests
		datasets += p.Datasets
	}
	fmt.Fprintf(stdout, "%s: valid: %d projects, %d configs, %d prompts, %d prompt A/B tests, %d datasets\n",
		path, len(f.Projects()), configs, prompts, tests, datasets)
	return nil
}
