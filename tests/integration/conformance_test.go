package integration

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// The server scenarios of the official conformance suite that do not apply
// to the sidecar, each with why. Most call fixture tools, prompts or
// resources (test_simple_text, test://static-text, …) that a server built
// for the suite registers and this one, which has only its own tools, does
// not; some test extensions the sidecar does not implement.
var conformanceNotApplicable = map[string]string{
	"completion-complete":                  "completes an argument of the fixture prompt test_prompt_with_arguments: no prompts, no completion capability",
	"tools-call-simple-text":               "calls the fixture tool test_simple_text",
	"tools-call-image":                     "calls the fixture tool test_image_content",
	"tools-call-audio":                     "calls the fixture tool test_audio_content",
	"tools-call-embedded-resource":         "calls the fixture tool test_embedded_resource",
	"tools-call-mixed-content":             "calls the fixture tool test_multiple_content_types",
	"tools-call-with-logging":              "calls the fixture tool test_tool_with_logging",
	"tools-call-error":                     "calls the fixture tool test_error_handling",
	"tools-call-with-progress":             "calls the fixture tool test_tool_with_progress",
	"tools-call-sampling":                  "calls the fixture tool test_sampling: the sidecar never asks the client for sampling",
	"tools-call-elicitation":               "calls the fixture tool test_elicitation: the sidecar never elicits",
	"elicitation-sep1034-defaults":         "calls the fixture tool test_elicitation_sep1034_defaults: no elicitation",
	"elicitation-sep1330-enums":            "calls the fixture tool test_elicitation_sep1330_enums: no elicitation",
	"json-schema-2020-12":                  "looks for the fixture tool json_schema_2020_12_tool",
	"server-sse-polling":                   "calls the fixture tool test_reconnection, which closes its stream mid-call",
	"resources-read-text":                  "reads the fixture resource test://static-text",
	"resources-read-binary":                "reads the fixture resource test://static-binary",
	"resources-templates-read":             "reads the fixture template test://template/{id}/data: no resource templates",
	"resources-subscribe":                  "subscribes to test://watched-resource: no subscriptions",
	"resources-unsubscribe":                "unsubscribes from test://watched-resource: no subscriptions",
	"prompts-list":                         "no prompts",
	"prompts-get-simple":                   "gets the fixture prompt test_simple_prompt: no prompts",
	"prompts-get-with-args":                "gets the fixture prompt test_prompt_with_arguments: no prompts",
	"prompts-get-embedded-resource":        "gets the fixture prompt test_prompt_with_embedded_resource: no prompts",
	"prompts-get-with-image":               "gets the fixture prompt test_prompt_with_image: no prompts",
	"http-custom-header-server-validation": "needs a tool whose parameters carry x-mcp-header annotations (SEP-2243 custom headers): none has",
	// SEP-2322 multi-round tool results: the sidecar's tools never ask the
	// client for input mid-call.
	"input-required-result-basic-elicitation":       "calls the fixture tool test_input_required_result_elicitation",
	"input-required-result-basic-sampling":          "calls the fixture tool test_input_required_result_sampling",
	"input-required-result-basic-list-roots":        "calls the fixture tool test_input_required_result_list_roots",
	"input-required-result-request-state":           "calls the fixture tool test_input_required_result_request_state",
	"input-required-result-multiple-input-requests": "calls the fixture tool test_input_required_result_multiple_inputs",
	"input-required-result-multi-round":             "calls a fixture tool that asks for input over several rounds",
	"input-required-result-missing-input-response":  "calls a fixture tool that asks for input",
	"input-required-result-non-tool-request":        "gets the fixture prompt test_input_required_result_prompt: no prompts",
	"input-required-result-result-type":             "calls the fixture tool test_input_required_result_elicitation",
	"input-required-result-tampered-state":          "needs a fixture tool's requestState to tamper with",
	"input-required-result-capability-check":        "calls the fixture tool test_input_required_result_capabilities",
	"input-required-result-ignore-extra-params":     "calls the fixture tool test_input_required_result_elicitation",
	"input-required-result-validate-input":          "answers the fixture tool test_input_required_result_elicitation",
	// Extensions the sidecar does not implement.
	"sep-2640-skills-directory":   "skills extension (SEP-2640): no skills",
	"sep-2640-skills-enumeration": "skills extension (SEP-2640): no skills",
	"sep-2640-skills-manifest":    "skills extension (SEP-2640): no skills",
	// Tasks (SEP-2663) are implemented for execution tools (tasks.go); these
	// scenarios drive them through the suite's fixture tools.
	"tasks-lifecycle":             "calls the fixture tools slow_compute, greet, failing_job and protocol_error_job",
	"tasks-wire-fields":           "calls the fixture tool slow_compute",
	"tasks-request-state-removal": "calls the fixture tool slow_compute",
	"tasks-mrtr-input":            "calls the fixture tools confirm_delete and multi_input",
	"tasks-request-headers":       "calls the fixture tools greet and slow_compute",
	"tasks-status-notifications":  "no checks: task status notifications (optional) are not sent",
	"tasks-required-task-error":   "calls the fixture tool failing_job, which requires a task",
	"tasks-mrtr-composition":      "calls the fixture tool test_tool_with_task",
}

