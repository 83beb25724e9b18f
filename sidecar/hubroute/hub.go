package hubroute

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// hubAPI is the part of the JupyterHub REST API the router uses, always
// with the client's own token: the hub's RBAC decides what that token may
// do, and the router needs no rights of its own.
type hubAPI struct {
	base   *url.URL // e.g. http://172.17.0.1:8081/hub/api/
	client *http.Client
}

// hubUser is what GET /hub/api/user says about a token's owner.
type hubUser struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // "user" or "service"
	// Servers is present only when the token may read servers.
	Servers map[string]hubServer `json:"servers"`
}

type hubServer struct {
	Ready   bool   `json:"ready"`
	Pending string `json:"pending"` // "spawn", "stop" or ""
	URL     string `json:"url"`     // e.g. /user/alice/
}

// errHub is an answer of the hub that the router passes on to the client.
type errHub struct {
	Status     int // HTTP status for the client
	Code       int // JSON-RPC error code
	Message    string
	RetryAfter string
}

func (e *errHub) Error() string { return e.Message }

// JSON-RPC error codes of the router (implementation-defined range).
const (
	codeUnauthorized = -32001 // no token, or the hub does not accept it
	codeNotRunning   = -32002 // the user's server is not running (non-POST request)
	codeStartFailed  = -32003 // the hub could not start the server, or not in time
	codeUnavailable  = -32004 // the hub or the server cannot be reached, or is at capacity
)

func (h *hubAPI) do(ctx context.Context, method, path, token string, body any) (*http.Response, error) {
	u := h.base.JoinPath(path)
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "token "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The error text names the hub's address, never the token.
		return nil, &errHub{Status: http.StatusBadGateway, Code: codeUnavailable, Message: "cannot reach the JupyterHub API: " + err.Error()}
	}
	return resp, nil
}

// whoami resolves token to its owner. Any valid token may do this: the hub
// grants its own name to every token (no scope needed).
func (h *hubAPI) whoami(ctx context.Context, token string) (*hubUser, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := h.do(ctx, http.MethodGet, "user", token, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized:
		return nil, &errHub{Status: http.StatusForbidden, Code: codeUnauthorized,
			Message: "JupyterHub does not accept this token (wrong, expired or revoked, or its user was deleted)"}
	case resp.StatusCode != http.StatusOK:
		return nil, unexpected("identify the token", resp)
	}
	var u hubUser
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&u); err != nil || u.Name == "" {
		return nil, &errHub{Status: http.StatusBadGateway, Code: codeUnavailable, Message: fmt.Sprintf("JupyterHub answered GET /user with something else than a user (%v)", err)}
	}
	return &u, nil
}

// ensureRunning returns the URL path of the user's default server
// (/user/<name>/), starting the server if it is not running and waiting
// until it is ready, failed, or ctx ends. started tells whether this call
// asked the hub to start it.
// profile, if not empty, goes to the hub as user_options.profile; report,
// if not nil, gets the hub's progress events while the server starts.
func (h *hubAPI) ensureRunning(ctx context.Context, token string, u *hubUser, profile string, report func(progress int, message string)) (path string, started bool, err error) {
	name := u.Name
	// 400 answers to a start in a row while the hub shows no server.
	const maxRefusals = 5
	var refusals int
	var refused string
	for {
		s, ok := u.Servers[""]
		switch {
		case ok && s.Ready && s.Pending == "":
			return s.URL, started, nil
		case ok && s.Pending == "spawn":
			if _, err := h.follow(ctx, token, u.Name, report); err != nil {
				return "", started, err
			}
		case ok && s.Pending != "":
			// What else is pending must finish before a start: a stop (the
			// culler's, an admin's), the hub's check of a server it finds
			// running as it starts.
			select {
			case <-ctx.Done():
				return "", started, startTimeout(name, ctx)
			case <-time.After(250 * time.Millisecond):
			}
		default:
			if refusals > 0 {
				// The hub said 400 but shows no server: it may be between
				// states; pause instead of asking again at once.
				if refusals == maxRefusals {
					return "", started, &errHub{Status: http.StatusBadGateway, Code: codeStartFailed,
						Message: fmt.Sprintf("JupyterHub refused to start %s's server: %s", name, refused)}
				}
				select {
				case <-ctx.Done():
					return "", started, startTimeout(name, ctx)
				case <-time.After(250 * time.Millisecond):
				}
			}
			msg, err := h.startReporting(ctx, token, u.Name, profile, report)
			if err != nil {
				return "", started, err
			}
			if msg != "" {
				refusals, refused = refusals+1, msg
			}
			started = true
		}
		if u, err = h.whoami(ctx, token); err != nil {
			if ctx.Err() != nil {
				return "", started, startTimeout(name, ctx)
			}
			return "", started, err
		}
		if u.Servers == nil {
			return "", started, noReadScope(name)
		}
	}
}

