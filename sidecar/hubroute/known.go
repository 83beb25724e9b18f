package hubroute

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// knownTokens remembers for a while (Config.TokenCache) whose each token
// is, as the hub said, and where that user's default server is: both stay
// as they are while the user exists under that name (a server's URL
// depends on its user's name alone). Whether the server runs is never remembered: a stop and a start
// change it at any moment, so a call with a known token goes straight to
// the server's URL and the answer tells (serveKnown).
//
// The cost: a revoked token, or a deleted user's, may still be routed
// until its entry expires; the user's server checks the token itself too,
// and serveKnown asks the hub again when the server refuses it. Entries
// are keyed by the token's hash: the router keeps no token once its calls
// have ended.
type knownTokens struct {
	ttl time.Duration    // 0: remember nothing
	now func() time.Time // time.Now; a test's clock
	mu  sync.Mutex
	m   map[[sha256.Size]byte]knownToken
}

type knownToken struct {
	user    string
	server  serverAddr
	expires time.Time
}

// maxKnownTokens bounds the memory of knownTokens (about 200 bytes each).
const maxKnownTokens = 10000

func (k *knownTokens) get(token string) (knownToken, bool) {
	if k.ttl <= 0 {
		return knownToken{}, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.m[sha256.Sum256([]byte(token))]
	if !ok || k.now().After(e.expires) {
		return knownToken{}, false
	}
	return e, true
}

func (k *knownTokens) put(token, user string, server serverAddr) {
	if k.ttl <= 0 {
		return
	}
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[[sha256.Size]byte]knownToken{}
	}
	if len(k.m) >= maxKnownTokens {
		for h, e := range k.m {
			if now.After(e.expires) {
				delete(k.m, h)
			}
		}
		if len(k.m) >= maxKnownTokens {
			return // full of live entries: these tokens ask the hub each time
		}
	}
	k.m[sha256.Sum256([]byte(token))] = knownToken{user: user, server: server, expires: now.Add(k.ttl)}
}

func (k *knownTokens) forget(token string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, sha256.Sum256([]byte(token)))
}

// knownTry marks a request that serveKnown sends on the strength of a
// remembered answer; stale is set when the answer shows the memory wrong.
type knownTry struct{ stale bool }

type knownTryKey struct{}

// errStale ends a request whose answer came from the hub instead of the
// user's server: nothing of it has reached the client.
var errStale = errors.New("the remembered answer about the token is stale")

// staleAnswer tells whether an answer to a request sent on a remembered
// answer shows that the request did not reach a running server that took
// the token, and ran nothing: the hub's "server not running" (424), a
// refused token (403: the hub's, or the server's own check), a redirect to
// one of the hub's pages.
func staleAnswer(status int) bool {
	return status == http.StatusFailedDependency || status == http.StatusForbidden ||
		(status >= 300 && status < 400)
}

// serveKnown answers req when its token's owner is known (knownTokens):
// straight to that user's server, without asking the hub. It returns
// false, nothing written and req as it came, when the hub must be asked:
// the token is not known, the body is too long to send twice, or the
// answer came from the hub rather than from a server that took the token
// (staleAnswer: stopped, starting, revoked); the entry is then forgotten.
func (r *Router) serveKnown(w *statusWriter, req *http.Request, token string) bool {
	k, ok := r.known.get(token)
	if !ok {
		return false
	}
	body, ok, err := wholeBody(req)
	if err != nil {
		r.fail(w, req, &errHub{Status: http.StatusBadRequest, Code: codeUnavailable,
			Message: "could not read the request's body: " + err.Error()})
		return true
	}
	if !ok {
		return false
	}
	w.user = k.user
	release, err := r.admitUser(k.user)
	if err != nil {
		r.fail(w, req, err)
		return true
	}
	defer release()
	try := &knownTry{}
	sent := req.WithContext(context.WithValue(req.Context(), knownTryKey{}, try))
	if body != nil {
		sent.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.forward(w, sent, k.server, token)
	if !try.stale {
		return true
	}
	r.known.forget(token)
	if body != nil {
		req.Body = readCloser{bytes.NewReader(body), req.Body}
	}
	return false
}

// wholeBody reads a request's body when it holds at most maxPrefix bytes,
// for it to be sent twice if need be; a longer one is put back (ok false).
func wholeBody(req *http.Request) (body []byte, ok bool, err error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, true, nil
	}
	head, err := io.ReadAll(io.LimitReader(req.Body, maxPrefix+1))
	if err != nil {
		return nil, false, err
	}
	if len(head) > maxPrefix {
		req.Body = readCloser{io.MultiReader(bytes.NewReader(head), req.Body), req.Body}
		return nil, false, nil
	}
	return head, true, nil
}
