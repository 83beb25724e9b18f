package z2jh

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
)

const (
	chartVersion = "4.4.0"
	// kubeVersion is the Kubernetes version the chart is rendered for, as
	// `helm template --kube-version` does (the chart wants >= 1.28).
	kubeVersion = "v1.34.0"
	namespace   = "jhub"
	repoRoot    = "../../.."
	valuesPath  = repoRoot + "/jupyter_config/hub/z2jh/values.yaml"
	chartSource = "testdata/chart/jupyterhub"
)

// object is one rendered Kubernetes object, decoded.
type object map[string]any

func (o object) kind() string { return o.str("kind") }
func (o object) name() string { return o.str("metadata.name") }

// get is the value at a dotted path, or nil.
func (o object) get(path string) any {
	var v any = map[string]any(o)
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func (o object) str(path string) string { s, _ := o.get(path).(string); return s }
func (o object) list(path string) []any { l, _ := o.get(path).([]any); return l }

// obj is the map at a dotted path, or nil.
func (o object) obj(path string) map[string]any {
	m, _ := o.get(path).(map[string]any)
	return m
}

// packaged is the chart as its release 4.4.0 is packaged: the source of
// that tag (testdata) with the versions chartpress stamps into Chart.yaml
// and the images' tags, and values.schema.json made from the YAML schema.
func packaged(t *testing.T) *chart.Chart {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "jupyterhub")
	err := filepath.WalkDir(chartSource, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(chartSource, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch rel {
		case "Chart.yaml":
			data = []byte(strings.Replace(string(data), "0.0.1-set.by.chartpress", chartVersion, 1))
		case "values.yaml":
			data = []byte(strings.ReplaceAll(string(data), `"set-by-chartpress"`, `"`+chartVersion+`"`))
		case "values.schema.yaml":
			var schema any
			if err := yaml.Unmarshal(data, &schema); err != nil {
				return err
			}
			js, err := json.Marshal(schema)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, "values.schema.json"), js, 0o644); err != nil {
				return err
			}
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := loader.LoadDir(dir) // .helmignore applies, as to `helm package`
	if err != nil {
		t.Fatalf("helm cannot load the chart: %v", err)
	}
	return c
}

// render renders the chart with values as `helm template` does (Helm's
// install action, client only), values checked against the chart's
// schema; it returns every object, hooks included.
func render(t *testing.T, values map[string]any) ([]object, error) {
	t.Helper()
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName, install.Namespace, install.Replace = "jhub", namespace, true
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	install.KubeVersion = kv
	r, err := install.RunWithContext(t.Context(), packaged(t), values)
	if err != nil {
		return nil, err
	}
	rel, ok := r.(*release.Release)
	if !ok {
		t.Fatalf("helm returned a %T, not a release", r)
	}
	docs := []string{rel.Manifest}
	for _, h := range rel.Hooks {
		docs = append(docs, h.Manifest)
	}
	var objs []object
	for _, doc := range docs {
		dec := yaml.NewDecoder(strings.NewReader(doc))
		for {
			var o map[string]any // not object: yaml would make every nested map one
			if err := dec.Decode(&o); err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("helm rendered YAML that does not parse: %v", err)
			}
			if o != nil {
				objs = append(objs, object(o))
			}
		}
	}
	return objs, nil
}

// rendered is the chart rendered with the repository's values.
func rendered(t *testing.T) []object {
	t.Helper()
	objs, err := render(t, loadValues(t))
	if err != nil {
		t.Fatalf("helm refuses %s: %v", valuesPath, err)
	}
	return objs
}

// find is the rendered object of kind and name.
func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.kind() == kind && o.name() == name {
			return o
		}
	}
	t.Fatalf("helm rendered no %s %q", kind, name)
	return nil
}

// container is the container (or init container) of a pod template.
func container(t *testing.T, workload object, field, name string) object {
	t.Helper()
	for _, c := range workload.list("spec.template.spec." + field) {
		if c := object(c.(map[string]any)); c.str("name") == name {
			return c
		}
	}
	t.Fatalf("%s %s has no %s %q", workload.kind(), workload.name(), field, name)
	return nil
}

// hubValues is the values the hub's own config reads (the hub Secret's
// values.yaml, as the chart passes them to jupyterhub_config.py).
func hubValues(t *testing.T, objs []object) object {
	t.Helper()
	enc, _ := find(t, objs, "Secret", "hub").obj("data")["values.yaml"].(string)
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return object(v)
}

func loadValues(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal(readFile(t, valuesPath), &v); err != nil {
		t.Fatalf("%s: %v", valuesPath, err)
	}
	return v
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// projectImage is the image name the Makefile builds (IMAGE ?= …).
func projectImage(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^IMAGE \?= (\S+)$`).FindStringSubmatch(string(readFile(t, repoRoot+"/Makefile")))
	if m == nil {
		t.Fatal("no `IMAGE ?= …` in the Makefile")
	}
	return m[1]
}

// kinds counts the objects by kind, sorted, for the log.
func kinds(objs []object) string {
	n := map[string]int{}
	for _, o := range objs {
		n[o.kind()]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
	}
	return strings.Join(parts, ", ")
}
