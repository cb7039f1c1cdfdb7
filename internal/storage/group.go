package storage

import (
	"context"
	"sync"
	"time"
)

// GroupCommitter merges concurrent writes into shared transactions (group
// commit): a caller queues its spans; whichever caller gets a free slot
// takes everything queued and commits it in one transaction (one fsync, one
// WAL append, one round trip per statement), so a database's batches grow
// with the load instead of each caller waiting for its own transaction.
//
// Every caller still gets the answer its own spans earned (Request): a span
// the database refuses is reported to the caller that sent it, never to the
// others of its group.
//
// Contexts: a caller's context governs only that caller. Waiting (for a
// slot, or for the group holding its spans) ends when its context ends; the
// group's transaction runs under a context of its own that ends at the
// latest deadline of its callers, or once every one of them has gone. A
// caller that stops waiting gets its context's error, and its spans may
// still be committed by the group (a retry of them is harmless: writes are
// idempotent).
type GroupCommitter struct {
	// Commit writes the requests of one group and sets each one's Result
	// and Err (a transaction-level error goes to every request).
	Commit func(ctx context.Context, group []*Request)
	// MaxSpans bounds the spans of one group (0: no bound); a caller's
	// spans are never split.
	MaxSpans int

	slots chan struct{}

	mu      sync.Mutex
	pending []*pendingWrite
}

// pendingWrite is one caller waiting for a group commit.
type pendingWrite struct {
	req   Request
	ctx   context.Context
	taken bool          // guarded by GroupCommitter.mu
	done  chan struct{} // closed when req.Result and req.Err are set
}

// NewGroupCommitter returns a committer running at most concurrency groups
// at once (1 for SQLite's single writer; up to the pool size for
// PostgreSQL).
func NewGroupCommitter(concurrency int, maxSpans int, commit func(context.Context, []*Request)) *GroupCommitter {
	if concurrency < 1 {
		concurrency = 1
	}
	return &GroupCommitter{Commit: commit, MaxSpans: maxSpans, slots: make(chan struct{}, concurrency)}
}

// Write queues spans and returns once the transaction holding them has
// committed or failed, or once ctx ends.
func (g *GroupCommitter) Write(ctx context.Context, spans []Span) (WriteResult, error) {
	if len(spans) == 0 {
		return WriteResult{}, nil
	}
	w := &pendingWrite{req: Request{Spans: spans}, ctx: ctx, done: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, w)
	g.mu.Unlock()
	for {
		select {
		case <-w.done:
			return w.answer(ctx)
		case <-ctx.Done():
			g.mu.Lock()
			if !w.taken {
				g.remove(w)
			}
			g.mu.Unlock()
			return WriteResult{}, ctx.Err()
		case g.slots <- struct{}{}:
			g.mu.Lock()
			if w.taken { // another caller's group holds it: wait for that
				g.mu.Unlock()
				<-g.slots
				select {
				case <-w.done:
					return w.answer(ctx)
				case <-ctx.Done():
					return WriteResult{}, ctx.Err()
				}
			}
			group := g.take()
			g.mu.Unlock()
			g.run(group)
			<-g.slots
		}
	}
}

// answer is what Write returns once w's group is done. A caller whose
// context ended while its group ran gets its context's error if the group
// failed: the failure may be the abandoned transaction itself (when every
// caller of a group has gone, groupContext ends and database/sql rolls the
// transaction back, so its next statement fails with "sql: statement is
// closed"), which says nothing about the spans.
func (w *pendingWrite) answer(ctx context.Context) (WriteResult, error) {
	if w.req.Err != nil && ctx.Err() != nil {
		return w.req.Result, ctx.Err()
	}
	return w.req.Result, w.req.Err
}

// take removes the oldest pending writes (up to MaxSpans spans, at least
// one write) from the queue. Callers hold g.mu.
func (g *GroupCommitter) take() []*pendingWrite {
	n, spans := 0, 0
	for n < len(g.pending) {
		s := len(g.pending[n].req.Spans)
		if n > 0 && g.MaxSpans > 0 && spans+s > g.MaxSpans {
			break
		}
		spans += s
		n++
	}
	group := make([]*pendingWrite, n)
	copy(group, g.pending[:n])
	for _, w := range group {
		w.taken = true
	}
	rest := copy(g.pending, g.pending[n:])
	clear(g.pending[rest:])
	g.pending = g.pending[:rest]
	return group
}

func (g *GroupCommitter) remove(w *pendingWrite) {
	for i, p := range g.pending {
		if p == w {
			g.pending = append(g.pending[:i], g.pending[i+1:]...)
			return
		}
	}
}

// run commits group under a context that no single caller's cancellation
// ends.
func (g *GroupCommitter) run(group []*pendingWrite) {
	ctx, cancel := groupContext(group)
	defer cancel()
	reqs := make([]*Request, len(group))
	for i, w := range group {
		reqs[i] = &w.req
	}
	g.Commit(ctx, reqs)
	for _, w := range group {
		close(w.done)
	}
}

// groupContext ends at the latest deadline of the group's callers (none if
// one has none), or as soon as every caller's context has ended: then no
// one waits for the result and the transaction is abandoned.
func groupContext(group []*pendingWrite) (context.Context, context.CancelFunc) {
	var latest time.Time
	unbounded := false
	for _, w := range group {
		d, ok := w.ctx.Deadline()
		if !ok {
			unbounded = true
		} else if d.After(latest) {
			latest = d
		}
	}
	base := context.WithoutCancel(group[0].ctx)
	var ctx context.Context
	var cancelDeadline context.CancelFunc
	if unbounded {
		ctx, cancelDeadline = context.WithCancel(base)
	} else {
		ctx, cancelDeadline = context.WithDeadline(base, latest)
	}
	var mu sync.Mutex
	remaining := len(group)
	stops := make([]func() bool, 0, len(group))
	for _, w := range group {
		stops = append(stops, context.AfterFunc(w.ctx, func() {
			mu.Lock()
			remaining--
			last := remaining == 0
			mu.Unlock()
			if last {
				cancelDeadline()
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancelDeadline()
	}
}
