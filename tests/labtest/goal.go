package labtest

import "fmt"

// GoalLine states one performance goal, as `make bench` collects them
// (lines starting "goal:"): measured against baseline (both in unit),
// their ratio, and whether the ratio meets the goal (cmp target, cmp "<="
// or ">=").
func GoalLine(what, unit string, measured, baseline float64, cmp string, target float64) string {
	ratio := measured / baseline
	met := ratio <= target
	if cmp == ">=" {
		met = ratio >= target
	}
	verdict := "MISSED"
	if met {
		verdict = "MET"
	}
	figure := func(v float64) string { // two decimals for small figures (CPU seconds)
		if v < 10 {
			return fmt.Sprintf("%.2f %s", v, unit)
		}
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("goal: %s %s vs %s = %.2f (goal %s %.2g) %s", what, figure(measured), figure(baseline), ratio, cmp, target, verdict)
}
