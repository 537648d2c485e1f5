package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/distributed-go/distributed/observer"
)

// findChromium returns a Chromium or Chrome binary, or "" if there is none.
func findChromium() string {
	if p := os.Getenv("DIST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// screenshotPath is where the browser test saves its screenshot:
// $DIST_SCREENSHOT, else dist-observer.png in the temporary directory.
func screenshotPath() string {
	if p := os.Getenv("DIST_SCREENSHOT"); p != "" {
		return p
	}
	return filepath.Join(os.TempDir(), "dist-observer.png")
}

// TestObserverInBrowser drives headless Chromium against a 3-process
// cluster (dist demo, with its replicated key-value store): the page shows
// three members and the Raft leader; clicking kill on the leader removes that
// actor and the page shows a new leader, in a later term, and the killed
// member restarted by its supervisor. It skips when no Chromium is installed (.ci/run installs
// Debian's chromium).
func TestObserverInBrowser(t *testing.T) {
	chrome := findChromium()
	if chrome == "" {
		t.Skip("no chromium binary found (apt-get install chromium, or set DIST_CHROMIUM)")
	}
	if testing.Short() {
		t.Skip("starts a 3-process cluster and a browser")
	}
	d := startDemo(t)
	url := "http://" + d.addr + "/"

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 1100))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	// evalUntil polls a JavaScript expression in the page until it is true.
	evalUntil := func(what, expr string, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
			if err != nil {
				t.Fatalf("%s: evaluating %s: %v", what, expr, err)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
				t.Fatalf("timed out after %v waiting in the page for: %s\n%.3000s", d, what, html)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#members"))); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	evalUntil("three alive members", `document.querySelectorAll('#members tr[data-state="alive"]').length === 3`, 30*time.Second)
	// The Raft members show their role and term (Context.SetInfo).
	leaderRow := `[...document.querySelectorAll('tr.proc')].find(r => /role=leader /.test(r.textContent))`
	evalUntil("a Raft leader in the page", leaderRow+` !== undefined`, 30*time.Second)
	oldPID, err := chromedp.Run(ctx, chromedp.Evaluate[string](leaderRow+`.dataset.pid`))
	if err != nil {
		t.Fatal(err)
	}
	oldTerm, err := chromedp.Run(ctx, chromedp.Evaluate[int](`+(`+leaderRow+`.textContent.match(/term=(\d+)/)[1])`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %s in term %d", oldPID, oldTerm)

	// Click the leader's kill button.
	sel := fmt.Sprintf(`tr.proc[data-pid=%q] button.kill`, oldPID)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		t.Fatalf("click kill: %v", err)
	}
	evalUntil("the killed leader gone from the page",
		fmt.Sprintf(`document.querySelector('tr.proc[data-pid=%q]') === null`, oldPID), 15*time.Second)
	evalUntil("a new leader, in a later term, in the page",
		fmt.Sprintf(`(() => { const r = %s; return r !== undefined && +(r.textContent.match(/term=(\d+)/)[1]) > %d })()`, leaderRow, oldTerm),
		15*time.Second)
	evalUntil("the killed member restarted by its supervisor, in the page's recent changes",
		`document.getElementById("events").textContent.includes("restarted by its supervisor")`, 10*time.Second)
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#message")))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("page message after the kill: %q", msg)

	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := screenshotPath()
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the observer after the kill: %s", path)
	fmt.Fprintf(os.Stderr, "observer screenshot: %s\n", path)
}

// With a cluster secret, the page works when opened with the #token=… URL
// that dist demo --secret prints, and explains itself without it.
func TestObserverInBrowserWithSecret(t *testing.T) {
	chrome := findChromium()
	if chrome == "" {
		t.Skip("no chromium binary found (apt-get install chromium, or set DIST_CHROMIUM)")
	}
	if testing.Short() {
		t.Skip("starts a node and a browser")
	}
	addr := startSoloNode(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	poll := func(what, expr string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
				t.Fatalf("timed out waiting in the page for: %s\n%.2000s", what, html)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatal(err)
	}
	poll("the page asks for the secret", `document.getElementById("message").textContent.includes("this cluster has a secret")`)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/#token="+observer.Token("cookie"))); err != nil {
		t.Fatal(err)
	}
	poll("the member and its read-only tree", `document.querySelectorAll('#members tr[data-state="alive"]').length === 1 &&
		document.querySelector('tr.proc[data-child="counter"]') !== null && document.body.classList.contains("readonly")`)
}
