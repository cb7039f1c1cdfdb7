package sharedcomponent

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
)

type counting struct {
	starts, stops int
	startErr      error
}

func (c *counting) Start(context.Context, component.Host) error { c.starts++; return c.startErr }
func (c *counting) Shutdown(context.Context) error              { c.stops++; return nil }

func TestSharedOncePerKey(t *testing.T) {
	m := NewMap[string, *counting]()
	created := 0
	create := func() (*counting, error) { created++; return &counting{}, nil }
	a, err := m.LoadOrStore("cfg", create)
	require.NoError(t, err)
	b, err := m.LoadOrStore("cfg", create)
	require.NoError(t, err)
	assert.Same(t, a, b, "the traces and logs pipelines share one instance")
	assert.Equal(t, 1, created)

	host := componenttest.NewNopHost()
	require.NoError(t, a.Start(context.Background(), host))
	require.NoError(t, b.Start(context.Background(), host))
	require.NoError(t, a.Shutdown(context.Background()))
	require.NoError(t, b.Shutdown(context.Background()))
	assert.Equal(t, 1, a.Unwrap().starts)
	assert.Equal(t, 1, a.Unwrap().stops)

	c, err := m.LoadOrStore("cfg", create)
	require.NoError(t, err)
	assert.NotSame(t, a, c, "after shutdown (a config reload) a fresh instance is made")
}

func TestStartErrorSeenByEveryPipeline(t *testing.T) {
	m := NewMap[string, *counting]()
	boom := errors.New("port in use")
	a, err := m.LoadOrStore("cfg", func() (*counting, error) { return &counting{startErr: boom}, nil })
	require.NoError(t, err)
	assert.ErrorIs(t, a.Start(context.Background(), componenttest.NewNopHost()), boom)
	assert.ErrorIs(t, a.Start(context.Background(), componenttest.NewNopHost()), boom)
	assert.Equal(t, 1, a.Unwrap().starts)

	_, err = m.LoadOrStore("other", func() (*counting, error) { return nil, boom })
	assert.ErrorIs(t, err, boom)
}
