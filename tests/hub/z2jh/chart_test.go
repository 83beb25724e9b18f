// Package z2jh renders the Zero to JupyterHub chart (its source at the
// release jupyter_config/hub/z2jh/values.yaml names, in testdata) with those
// values through Helm's own library, as `helm template` does, and checks
// the rendered objects: the router container in the hub pod, the Services
// and network policies that let the proxy and the router reach each other,
// the users' image, volume, profiles and the culler.
package z2jh

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Helm renders the chart with our values (checked against the chart's
// values schema first) into objects of the kinds it should.
func TestZ2JHRendersWithHelm(t *testing.T) {
	objs := rendered(t)
	fmt.Fprintf(os.Stderr, "figure: helm %s rendered %d objects from the chart %s with our values: %s\n",
		"v4", len(objs), chartVersion, kinds(objs))
	for _, want := range [][2]string{{"Deployment", "hub"}, {"Deployment", "proxy"}, {"Service", "hub"}, {"Service", "proxy-public"},
		{"NetworkPolicy", "hub"}, {"NetworkPolicy", "proxy"}, {"NetworkPolicy", "singleuser"}, {"StatefulSet", "user-placeholder"},
		{"DaemonSet", "continuous-image-puller"}, {"DaemonSet", "hook-image-puller"}, {"Secret", "hub"}} {
		find(t, objs, want[0], want[1])
	}
	// The values file names the release tested here.
	if !strings.Contains(string(readFile(t, valuesPath)), "`jupyterhub` "+chartVersion) {
		t.Errorf("%s does not name chart version %s, the one tested", valuesPath, chartVersion)
	}
}

// Helm refuses values its schema does not allow, naming the key at fault:
// the check above can fail.
func TestZ2JHSchemaRejectsMistakes(t *testing.T) {
	unknown := func(key string) string { return fmt.Sprintf("additional properties '%s' not allowed", key) }
	cases := []struct {
		name   string
		path   string // dotted; the last element is set (or renamed, with rename)
		value  any
		rename string // move the value at path to this key instead of setting it
		want   string // in the error; "" = must render
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
		// A control: a well-formed change renders, so the failures above
		// are the mutations', not the harness's.
		{name: "valid change", path: "scheduling.userPlaceholder.replicas", value: 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			values := loadValues(t)
			keys := strings.Split(c.path, ".")
			parent, _ := object(values).get(strings.Join(keys[:len(keys)-1], ".")).(map[string]any)
			if len(keys) == 1 {
				parent = values
			}
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
			_, err := render(t, values)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused a valid change: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("helm rendered it")
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("refused, but the error does not name %q:\n%v", c.want, err)
			}
		})
	}
}

// The hub pod runs the router from the users' image, started with flags
// jupyter-mcp-hub has, listening where its port says, reaching the hub's
// API on loopback and waiting for a server as long as KubeSpawner does.
func TestZ2JHHubPodRunsTheRouter(t *testing.T) {
	objs := rendered(t)
	hub := find(t, objs, "Deployment", "hub")
	router := container(t, hub, "containers", "mcp-router")
	values := hubValues(t, objs)
	userImage := values.str("singleuser.image.name") + ":" + values.str("singleuser.image.tag")
	if router.str("image") != userImage {
		t.Errorf("the router runs %q, the users' pods %q: one image holds both", router.str("image"), userImage)
	}
	if name := values.str("singleuser.image.name"); name != projectImage(t) && !strings.HasSuffix(name, "/"+projectImage(t)) {
		t.Errorf("singleuser.image.name %q is not the project's image %q (or <registry>/%s)", name, projectImage(t), projectImage(t))
	}
	dockerfile := string(readFile(t, repoRoot+"/Dockerfile"))
	if fmt.Sprint(router.get("command")) != "[jupyter-mcp-hub]" || !strings.Contains(dockerfile, " /usr/local/bin/jupyter-mcp-hub\n") {
		t.Errorf("the router's command %v is not the image's /usr/local/bin/jupyter-mcp-hub", router.get("command"))
	}

	args := routerArgs(t, router)
	_, listen, err := net.SplitHostPort(args["listen"])
	if err != nil {
		t.Fatalf("--listen=%s: %v", args["listen"], err)
	}
	if got := strconv.Itoa(namedPorts(router)["mcp"]); got != listen {
		t.Errorf("the router's containerPort mcp is %s, its --listen port %s", got, listen)
	}
	api, _ := url.Parse(args["hub-api"])
	if api.Hostname() != "127.0.0.1" || namedPorts(container(t, hub, "containers", "hub"))["http"] != mustAtoi(t, api.Port()) {
		t.Errorf("--hub-api=%s is not the hub container's API port on loopback", args["hub-api"])
	}
	wait, err := time.ParseDuration(args["start-timeout"])
	if err != nil {
		t.Fatal(err)
	}
	if want := values.get("singleuser.startTimeout"); fmt.Sprint(int(wait.Seconds())) != fmt.Sprint(want) {
		t.Errorf("--start-timeout=%s, singleuser.startTimeout %v s", wait, want)
	}
	if router.get("securityContext.readOnlyRootFilesystem") != true || router.get("securityContext.runAsNonRoot") != true {
		t.Errorf("the router container is not read-only and non-root: %v", router.get("securityContext"))
	}
}

