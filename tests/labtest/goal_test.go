package labtest

import "testing"

func TestGoalLine(t *testing.T) {
	for _, c := range []struct {
		what                       string
		measured, baseline, target float64
		cmp, want                  string
	}{
		{"at the limit", 15, 10, 1.5, "<=", "goal: at the limit 15.0 ms vs 10.0 ms = 1.50 (goal <= 1.5) MET"},
		{"over", 16, 10, 1.5, "<=", "goal: over 16.0 ms vs 10.0 ms = 1.60 (goal <= 1.5) MISSED"},
		{"a third", 20, 100, 1.0 / 3, "<=", "goal: a third 20.0 ms vs 100.0 ms = 0.20 (goal <= 0.33) MET"},
		{"small figures", 0.14, 0.48, 1, "<=", "goal: small figures 0.14 ms vs 0.48 ms = 0.29 (goal <= 1) MET"},
		{"at least", 2, 1, 3, ">=", "goal: at least 2.00 ms vs 1.00 ms = 2.00 (goal >= 3) MISSED"},
	} {
		if got := GoalLine(c.what, "ms", c.measured, c.baseline, c.cmp, c.target); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}
