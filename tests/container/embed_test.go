package container

import (
	"context"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// frameName names the iframe that holds the lab in every test page.
const frameName = "embedded-lab"

// framer serves, on its own 127.0.0.1 port (so its own origin), a page that
// frames the URL in its query: /?src=<url>.
type framer struct {
	Origin string // http://127.0.0.1:<port>
	srv    *http.Server
}

var framePageHTML = template.Must(template.New("page").Parse(
	`<!doctype html><title>embedding page</title><iframe name="` + frameName + `" src="{{.}}" width="800" height="600"></iframe>`))

func startFramer() (*framer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = framePageHTML.Execute(w, r.URL.Query().Get("src"))
	})}
	go func() { _ = srv.Serve(ln) }()
	return &framer{Origin: "http://" + ln.Addr().String(), srv: srv}, nil
}

func (f *framer) Close() { _ = f.srv.Close() }

// pageFraming is the framer's URL for a page that frames target.
func (f *framer) pageFraming(target string) string {
	return f.Origin + "/?src=" + url.QueryEscape(target)
}

// browser starts headless Chromium for one test.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("no Chromium found: apt-get install chromium (.ci/run does)")
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// embeddedFrame waits until the iframe named frameName has either loaded a
// document of labOrigin (true) or been replaced by Chromium's error page,
// which is what a frame-ancestors refusal gives (false).
func embeddedFrame(t *testing.T, ctx context.Context, labOrigin string) bool {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		tree, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		for _, child := range tree.FrameTree.ChildFrames {
			f := child.Frame
			if f.Name != frameName {
				continue
			}
			switch {
			case f.SecurityOrigin == labOrigin:
				return true
			case strings.HasPrefix(f.URL, "chrome-error:"):
				if !strings.HasPrefix(f.UnreachableURL, labOrigin) {
					t.Fatalf("frame failed to load %q, not the lab", f.UnreachableURL)
				}
				return false
			}
			last = f.URL
		}
		time.Sleep(100 * time.Millisecond) // polling the browser's state, with a deadline
	}
	t.Fatalf("the frame neither loaded nor failed in 60 s (last URL %q)", last)
	return false
}

// labOrigin is the lab's origin: http://127.0.0.1:<port>.
func (l *lab) origin() string { return strings.TrimSuffix(l.URL, "/") }

// By default another origin cannot frame the lab (CSP frame-ancestors
// 'self'), nor the embed page that holds it.
func TestFrameBlockedByDefault(t *testing.T) {
	for _, path := range []string{"lab", "mcp/embed"} {
		t.Run(path, func(t *testing.T) {
			ctx := browser(t)
			if err := chromedp.Do(ctx, chromedp.Navigate(framePage.pageFraming(shared.URL+path+"?token="+shared.Token))); err != nil {
				t.Fatal(err)
			}
			if embeddedFrame(t, ctx, shared.origin()) {
				t.Fatalf("a page of %s framed %s; want it refused", framePage.Origin, path)
			}
		})
	}
}

// A page of the lab's own origin frames it by default.
func TestFrameSameOriginByDefault(t *testing.T) {
	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(shared.URL+"lab?token="+shared.Token)); err != nil {
		t.Fatal(err)
	}
	add := fmt.Sprintf(`(() => {
		const f = document.createElement("iframe");
		f.name = %q;
		f.src = "/lab";
		document.body.appendChild(f);
		return "added";
	})()`, frameName)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](add)); err != nil {
		t.Fatal(err)
	}
	if !embeddedFrame(t, ctx, shared.origin()) {
		t.Fatal("the lab's own page could not frame the lab")
	}
}

// JUPYTER_FRAME_ANCESTORS lets the listed origin frame the lab, and only
// that: XSRF stays on and no CORS header appears.
func TestFrameAllowedOrigin(t *testing.T) {
	l, err := startLab(t.Context(), labOptions{token: randomToken(),
		env: map[string]string{"JUPYTER_FRAME_ANCESTORS": "https://other.example " + framePage.Origin}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Terminate()

	// The browser's view: log in with the token (the jar keeps the cookies).
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.Get(l.URL + "lab?token=" + l.Token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := "frame-ancestors 'self' https://other.example " + framePage.Origin
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, want) {
		t.Fatalf("Content-Security-Policy = %q, want it to start with %q", csp, want)
	}
	if acao := resp.Header.Get("Access-Control-Allow-Origin"); acao != "" {
		t.Fatalf("Access-Control-Allow-Origin = %q, want none", acao)
	}
	// The embed page's policy is the lab's.
	resp, err = client.Get(l.URL + "mcp/embed")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(csp, want) {
		t.Fatalf("embed page: %s, Content-Security-Policy = %q, want it to start with %q", resp.Status, csp, want)
	}
	// A cookie-authenticated POST without the XSRF token is still refused.
	resp, err = client.Post(l.URL+"api/contents", "application/json", strings.NewReader(`{"type":"notebook"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cookie POST without the XSRF token: %s, want 403", resp.Status)
	}

	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(framePage.pageFraming(l.URL+"lab?token="+l.Token))); err != nil {
		t.Fatal(err)
	}
	if !embeddedFrame(t, ctx, l.origin()) {
		t.Fatalf("%s is listed in JUPYTER_FRAME_ANCESTORS but could not frame the lab", framePage.Origin)
	}
}

// The image's config refuses a JUPYTER_FRAME_ANCESTORS that is not a list
// of origins, rather than writing it into the header. (Jupyter logs the
// error and keeps its default policy, so the lab stays unframeable.)
func TestFrameAncestorsRejectsBadValue(t *testing.T) {
	load := `from traitlets.config import Config; exec(open("/etc/jupyter/jupyter_server_config.py").read(), {"get_config": Config})`
	code, out, err := shared.Exec(t.Context(), "env", "JUPYTER_FRAME_ANCESTORS=https://ok.example 'unsafe-inline'; script-src *",
		"python", "-c", load)
	if err != nil {
		t.Fatal(err)
	}
	if code == 0 || !strings.Contains(out, "JUPYTER_FRAME_ANCESTORS: 'unsafe-inline';, script-src, *") {
		t.Fatalf("bad value accepted (exit %d):\n%s", code, out)
	}
}
