// Package z2jh checks jupyter_config/hub/z2jh/values.yaml, the Zero to
// JupyterHub values for the project's image, without a cluster or helm: the
// values, merged over the chart's defaults as helm merges them, must satisfy
// the chart's own values schema (testdata, pinned to the chart version the
// file names), and the parts that must agree with this repository (image,
// router flags, ports, profiles) must agree.
package z2jh

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

const (
	chartVersion = "4.4.0"
	repoRoot     = "../../.."
	valuesPath   = repoRoot + "/jupyter_config/hub/z2jh/values.yaml"
)

// TestZ2JHValuesMatchChartSchema is the check helm itself makes before
// rendering (helm validates the merged values, not the file alone: the
// schema requires keys only the chart's defaults hold).
func TestZ2JHValuesMatchChartSchema(t *testing.T) {
	schema := chartSchema(t)
	if err := schema.Validate(merged(t, loadValues(t))); err != nil {
		t.Fatalf("%s does not match the chart's schema:\n%v", valuesPath, err)
	}
	// The file names the version whose schema is the oracle here.
	if !bytes.Contains(readFile(t, valuesPath), []byte("`jupyterhub` "+chartVersion)) {
		t.Errorf("%s does not name chart version %s, the one tested", valuesPath, chartVersion)
	}
}

// TestZ2JHSchemaRejectsMistakes proves the check above can fail: each
// mutation of the values must be refused, naming the key at fault.
func TestZ2JHSchemaRejectsMistakes(t *testing.T) {
	schema := chartSchema(t)
	cases := []struct {
		name   string
		path   string // dotted; the last element is set (or renamed, with rename)
		value  any
		rename string // move the value at path to this key instead of setting it
		want   string // in the error (a rename: the library's words for an unknown key); "" = must pass
	}{
		{name: "top-level typo", path: "cull", rename: "cul", want: unknown("cul")},
		{name: "nested typo", path: "singleuser.storage.homeMountPath", rename: "homeMountPth", want: unknown("homeMountPth")},
		{name: "placeholder typo", path: "scheduling.userPlaceholder.replicas", rename: "replica", want: unknown("replica")},
		{name: "netpol typo", path: "hub.networkPolicy.ingress", rename: "ingres", want: unknown("ingres")},
		{name: "prePuller typo", path: "prePuller.continuous.enabled", rename: "enable", want: unknown("enable")},
		{name: "string for integer", path: "cull.timeout", value: "3600", want: "at '/cull/timeout'"},
		{name: "string for number", path: "singleuser.cpu.limit", value: "0.5", want: "at '/singleuser/cpu/limit'"},
		{name: "map for list", path: "hub.extraContainers", value: map[string]any{"name": "mcp-router"}, want: "at '/hub/extraContainers'"},
		{name: "bad enum", path: "singleuser.image.pullPolicy", value: "Sometimes", want: "at '/singleuser/image/pullPolicy'"},
		{name: "bad storage type", path: "singleuser.storage.type", value: "pvc", want: "at '/singleuser/storage/type'"},
		// A control: a well-formed change passes, so the failures above are
		// the mutations', not the harness's.
		{name: "valid change", path: "scheduling.userPlaceholder.replicas", value: 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			values := loadValues(t)
			keys := strings.Split(c.path, ".")
			parent := lookup(t, values, strings.Join(keys[:len(keys)-1], ".")).(map[string]any)
			last := keys[len(keys)-1]
			if _, ok := parent[last]; !ok {
				t.Fatalf("%s is not in the values: the case no longer mutates anything", c.path)
			}
			if c.rename != "" {
				parent[c.rename] = parent[last]
				delete(parent, last)
			} else {
				parent[last] = c.value
			}
			err := schema.Validate(merged(t, values))
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused a valid change: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("the schema accepted it")
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("refused, but the error does not name %q:\n%v", c.want, err)
			}
		})
	}
}