// The proxy reaches the router at the MCP service's url through the hub's
// Service; the router reaches the proxy at --proxy-url; and the rendered
// network policies, evaluated for the rendered pods, let both through.
func TestZ2JHRouterAndProxyReachEachOther(t *testing.T) {
	objs := rendered(t)
	hubDep, proxyDep := find(t, objs, "Deployment", "hub"), find(t, objs, "Deployment", "proxy")
	hubPod, proxyPod := podOf(hubDep), podOf(proxyDep)
	router := container(t, hubDep, "containers", "mcp-router")
	args := routerArgs(t, router)
	values := hubValues(t, objs)

	// proxy -> <hub>/services/mcp's url -> the hub Service -> the router.
	svcURL, err := url.Parse(values.str("hub.services.mcp.url"))
	if err != nil {
		t.Fatal(err)
	}
	if values.get("hub.services.mcp.command") != nil {
		t.Error("hub.services.mcp has a command: the hub would try to start it in its own container")
	}
	routerPort := serviceTarget(t, find(t, objs, "Service", svcURL.Hostname()), mustAtoi(t, svcURL.Port()), hubPod)
	if routerPort != namedPorts(router)["mcp"] {
		t.Errorf("%s reaches port %d of the hub pod, the router listens on %d", svcURL, routerPort, namedPorts(router)["mcp"])
	}
	// router -> --proxy-url -> the proxy's Service -> CHP's http port.
	proxyURL, _ := url.Parse(args["proxy-url"])
	proxyPort := 80
	if proxyURL.Port() != "" {
		proxyPort = mustAtoi(t, proxyURL.Port())
	}
	chpPort := serviceTarget(t, find(t, objs, "Service", proxyURL.Hostname()), proxyPort, proxyPod)
	if chpPort != namedPorts(container(t, proxyDep, "containers", "chp"))["http"] {
		t.Errorf("--proxy-url=%s reaches port %d of the proxy pod, not CHP's http port", proxyURL, chpPort)
	}

	var policies []object
	for _, o := range objs {
		if o.kind() == "NetworkPolicy" {
			policies = append(policies, o)
		}
	}
	for _, flow := range []struct {
		name     string
		from, to pod
		port     int
	}{
		{"proxy -> router", proxyPod, hubPod, routerPort},
		{"router -> proxy", hubPod, proxyPod, chpPort},
		{"hub -> router (its check of the service's url)", hubPod, hubPod, routerPort},
		{"proxy -> hub (the chart's own route)", proxyPod, hubPod, hubPod.ports["http"]},
	} {
		if !allows(policies, flow.from, flow.to, flow.port) {
			t.Errorf("the network policies block %s on port %d", flow.name, flow.port)
		}
	}
	// The check can fail: a port nobody opened is blocked.
	if allows(policies, proxyPod, hubPod, 9999) {
		t.Error("the network policies let the proxy reach any port of the hub pod: the evaluation is wrong")
	}
}

