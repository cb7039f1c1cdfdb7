package console

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hostile text: every displayed field can hold markup. Each payload tries
// to run script (setting window.__xss) by a different route; the test loads
// every page that shows them and checks that none ran, that the page holds
// no element or attribute the payloads would create, and that the payload
// is shown as text.
var payloads = []string{
	`<script>window.__xss="script"</script>`,
	`<img src=x onerror="window.__xss='img'">`,
	`"><svg onload="window.__xss='svg'">`,
	`javascript:window.__xss='js-url'`,
	`'><iframe srcdoc="<script>parent.__xss='iframe'</script>">`,
	`</pre></section><script>window.__xss="breakout"</script>`,
	`{"a":"</script><script>window.__xss='json'</script>"}`,
	`<a href="javascript:window.__xss='link'">click me</a>`,
	`<style>body{display:none}</style><b onmouseover="window.__xss='hover'">x</b>`,
	`${window.__xss='template'}{{.}}`,
}

// hostileFixture places the payloads in every field the console shows:
// session id, customer id, model, provider, span name, status message,
// prompt (roles, text, parts, tool calls), completion and attributes.
func hostileFixture(now time.Time) fixture {
	var f fixture
	for i, p := range payloads {
		id := strings.Repeat("ab", 16)
		c := call{
			traceID: id[:30] + twoHex(i), spanID: id[:14] + twoHex(i), childA: "c0c0c0c0c0c0c0" + twoHex(i), childB: "d0d0d0d0d0d0d0" + twoHex(i),
			start: now.Add(-time.Duration(len(payloads)-i) * time.Minute), duration: 800 * time.Millisecond,
			session: "s/" + p, customer: "c?" + p, model: p, provider: p, name: p,
			in: 10, out: 5, cost: 0.001,
			extraAttr: p,
		}
		msgs, _ := json.Marshal(map[string]any{"messages": []map[string]any{
			{"role": "system", "content": p},
			{"role": p, "content": []map[string]any{{"type": "text", "text": p}, {"type": p, "image_url": map[string]string{"url": p}}}},
			{"role": "assistant", "content": nil, "tool_calls": []map[string]any{{"id": p, "type": "function", "function": map[string]string{"name": p, "arguments": p}}}},
			{"role": "tool", "tool_call_id": p, "content": p},
		}})
		c.prompt = string(msgs)
		comp, _ := json.Marshal(map[string]any{"completion": p, "reasoning": p, "toolCalls": []any{}})
		c.completion = string(comp)
		if i == 3 {
			c.errored, c.statusMessage = true, p
		}
		f.calls = append(f.calls, c)
	}
	return f
}

func twoHex(i int) string { return string("0123456789abcdef"[i/16]) + string("0123456789abcdef"[i%16]) }

// pageReport is what inert reads from a page.
type pageReport struct {
	XSS      *string  `json:"xss"`
	Scripts  []string `json:"scripts"`
	Handlers []string `json:"handlers"`
	Bad      []string `json:"bad"`
	Links    []string `json:"links"`
}

// inert checks the loaded page: no payload ran and none left an element or
// attribute that could run; every link stays on the console.
func inert(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	report := eval[pageReport](t, ctx, `(() => {
		const all = [...document.querySelectorAll("*")];
		return {
			xss: window.__xss === undefined ? null : String(window.__xss),
			scripts: [...document.scripts].map(s => s.getAttribute("src") || "inline"),
			handlers: all.flatMap(e => [...e.attributes].filter(a => a.name.startsWith("on")).map(a => e.tagName + " " + a.name)),
			bad: [...document.querySelectorAll("iframe, img, object, embed, style, base, meta[http-equiv], body *[style]")].map(e => e.outerHTML.slice(0, 80)),
			links: [...document.querySelectorAll("a[href], form[action]")].map(e => e.getAttribute("href") ?? e.getAttribute("action")),
		};
	})()`)
	assert.Nil(t, report.XSS, "%s: a payload ran", page)
	assert.Equal(t, []string{"/static/app.js"}, report.Scripts, "%s: scripts", page)
	assert.Empty(t, report.Handlers, "%s: event handler attributes", page)
	assert.Empty(t, report.Bad, "%s: elements from stored text", page)
	for _, l := range report.Links {
		assert.True(t, strings.HasPrefix(l, "/") && !strings.HasPrefix(l, "//") || strings.HasPrefix(l, "?") || l == "",
			"%s: link %q leaves the console", page, l)
	}
}

func (e *env) testHostile(t *testing.T, ctx context.Context) {
	pages := []string{"/", "/generations", "/generations?limit=1000&q=" + url.QueryEscape("<script>"), "/sessions", "/customers",
		"/generations?model=" + url.QueryEscape(payloads[1])}
	for _, c := range e.evil.calls {
		pages = append(pages,
			"/generations/"+c.traceID+"/"+c.spanID,
			"/sessions/"+url.PathEscape(c.session),
			"/customers/"+url.PathEscape(c.customer),
			"/traces/"+c.traceID)
	}
	for _, p := range pages {
		e.open(t, ctx, p, "main")
		assert.NotEqual(t, "Not found", text(t, ctx, "h1"), p)
		inert(t, ctx, p)
	}
	// The payloads are there, as text: in the detail page of each call ...
	for i, c := range e.evil.calls {
		e.open(t, ctx, "/generations/"+c.traceID+"/"+c.spanID, "#prompt")
		body := eval[string](t, ctx, `document.querySelector("main").innerText`)
		require.Contains(t, body, payloads[i], "payload %d shown as text on its generation page", i)
		want := 8 // model, provider, name, session, customer, prompt, completion, ...
		if c.errored {
			want = 6 // an error has no content; its status message holds the payload
		}
		assert.GreaterOrEqual(t, strings.Count(body, payloads[i]), want, "payload %d shown in every field", i)
		// ... and links made from the hostile ids lead to the right pages.
		run(t, ctx, chromedp.Click(chromedp.CSS("#gen-session")), chromedp.WaitReady(chromedp.CSS("#timeline")))
		assert.Equal(t, c.session, text(t, ctx, "#session-id"))
		inert(t, ctx, "session via link")
	}
	// Following the customer link of a hostile id.
	c := e.evil.calls[0]
	e.open(t, ctx, "/generations/"+c.traceID+"/"+c.spanID, "#gen-customer")
	run(t, ctx, chromedp.Click(chromedp.CSS("#gen-customer")), chromedp.WaitReady(chromedp.CSS("#customer-sessions-table")))
	assert.Equal(t, c.customer, text(t, ctx, "#customer-id"))
	// The session was never ended by anything above.
	assert.Equal(t, "hostile", text(t, ctx, "#project"))
}