// TestZ2JHValuesUseTheImage: the users' pods and the router run the image
// this repository builds, started the way the image expects.
func TestZ2JHValuesUseTheImage(t *testing.T) {
	values := loadValues(t)
	makefile, dockerfile := string(readFile(t, repoRoot+"/Makefile")), string(readFile(t, repoRoot+"/Dockerfile"))

	m := regexp.MustCompile(`(?m)^IMAGE \?= (\S+)$`).FindStringSubmatch(makefile)
	if m == nil {
		t.Fatal("no `IMAGE ?= …` in the Makefile")
	}
	image := m[1]
	if !strings.Contains(dockerfile, "org.opencontainers.image.title="+image) {
		t.Errorf("the Dockerfile's image title is not %s", image)
	}
	name, tag := str(t, values, "singleuser.image.name"), str(t, values, "singleuser.image.tag")
	// A registry's copy of the local image: any registry, the same repository name.
	if name != image && !strings.HasSuffix(name, "/"+image) {
		t.Errorf("singleuser.image.name %q is not the project's image %q (or <registry>/%s)", name, image, image)
	}
	router := routerContainer(t, values)
	if got := router["image"]; got != name+":"+tag {
		t.Errorf("the router container's image %q is not singleuser.image %q", got, name+":"+tag)
	}

	// The image has both commands: jupyterhub-singleuser from jupyterhub,
	// jupyter-mcp-hub copied in by the Dockerfile.
	if cmd := lookup(t, values, "singleuser.cmd"); fmt.Sprint(cmd) != "[jupyterhub-singleuser]" {
		t.Errorf("singleuser.cmd is %v, want [jupyterhub-singleuser]", cmd)
	}
	if !regexp.MustCompile(`(?m)^jupyterhub==`).Match(readFile(t, repoRoot+"/image/requirements.txt")) {
		t.Error("image/requirements.txt does not install jupyterhub (jupyterhub-singleuser)")
	}
	if fmt.Sprint(router["command"]) != "[jupyter-mcp-hub]" {
		t.Errorf("the router container's command is %v, want [jupyter-mcp-hub]", router["command"])
	}
	if !strings.Contains(dockerfile, " /usr/local/bin/jupyter-mcp-hub\n") {
		t.Error("the Dockerfile does not put jupyter-mcp-hub in /usr/local/bin")
	}

	// The notebooks' volume is where the image keeps notebooks, and the lab's root.
	const work = "/home/jovyan/work"
	if !strings.Contains(dockerfile, "mkdir "+work) {
		t.Errorf("the Dockerfile no longer makes %s", work)
	}
	for _, p := range []string{"singleuser.storage.homeMountPath", "hub.config.KubeSpawner.notebook_dir"} {
		if got := str(t, values, p); got != work {
			t.Errorf("%s is %q, want %q", p, got, work)
		}
	}
}

// TestZ2JHRouterWiring: the proxy reaches the router at the service's url,
// through the hub's Service, on the port the container listens on, and the
// network policies let that traffic through.
func TestZ2JHRouterWiring(t *testing.T) {
	values := loadValues(t)
	router := routerContainer(t, values)
	args := map[string]string{}
	mainGo := string(readFile(t, repoRoot+"/sidecar/cmd/jupyter-mcp-hub/main.go"))
	for _, a := range router["args"].([]any) {
		k, v, ok := strings.Cut(strings.TrimPrefix(a.(string), "--"), "=")
		if !ok {
			t.Fatalf("router arg %q: want --flag=value", a)
		}
		if !regexp.MustCompile(`flag\.\w+\("` + regexp.QuoteMeta(k) + `"`).MatchString(mainGo) {
			t.Errorf("jupyter-mcp-hub has no flag --%s", k)
		}
		args[k] = v
	}

	_, listenPort, err := net.SplitHostPort(args["listen"])
	if err != nil {
		t.Fatalf("--listen=%s: %v", args["listen"], err)
	}
	port, _ := strconv.Atoi(listenPort)
	svc, err := url.Parse(str(t, values, "hub.services.mcp.url"))
	if err != nil {
		t.Fatal(err)
	}
	// "hub" is the chart's hub Service (fullnameOverride "").
	if svc.Hostname() != "hub" || svc.Port() != listenPort {
		t.Errorf("hub.services.mcp.url %s: want http://hub:%s (the hub's Service, the router's --listen port)", svc, listenPort)
	}
	if lookup(t, values, "hub.services.mcp.command") != nil {
		t.Error("hub.services.mcp has a command: the hub would try to start it in its own container")
	}

	var containerPort int
	for _, p := range router["ports"].([]any) {
		p := p.(map[string]any)
		if p["name"] == "mcp" {
			containerPort = p["containerPort"].(int)
		}
	}
	if containerPort != port {
		t.Errorf("the router's containerPort mcp is %d, its --listen port %d", containerPort, port)
	}
	found := false
	for _, p := range lookup(t, values, "hub.service.extraPorts").([]any) {
		p := p.(map[string]any)
		if p["port"] == port && (p["targetPort"] == "mcp" || p["targetPort"] == port) {
			found = true
		}
	}
	if !found {
		t.Errorf("hub.service.extraPorts has no port %d to the router", port)
	}

	// proxy -> router must pass the hub's ingress and the proxy's egress policy.
	if !policyAllows(lookup(t, values, "hub.networkPolicy.ingress"), "from", "proxy", port) {
		t.Errorf("hub.networkPolicy.ingress does not let the proxy reach port %d", port)
	}
	if !policyAllows(lookup(t, values, "proxy.chp.networkPolicy.egress"), "to", "hub", port) {
		t.Errorf("proxy.chp.networkPolicy.egress does not let the proxy reach the hub's port %d", port)
	}
	// router -> proxy's http port (8000 in the proxy pod, the chart's CHP).
	if !policyAllows(lookup(t, values, "hub.networkPolicy.egress"), "to", "proxy", 8000) {
		t.Error("hub.networkPolicy.egress does not let the router reach the proxy's port 8000")
	}

	// The hub's API on loopback (same pod, port 8081 of the chart's hub
	// container); the router waits as long as KubeSpawner does.
	if args["hub-api"] != "http://127.0.0.1:8081/hub/api" {
		t.Errorf("--hub-api=%s, want the hub container's API on loopback", args["hub-api"])
	}
	wait, err := time.ParseDuration(args["start-timeout"])
	if err != nil {
		t.Fatal(err)
	}
	if want := lookup(t, values, "singleuser.startTimeout").(int); wait != time.Duration(want)*time.Second {
		t.Errorf("--start-timeout=%s, singleuser.startTimeout %ds", wait, want)
	}
}

