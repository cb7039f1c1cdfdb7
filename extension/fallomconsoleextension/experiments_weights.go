package fallomconsoleextension

import (
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/fallom/fallom-collector/internal/sdkfile"
)

// sdkFileReload is how often the console re-reads the SDK file besides
// file-system notifications (as the fallomsdk receiver's default).
const sdkFileReload = 30 * time.Second

// startSDKFile watches sdk_file for the experiments' configured weights.
// The file is the fallomsdk receiver's: a missing or invalid file is its
// problem to report (it refuses to start on an invalid one); here it only
// leaves the weights unknown, logged, and the console serves on.
func (c *console) startSDKFile() {
	if c.cfg.SDKFile == "" {
		return
	}
	w := sdkfile.NewWatcher(c.cfg.SDKFile, sdkFileReload, c.logger, nil)
	if err := w.Load(); err != nil {
		c.logger.Warn("the SDK file cannot be read; experiments show no configured weights until it can",
			zap.String("sdk_file", c.cfg.SDKFile), zap.Error(err))
	}
	w.Start()
	c.sdkFile, c.weights = w, sdkFileWeights{w}
}

// sdkFileWeights reads the weights from the SDK file in force, through
// the answers the receiver serves the SDKs (so they are the weights the
// SDKs split sessions by).
type sdkFileWeights struct{ w *sdkfile.Watcher }

func (s sdkFileWeights) ConfigWeights(project, key string, version int64) ([]string, []float64, bool) {
	if version < 0 || version > 1<<31 {
		return nil, nil, false
	}
	b, ok := s.w.Current().Project(project).ConfigVersionJSON(key, int(version))
	if !ok {
		return nil, nil, false
	}
	var cfg sdkfile.Config
	if err := json.Unmarshal(b, &cfg); err != nil || len(cfg.Variants) == 0 {
		return nil, nil, false
	}
	models, weights := make([]string, len(cfg.Variants)), make([]float64, len(cfg.Variants))
	for i, v := range cfg.Variants {
		models[i], weights[i] = v.Model, v.Weight
	}
	return models, weights, true
}

// PromptTestWeights returns the current (last listed) version's weights:
// the one the SDK's getAB uses.
func (s sdkFileWeights) PromptTestWeights(project, key string) ([]float64, bool) {
	var doc struct {
		Tests []sdkfile.PromptABTest `json:"prompt_ab_tests"`
	}
	if err := json.Unmarshal(s.w.Current().Project(project).PromptABTestsJSON(), &doc); err != nil {
		return nil, false
	}
	var weights []float64
	for _, t := range doc.Tests {
		if t.Key == key {
			weights = weights[:0]
			for _, v := range t.Variants {
				weights = append(weights, v.Weight)
			}
		}
	}
	return weights, len(weights) > 0
}