// Single checks that do not apply inside scenarios that do.
var conformanceChecksNotApplicable = map[string]map[string]string{
	"server-stateless": {
		"sep-2575-server-rejects-undeclared-capability":            "needs the diagnostic tool test_missing_capability",
		"sep-2575-missing-capability-http-400":                     "needs the diagnostic tool test_missing_capability",
		"sep-2575-http-server-no-independent-requests-on-stream":   "needs the diagnostic tool test_streaming_elicitation",
		"sep-2575-server-no-log-without-loglevel":                  "needs the diagnostic tool test_logging_tool",
		"sep-2575-server-sends-tools-list-changed-on-subscription": "needs the diagnostic tool test_trigger_tool_change to change the tool list",
	},
	"tasks-capability-negotiation": {
		"sep-2663-server-rejects-undeclared-client": "calls the fixture tool slow_compute",
		"tasks-per-request-meta-opt-in":             "calls the fixture tool slow_compute",
	},
	"tasks-dispatch-and-envelope": {
		"tasks-server-directed-creation-no-hint":           "calls the fixture tool slow_compute",
		"sep-2663-legacy-task-param-ignored":               "calls the fixture tool greet",
		"tasks-immediate-result-shortcut":                  "calls the fixture tool slow_compute",
		"tasks-result-type-complete-on-non-task-responses": "calls the fixture tools greet and slow_compute",
		"sep-2663-durable-create-strong-consistency":       "calls the fixture tool slow_compute",
	},
	"caching": {
		"sep-2549-prompts-list-caching-hints": "calls prompts/list: no prompts, so -32601 (as server-stateless requires)",
	},
}

// The scenarios that apply; listed so that one that silently stops running
// (renamed in a new suite version) fails the test too.
var conformanceApplicable = []string{
	"server-initialize", "server-session-lifecycle", "server-stateless",
	"logging-set-level", "ping", "tools-list", "resources-list",
	"sep-2164-resource-not-found", "caching", "http-header-validation",
	"server-sse-multiple-streams", "dns-rebinding-protection",
	"input-required-result-unsupported-methods",
	"tasks-capability-negotiation", "tasks-dispatch-and-envelope",
}

// Scenarios whose requests drop the query of the URL they are given (they
// send its path alone), so the token cannot ride in the URL: they run again
// on their own through authProxy, and their verdicts come from that run.
var conformanceHeaderOnly = []string{"http-header-validation"}