// TestZ2JHProfilesMirrorDockerHub: the profiles are those of the Docker
// hub's HUB_PROFILES example, by slug (what ?profile= sends), memory and CPUs.
func TestZ2JHProfilesMirrorDockerHub(t *testing.T) {
	cfg := readFile(t, repoRoot+"/jupyter_config/hub/jupyterhub_config.py")
	m := regexp.MustCompile(`HUB_PROFILES.*\n.*e\.g\. "([^"]+)"`).FindSubmatch(cfg)
	if m == nil {
		t.Fatal("no HUB_PROFILES example in jupyterhub_config.py")
	}
	want := map[string]string{}
	for _, item := range strings.Split(string(m[1]), ",") {
		name, spec, _ := strings.Cut(item, "=")
		want[name] = spec
	}
	got := map[string]string{}
	defaults := 0
	for _, p := range lookup(t, loadValues(t), "singleuser.profileList").([]any) {
		p := p.(map[string]any)
		o := p["kubespawner_override"].(map[string]any)
		got[p["slug"].(string)] = fmt.Sprintf("%v:%v", o["mem_limit"], o["cpu_limit"])
		if p["default"] == true {
			defaults++
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("profiles %v, want %v (HUB_PROFILES example)", got, want)
	}
	if defaults != 1 {
		t.Errorf("%d default profiles, want 1", defaults)
	}
}

func unknown(key string) string { return fmt.Sprintf("additional properties '%s' not allowed", key) }

// policyAllows reports whether one of the NetworkPolicy rules lets pods of
// the chart's component (app.kubernetes.io/component) through on port.
func policyAllows(rules any, peers, component string, port int) bool {
	list, _ := rules.([]any)
	for _, r := range list {
		r, _ := r.(map[string]any)
		portOK := false
		for _, p := range asList(r["ports"]) {
			if p, _ := p.(map[string]any); p["port"] == port {
				portOK = true
			}
		}
		for _, peer := range asList(r[peers]) {
			peer, _ := peer.(map[string]any)
			sel, _ := peer["podSelector"].(map[string]any)
			labels, _ := sel["matchLabels"].(map[string]any)
			if portOK && labels["app.kubernetes.io/component"] == component && labels["app.kubernetes.io/name"] == "jupyterhub" {
				return true
			}
		}
	}
	return false
}

func asList(v any) []any { l, _ := v.([]any); return l }

func routerContainer(t *testing.T, values map[string]any) map[string]any {
	t.Helper()
	for _, c := range lookup(t, values, "hub.extraContainers").([]any) {
		if c := c.(map[string]any); c["name"] == "mcp-router" {
			return c
		}
	}
	t.Fatal("no mcp-router in hub.extraContainers")
	return nil
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loadYAML decodes one YAML document; duplicate keys are an error (yaml/v3).
func loadYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal(readFile(t, path), &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

func loadValues(t *testing.T) map[string]any { return loadYAML(t, valuesPath) }

func lookup(t *testing.T, values map[string]any, path string) any {
	t.Helper()
	var v any = values
	if path == "" {
		return v
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: %q is not under a map", path, k)
		}
		v = m[k]
	}
	return v
}

func str(t *testing.T, values map[string]any, path string) string {
	t.Helper()
	s, ok := lookup(t, values, path).(string)
	if !ok {
		t.Fatalf("%s is not a string", path)
	}
	return s
}

// merged is what helm validates: the chart's default values with ours on
// top, maps merged key by key, anything else replaced, and a null removing
// the chart's key. It comes back as JSON values, the schema library's input.
func merged(t *testing.T, values map[string]any) any {
	t.Helper()
	all := coalesce(loadYAML(t, "testdata/z2jh-"+chartVersion+"-values.yaml"), values)
	return toJSON(t, all)
}

func coalesce(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		switch {
		case v == nil:
			delete(out, k)
		default:
			bm, bok := out[k].(map[string]any)
			om, ook := v.(map[string]any)
			if bok && ook {
				out[k] = coalesce(bm, om)
			} else {
				out[k] = v
			}
		}
	}
	return out
}

// toJSON turns decoded YAML into the values encoding/json would give
// (numbers as json.Number), which is what the schema library validates.
func toJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("values not representable as JSON: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func chartSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	const loc = "https://z2jh.invalid/values.schema.json" // a name only: nothing is fetched
	c := jsonschema.NewCompiler()
	if err := c.AddResource(loc, toJSON(t, loadYAML(t, "testdata/z2jh-"+chartVersion+"-values.schema.yaml"))); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(loc)
	if err != nil {
		t.Fatalf("the chart's schema does not compile: %v", err)
	}
	return s
}
