package notebook

import (
	"fmt"
	"strings"
)

// Diff returns a compact unified-style diff of two sources: the changed
// lines with up to context unchanged lines around them. Edits are usually
// local, so trimming the common head and tail is enough and keeps the
// answer small.
func Diff(old, new string, context int) string {
	if old == new {
		return "(no change)"
	}
	a, b := strings.Split(old, "\n"), strings.Split(new, "\n")
	head, tail := CommonEnds(a, b)
	from := max(head-context, 0)
	var sb strings.Builder
	fmt.Fprintf(&sb, "@@ line %d @@\n", from+1)
	for _, l := range a[from:head] {
		sb.WriteString("  " + l + "\n")
	}
	for _, l := range a[head : len(a)-tail] {
		sb.WriteString("- " + l + "\n")
	}
	for _, l := range b[head : len(b)-tail] {
		sb.WriteString("+ " + l + "\n")
	}
	for _, l := range a[len(a)-tail : min(len(a)-tail+context, len(a))] {
		sb.WriteString("  " + l + "\n")
	}
	return strings.TrimRight(sb.String(), "\n")
}

// CommonEnds returns how many leading and then trailing elements a and b
// share; the two runs never overlap.
func CommonEnds[T comparable](a, b []T) (head, tail int) {
	for head < len(a) && head < len(b) && a[head] == b[head] {
		head++
	}
	for tail < len(a)-head && tail < len(b)-head && a[len(a)-1-tail] == b[len(b)-1-tail] {
		tail++
	}
	return head, tail
}
