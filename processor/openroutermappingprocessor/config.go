package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/fallom/fallom-collector/internal/pricing"
)

// Config of the openroutermapping processor.
type Config struct {
	// DefaultProjectID is stamped as the resource attribute fallom.project_id
	// on data that arrives without an authenticated project (no fallomauth
	// principal in the request context), replacing what the sender put there
	// (unless TrustResourceProject). Empty, and TrustResourceProject off
	// (the default): such data is refused.
	DefaultProjectID string `mapstructure:"default_project_id"`

	// TrustResourceProject lets data without an authenticated project keep
	// the fallom.project_id its sender set on the resource (those without
	// one get DefaultProjectID, if set, else stay as they are). Only for
	// senders that are trusted anyway: applications of a sidecar on
	// localhost, or an upstream collector that stamped the project.
	TrustResourceProject bool `mapstructure:"trust_resource_project"`

	// DropContent removes prompts and completions (every source attribute,
	// and the content of gen_ai.* span events); tokens, cost and timing stay.
	DropContent bool `mapstructure:"drop_content"`

	// KeepOriginalContent keeps the source content attributes (gen_ai.prompt,
	// span.input, llm.input_messages.N.*, ...) next to the normalized
	// fallom.prompt / fallom.completion, for downstream backends that expect
	// them. By default they are removed so content is stored once.
	KeepOriginalContent bool `mapstructure:"keep_original_content"`

	// MaxValueBytes caps each value the processor writes (prompt, completion,
	// model, ...); longer values are truncated and flagged. 0 = no limit.
	MaxValueBytes int `mapstructure:"max_value_bytes"`

	// PricingFile is a YAML file of per-token prices that override the
	// built-in table (see README).
	PricingFile string `mapstructure:"pricing_file"`

	// RetryAfter is the back-off that retryable errors from later pipeline
	// stages (memory_limiter, exporter) ask of the client: the receiver sends
	// it as `Retry-After` with HTTP 503. 0 leaves those errors as they are.
	RetryAfter time.Duration `mapstructure:"retry_after"`
}

const (
	defaultMaxValueBytes = 1 << 20
	minMaxValueBytes     = 256
	defaultRetryAfter    = 5 * time.Second
)

func createDefaultConfig() *Config {
	return &Config{MaxValueBytes: defaultMaxValueBytes, RetryAfter: defaultRetryAfter}
}

// Validate checks the configuration, including that the pricing file loads.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxValueBytes < 0 {
		errs = append(errs, fmt.Errorf("max_value_bytes must be 0 (no limit) or positive, got %d", c.MaxValueBytes))
	} else if c.MaxValueBytes > 0 && c.MaxValueBytes < minMaxValueBytes {
		errs = append(errs, fmt.Errorf("max_value_bytes must be 0 (no limit) or at least %d, got %d", minMaxValueBytes, c.MaxValueBytes))
	}
	if c.RetryAfter < 0 {
		errs = append(errs, fmt.Errorf("retry_after must be 0 (off) or positive, got %v", c.RetryAfter))
	}
	if c.DropContent && c.KeepOriginalContent {
		errs = append(errs, errors.New("drop_content and keep_original_content contradict each other: drop_content removes the original content"))
	}
	if n := utf8.RuneCountInString(c.DefaultProjectID); n > maxIDChars || !utf8.ValidString(c.DefaultProjectID) {
		errs = append(errs, fmt.Errorf("default_project_id must be valid UTF-8 of at most %d characters", maxIDChars))
	}
	if c.PricingFile != "" {
		if _, err := pricing.LoadFile(c.PricingFile); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
