// Package sharedcomponent lets one receiver instance serve several pipelines
// (the fallomsdk receiver feeds a traces and a logs pipeline from one HTTP
// server), as the collector core's internal/sharedcomponent does for the OTLP
// receiver; that package is internal to the core module, hence this one.
// The component is started once, by the first pipeline that starts it, and
// shut down once, by the first that stops it.
package sharedcomponent // import "github.com/fallom/fallom-collector/internal/sharedcomponent"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
)

// Map holds the shared components by key (the component's *Config, which
// the collector creates once per component id).
type Map[K comparable, V component.Component] struct {
	mu         sync.Mutex
	components map[K]*Component[V]
}

// NewMap returns an empty map.
func NewMap[K comparable, V component.Component]() *Map[K, V] {
	return &Map[K, V]{components: map[K]*Component[V]{}}
}

// LoadOrStore returns the component for key, creating it with create when
// there is none.
func (m *Map[K, V]) LoadOrStore(key K, create func() (V, error)) (*Component[V], error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.components[key]; ok {
		return c, nil
	}
	v, err := create()
	if err != nil {
		return nil, err
	}
	c := &Component[V]{component: v, remove: func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.components, key)
	}}
	m.components[key] = c
	return c, nil
}

// Component is a component shared by several pipelines.
type Component[V component.Component] struct {
	component V
	startOnce sync.Once
	startErr  error
	stopOnce  sync.Once
	remove    func()
}

// Unwrap returns the shared component.
func (c *Component[V]) Unwrap() V { return c.component }

// Start starts the component the first time; later calls return the first
// call's error, so every pipeline sharing it sees a failed start.
func (c *Component[V]) Start(ctx context.Context, host component.Host) error {
	c.startOnce.Do(func() { c.startErr = c.component.Start(ctx, host) })
	return c.startErr
}

// Shutdown stops the component the first time and forgets it, so a
// collector that reloads its config creates a fresh one.
func (c *Component[V]) Shutdown(ctx context.Context) error {
	var err error
	c.stopOnce.Do(func() {
		err = c.component.Shutdown(ctx)
		c.remove()
	})
	return err
}
