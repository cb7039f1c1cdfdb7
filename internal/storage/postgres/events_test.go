package postgres

import (
	"testing"

	"github.com/fallom/fallom-collector/internal/storage/storagetest"
)

func TestEvents(t *testing.T) { storagetest.RunEvents(t, backend()) }

func TestExperiments(t *testing.T) { storagetest.RunExperiments(t, backend()) }
