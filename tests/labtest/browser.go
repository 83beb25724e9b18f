package labtest

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium starts headless Chromium (/usr/bin/chromium) with a profile of
// its own, stopped when the test ends or parent is done, and returns the
// context of its first tab. extra adds flags.
func Chromium(tb testing.TB, parent context.Context, extra ...chromedp.ExecAllocatorOption) context.Context {
	tb.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1400, 1000),
		chromedp.UserDataDir(tb.TempDir()),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}