// authProxy serves the lab's /mcp on a loopback address with the lab's
// token added as a header, for the scenarios above. The client's Host goes
// on unchanged, so the lab still judges it.
func authProxy(t *testing.T) string {
	t.Helper()
	target, err := url.Parse(shared.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
			r.Out.Header.Set("Authorization", "token "+shared.Token)
		},
		FlushInterval: -1, // event streams go on at once
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil { // not a client that went away
				t.Logf("auth proxy: %v", err)
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL + target.Path // ends in "/", like shared.URL
}

// The official conformance suite (@modelcontextprotocol/conformance, pinned
// in tests/conformance) against <lab>/mcp through the proxy: all its server
// scenarios (pending ones included) in one run; every one that applies passes.
// The CLI takes only a URL, as some clients do, so the token rides in it:
// <lab>/mcp?token=<token>.
func TestConformanceSuite(t *testing.T) {
	node := labtest.Node(t)
	cli := filepath.Join(labtest.RepoRoot(), "tests", "conformance", "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js")
	var log []byte
	run := func(url string, args ...string) string {
		out := t.TempDir()
		cmd := exec.CommandContext(t.Context(), node, append([]string{cli, "server", "--url", url, "-o", out}, args...)...)
		output, err := cmd.CombinedOutput()
		log = append(log, output...)
		// The CLI exits 1 when any check fails, the scenarios that do not
		// apply included: the verdict comes from the checks below.
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatalf("conformance CLI: %v\n%s", err, output)
		}
		return out
	}
	outs := []string{run(shared.URL+"mcp?token="+url.QueryEscape(shared.Token), "--suite", "all")}
	for _, s := range conformanceHeaderOnly {
		outs = append(outs, run(authProxy(t)+"mcp", "--scenario", s))
	}
	type check struct {
		ID, Status, ErrorMessage string
	}
	dirName := regexp.MustCompile(`^server-(.+)-\d{4}-\d\d-\d\dT`)
	ran := map[string]bool{}
	for i, out := range outs {
		dirs, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			m := dirName.FindStringSubmatch(d.Name())
			if m == nil {
				t.Errorf("unexpected result folder %q", d.Name())
				continue
			}
			scenario := m[1]
			if headerOnly := slices.Contains(conformanceHeaderOnly, scenario); headerOnly != (i > 0) {
				continue // judged by the other run
			}
			ran[scenario] = true
			data, err := os.ReadFile(filepath.Join(out, d.Name(), "checks.json"))
			if err != nil {
				t.Error(err)
				continue
			}
			var checks []check
			if err := json.Unmarshal(data, &checks); err != nil {
				t.Errorf("%s: %v", scenario, err)
				continue
			}
			if why, ok := conformanceNotApplicable[scenario]; ok {
				t.Logf("%-30s not applicable: %s", scenario, why)
				continue
			}
			if !slices.Contains(conformanceApplicable, scenario) {
				t.Errorf("scenario %s is new: decide whether it applies (conformanceApplicable) or not (conformanceNotApplicable)", scenario)
			}
			var statuses []string
			for _, c := range checks {
				if why, ok := conformanceChecksNotApplicable[scenario][c.ID]; ok {
					statuses = append(statuses, c.ID+"=n/a("+c.Status+"): "+why+"\n")
					continue
				}
				statuses = append(statuses, c.ID+"="+c.Status)
				// WARNING is a SHOULD the suite could not confirm: shown, not
				// failed; SKIPPED is a check of a feature not declared.
				if c.Status == "FAILURE" {
					t.Errorf("%s: check %s failed: %s", scenario, c.ID, c.ErrorMessage)
				}
			}
			if len(checks) == 0 {
				t.Errorf("%s: no checks", scenario)
			}
			t.Logf("%-30s %s", scenario, strings.Join(statuses, " "))
		}
	}
	for _, s := range conformanceApplicable {
		if !ran[s] {
			t.Errorf("scenario %s did not run", s)
		}
	}
	for _, s := range slices.Sorted(maps.Keys(conformanceNotApplicable)) {
		if !ran[s] {
			t.Errorf("not-applicable scenario %s is no longer in the suite: drop it from the list", s)
		}
	}
	if t.Failed() {
		t.Logf("conformance CLI output:\n%s", log)
	}
}
