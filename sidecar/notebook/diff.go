package notebook

import (
	"fmt"
	"strings"
)

// Diff returns a compact unified-style diff of two sources: each changed
// region of lines (Align) with up to context unchanged lines around it;
// regions whose context would meet share a block.
func Diff(old, new string, context int) string {
	if old == new {
		return "(no change)"
	}
	a, b := Lines(old), Lines(new)
	hs := Hunks(Align(a, b), len(b))
	var sb strings.Builder
	kept := func(ls []string) {
		for _, l := range ls {
			sb.WriteString("  " + l + "\n")
		}
	}
	for k := 0; k < len(hs); {
		end := k + 1
		for end < len(hs) && hs[end].A0-hs[end-1].A1 <= 2*context {
			end++
		}
		from := max(hs[k].A0-context, 0)
		fmt.Fprintf(&sb, "@@ line %d @@\n", from+1)
		kept(a[from:hs[k].A0])
		for i, h := range hs[k:end] {
			if i > 0 {
				kept(a[hs[k+i-1].A1:h.A0])
			}
			for _, l := range a[h.A0:h.A1] {
				sb.WriteString("- " + l + "\n")
			}
			for _, l := range b[h.B0:h.B1] {
				sb.WriteString("+ " + l + "\n")
			}
		}
		last := hs[end-1].A1
		kept(a[last:min(last+context, len(a))])
		k = end
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
