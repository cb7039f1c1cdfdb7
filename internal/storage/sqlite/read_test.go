package sqlite

import (
	"testing"

	"github.com/fallom/fallom-collector/internal/storage/storagetest"
)

func TestReader(t *testing.T) { storagetest.RunReader(t, backend()) }