// start asks the hub to start name's default server. The hub answers once
// the server is ready or after its slow_spawn_timeout (10 s), whichever is
// first; the caller then looks again. A 400 for a server between states
// ("already running", "is pending stop") is no error: its message comes
// back for the caller to look again; any other 400 is the client's.
func (h *hubAPI) start(ctx context.Context, token, name, profile string) (refused string, err error) {
	var body any
	if profile != "" {
		body = map[string]any{"user_options": map[string]string{"profile": profile}}
	}
	resp, err := h.do(ctx, http.MethodPost, "users/"+url.PathEscape(name)+"/server", token, body)
	if err != nil {
		if ctx.Err() != nil {
			return "", startTimeout(name, ctx)
		}
		return "", err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusAccepted:
		return "", nil
	case http.StatusBadRequest:
		msg := hubMessage(resp)
		if strings.Contains(msg, "is pending") || strings.Contains(msg, "already running") {
			return msg, nil // between states: look again
		}
		// Bad user options (an unknown profile...): the hub's words.
		return "", &errHub{Status: http.StatusBadRequest, Code: codeStartFailed,
			Message: fmt.Sprintf("JupyterHub refused to start %s's server: %s", name, msg)}
	case http.StatusForbidden:
		return "", &errHub{Status: http.StatusForbidden, Code: codeStartFailed,
			Message: fmt.Sprintf("%s's server is not running and this token may not start it (it needs the servers or start:servers scope for %s); start it from the hub, or use a token with that scope", name, name)}
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		retry := resp.Header.Get("Retry-After")
		if retry == "" {
			retry = "30"
		}
		return "", &errHub{Status: http.StatusServiceUnavailable, Code: codeUnavailable, RetryAfter: retry,
			Message: fmt.Sprintf("JupyterHub is at capacity and cannot start %s's server now (%s); retry later", name, hubMessage(resp))}
	}
	return "", unexpected("start "+name+"'s server", resp)
}