// The users' pods: the project's image started as the hub's single-user
// server, the notebooks' volume where the image keeps notebooks (the lab's
// root), the Docker hub's profiles, the culler, the image on every node.
func TestZ2JHUsersServers(t *testing.T) {
	objs := rendered(t)
	values := hubValues(t, objs)
	if fmt.Sprint(values.get("singleuser.cmd")) != "[jupyterhub-singleuser]" {
		t.Errorf("singleuser.cmd is %v, want [jupyterhub-singleuser]", values.get("singleuser.cmd"))
	}
	if !regexp.MustCompile(`(?m)^jupyterhub==`).Match(readFile(t, repoRoot+"/image/requirements.txt")) {
		t.Error("image/requirements.txt does not install jupyterhub (jupyterhub-singleuser)")
	}
	const work = "/home/jovyan/work"
	if !strings.Contains(string(readFile(t, repoRoot+"/Dockerfile")), "mkdir "+work) {
		t.Errorf("the Dockerfile no longer makes %s", work)
	}
	for _, p := range []string{"singleuser.storage.homeMountPath", "hub.config.KubeSpawner.notebook_dir"} {
		if got := values.str(p); got != work {
			t.Errorf("%s is %q, want %q", p, got, work)
		}
	}
	if values.get("cull.enabled") != true || values.get("cull.timeout") == nil {
		t.Errorf("the culler is not on: %v", values.get("cull"))
	}

	// The image pullers pull the users' image on every node, new ones too.
	userImage := values.str("singleuser.image.name") + ":" + values.str("singleuser.image.tag")
	for _, ds := range []string{"hook-image-puller", "continuous-image-puller"} {
		pulls := false
		for _, c := range find(t, objs, "DaemonSet", ds).list("spec.template.spec.initContainers") {
			pulls = pulls || object(c.(map[string]any)).str("image") == userImage
		}
		if !pulls {
			t.Errorf("the DaemonSet %s does not pull %s", ds, userImage)
		}
	}
	// Each placeholder asks what a user's pod is guaranteed.
	ph := container(t, find(t, objs, "StatefulSet", "user-placeholder"), "containers", "pause")
	if got := fmt.Sprint(ph.get("resources.requests.memory"), " ", ph.get("resources.requests.cpu")); got != fmt.Sprint(values.get("singleuser.memory.guarantee"), " ", values.get("singleuser.cpu.guarantee")) {
		t.Errorf("a placeholder requests %s, a user's pod is guaranteed %v and %v CPU", got, values.get("singleuser.memory.guarantee"), values.get("singleuser.cpu.guarantee"))
	}

	// The profiles are the Docker hub's HUB_PROFILES example, by slug (what
	// ?profile= sends), memory and CPUs, with one default.
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
	got, defaults := map[string]string{}, 0
	for _, p := range values.list("singleuser.profileList") {
		p := object(p.(map[string]any))
		got[p.str("slug")] = fmt.Sprintf("%v:%v", p.get("kubespawner_override.mem_limit"), p.get("kubespawner_override.cpu_limit"))
		if p.get("default") == true {
			defaults++
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || defaults != 1 {
		t.Errorf("profiles %v with %d defaults, want %v (HUB_PROFILES example) and one default", got, defaults, want)
	}
}

// routerArgs are the router's --flag=value arguments; each must be a flag
// jupyter-mcp-hub has.
func routerArgs(t *testing.T, router object) map[string]string {
	t.Helper()
	mainGo := string(readFile(t, repoRoot+"/sidecar/cmd/jupyter-mcp-hub/main.go"))
	args := map[string]string{}
	for _, a := range router.list("args") {
		k, v, ok := strings.Cut(strings.TrimPrefix(a.(string), "--"), "=")
		if !ok {
			t.Fatalf("router arg %q: want --flag=value", a)
		}
		if !regexp.MustCompile(`flag\.\w+\("` + regexp.QuoteMeta(k) + `"`).MatchString(mainGo) {
			t.Errorf("jupyter-mcp-hub has no flag --%s", k)
		}
		args[k] = v
	}
	return args
}

// pod is what a network policy sees of a workload's pods.
type pod struct {
	labels map[string]any
	ports  map[string]int // named container ports
}

func podOf(workload object) pod {
	p := pod{labels: workload.obj("spec.template.metadata.labels"), ports: map[string]int{}}
	for _, c := range workload.list("spec.template.spec.containers") {
		for name, port := range namedPorts(object(c.(map[string]any))) {
			p.ports[name] = port
		}
	}
	return p
}

func namedPorts(c object) map[string]int {
	ports := map[string]int{}
	for _, p := range c.list("ports") {
		p := object(p.(map[string]any))
		if n, ok := p.get("containerPort").(int); ok {
			ports[p.str("name")] = n
		}
	}
	return ports
}

// serviceTarget is the pod port the Service sends its port to, checking
// that the Service selects the pod.
func serviceTarget(t *testing.T, svc object, port int, to pod) int {
	t.Helper()
	if !selects(svc.obj("spec.selector"), to.labels) {
		t.Fatalf("the Service %s does not select the pod %v", svc.name(), to.labels)
	}
	for _, p := range svc.list("spec.ports") {
		p := object(p.(map[string]any))
		if p.get("port") != port {
			continue
		}
		switch target := p.get("targetPort").(type) {
		case int:
			return target
		case string:
			if n, ok := to.ports[target]; ok {
				return n
			}
			t.Fatalf("the Service %s targets the port %q, which the pod does not name", svc.name(), target)
		case nil:
			return port
		}
	}
	t.Fatalf("the Service %s has no port %d", svc.name(), port)
	return 0
}

// allows reports whether traffic from one pod to another on port passes
// the policies, both the sender's egress and the receiver's ingress, as
// Kubernetes evaluates them within one namespace: a pod no policy of a
// direction selects is open in it; a selected pod lets through what one of
// its rules allows. ipBlock peers are taken not to hold pods (the chart's
// except the private ranges pod addresses come from).
func allows(policies []object, from, to pod, port int) bool {
	return passes(policies, from, "Egress", "egress", "to", to, port) &&
		passes(policies, to, "Ingress", "ingress", "from", from, port)
}

func passes(policies []object, subject pod, policyType, rules, peers string, other pod, port int) bool {
	selected := false
	// Ports in an egress rule are the receiver's; in an ingress rule, the
	// subject's, which is then the receiver.
	receiver := other
	if policyType == "Ingress" {
		receiver = subject
	}
	for _, p := range policies {
		if !selects(p.obj("spec.podSelector.matchLabels"), subject.labels) || !slices.Contains(p.list("spec.policyTypes"), any(policyType)) {
			continue
		}
		selected = true
		for _, r := range p.list("spec." + rules) {
			r := object(r.(map[string]any))
			if portAllowed(r, receiver, port) && peerAllowed(r, peers, other) {
				return true
			}
		}
	}
	return !selected
}

func portAllowed(rule object, receiver pod, port int) bool {
	if rule.get("ports") == nil {
		return true
	}
	for _, p := range rule.list("ports") {
		switch v := object(p.(map[string]any)).get("port").(type) {
		case nil:
			return true
		case int:
			if v == port {
				return true
			}
		case string:
			if receiver.ports[v] == port {
				return true
			}
		}
	}
	return false
}

func peerAllowed(rule object, field string, other pod) bool {
	if rule.get(field) == nil {
		return true
	}
	for _, peer := range rule.list(field) {
		peer := object(peer.(map[string]any))
		if peer.get("ipBlock") != nil {
			continue
		}
		if ns := peer.obj("namespaceSelector"); ns != nil && len(ns) > 0 && len(peer.obj("namespaceSelector.matchLabels")) > 0 {
			continue // another namespace's pods, by its labels
		}
		if peer.get("podSelector") == nil || selects(peer.obj("podSelector.matchLabels"), other.labels) {
			return true
		}
	}
	return false
}

// selects reports whether matchLabels select a pod with labels.
func selects(matchLabels, labels map[string]any) bool {
	for k, v := range matchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return n
}
