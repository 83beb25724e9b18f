package tools

import (
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{"a/b.ipynb", "a/b.ipynb", ""},
		{"a//b.ipynb", "a/b.ipynb", ""},
		{"/", "", ""},
		{"/a/b.ipynb", "", `is absolute: paths are relative to the Jupyter root (e.g. "a/b.ipynb")`},
		{"/home/jovyan/work/x.ipynb", "", "is absolute"},
		{"./a/./b.ipynb", "a/b.ipynb", ""},
		{"", "", ""},
		{"../x.ipynb", "", "leaves the Jupyter root"},
		{"a/../../x", "", "leaves the Jupyter root"},
		{"a/../b", "", "leaves the Jupyter root"},
		{`a\b.ipynb`, "", `use "/"`},
	}
	for _, tc := range tests {
		got, err := cleanPath(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("cleanPath(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