// startReporting is start, with the hub's progress events passed to report
// while the hub takes its time: it answers a start only once the server is
// ready (or after 10 s), so its progress stream is followed meanwhile, and
// to its end (ready or failed) once the hub took the start. A failure the
// stream reports is the start's error.
func (h *hubAPI) startReporting(ctx context.Context, token, name, profile string, report func(int, string)) (refused string, err error) {
	if report == nil {
		return h.start(ctx, token, name, profile)
	}
	followCtx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	answered := make(chan struct{}) // the hub answered the start
	followed := make(chan error, 1)
	go func() {
		// The stream exists once the hub has taken the start: until then
		// it answers "not starting", and is asked again.
		for {
			notStarting, err := h.follow(followCtx, token, name, report)
			if !notStarting {
				followed <- err
				return
			}
			select {
			case <-answered:
				followed <- nil // started and already ended, or never taken
				return
			case <-followCtx.Done():
				followed <- nil
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	refused, err = h.start(ctx, token, name, profile)
	close(answered)
	if err != nil || refused != "" {
		stopFollowing()
	}
	var failed *errHub
	if ferr := <-followed; errors.As(ferr, &failed) && failed.Code == codeStartFailed && err == nil && refused == "" {
		return "", failed
	}
	return refused, err
}

// follow reads the hub's progress stream of a starting server until it
// reports ready or failed, passing each event to report (if not nil).
// notStarting: the hub has no start in progress (no server, or one not
// pending; then a failure it reports at once is the last start's, and
// comes as err too). The hub ends the stream itself when the spawn ends;
// ctx bounds the wait.
func (h *hubAPI) follow(ctx context.Context, token, name string, report func(int, string)) (notStarting bool, err error) {
	resp, err := h.do(ctx, http.MethodGet, "users/"+url.PathEscape(name)+"/server/progress", token, nil)
	if err != nil {
		if ctx.Err() != nil {
			return false, startTimeout(name, ctx)
		}
		return false, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusNotFound:
		return true, nil // neither running nor starting (yet, or any more): look again
	case resp.StatusCode == http.StatusForbidden:
		return false, noReadScope(name)
	case resp.StatusCode != http.StatusOK:
		return false, unexpected("follow "+name+"'s start", resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	events := 0 // progress events read before this one
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue // blank lines and keepalives
		}
		var ev struct {
			Progress int    `json:"progress"`
			Ready    bool   `json:"ready"`
			Failed   bool   `json:"failed"`
			Message  string `json:"message"`
		}
		if json.Unmarshal([]byte(strings.TrimSpace(data)), &ev) != nil {
			continue
		}
		if ev.Failed {
			// A failure first: the hub answers so for a server not
			// pending whose last start failed.
			return events == 0, &errHub{Status: http.StatusBadGateway, Code: codeStartFailed,
				Message: fmt.Sprintf("JupyterHub could not start %s's server: %s", name, ev.Message)}
		}
		if report != nil {
			msg := "starting " + name + "'s server"
			if ev.Message != "" {
				msg += " (JupyterHub: " + ev.Message + ")"
			}
			report(ev.Progress, msg)
		}
		if ev.Ready {
			return false, nil
		}
		events++
	}
	if ctx.Err() != nil {
		return false, startTimeout(name, ctx)
	}
	return false, nil // the stream ended (hub restart, proxy): look again
}

// errStartDeadline ends the wait for a server (Config.StartTimeout).
var errStartDeadline = errors.New("start deadline")

// startTimeout is the error for a wait that ctx ended: the deadline, or the
// client went away (then nobody reads the answer).
func startTimeout(name string, ctx context.Context) error {
	if !errors.Is(context.Cause(ctx), errStartDeadline) {
		return context.Cause(ctx)
	}
	return &errHub{Status: http.StatusGatewayTimeout, Code: codeStartFailed,
		Message: fmt.Sprintf("%s's server did not become ready in time; the hub may still be starting it: retry in a minute", name)}
}

func noReadScope(name string) error {
	return &errHub{Status: http.StatusForbidden, Code: codeStartFailed,
		Message: fmt.Sprintf("this token may not read the state of %s's server (it needs the read:servers scope for %s)", name, name)}
}

// unexpected turns an unplanned hub answer into a 502 with the hub's own
// message.
func unexpected(what string, resp *http.Response) error {
	return &errHub{Status: http.StatusBadGateway, Code: codeUnavailable,
		Message: fmt.Sprintf("JupyterHub refused to %s: %d %s", what, resp.StatusCode, hubMessage(resp))}
}

// hubMessage is the "message" of a hub error body, or its status text.
func hubMessage(resp *http.Response) string {
	var body struct {
		Message string `json:"message"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body) == nil && body.Message != "" {
		return body.Message
	}
	return http.StatusText(resp.StatusCode)
}
