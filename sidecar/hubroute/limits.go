package hubroute

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Limits bound what clients can hold of the router, the one door of every
// user: time to send a request, requests in flight overall and per user.
// Zero fields take the DefaultLimits.
type Limits struct {
	// HeaderTimeout bounds the wait for a request's line and headers.
	HeaderTimeout time.Duration
	// BodyTimeout bounds the wait for a request's body, from its first
	// byte read (a body read once a server has started is not late).
	BodyTimeout time.Duration
	// IdleTimeout closes a kept-alive connection without a request.
	IdleTimeout time.Duration
	// WriteStall cuts an answer whose client has read nothing of it for
	// this long (a stream may stay quiet for hours; a write may not wait).
	WriteStall time.Duration
	// MaxHeaderBytes bounds a request's line and headers.
	MaxHeaderBytes int
	// MaxRequests bounds the requests in flight at once (open streams
	// included); more are answered 503 with Retry-After.
	MaxRequests int
	// MaxUserRequests bounds one user's requests in flight.
	MaxUserRequests int
}

// DefaultLimits. The router buffers at most maxRequestMemory (512 KiB) per
// request in flight, 256 MiB for MaxRequests, should every request be
// bringing a server up with a long body; a call to a running server holds
// less than 200 KiB.
var DefaultLimits = Limits{
	HeaderTimeout:   10 * time.Second,
	BodyTimeout:     60 * time.Second,
	IdleTimeout:     90 * time.Second,
	WriteStall:      60 * time.Second,
	MaxHeaderBytes:  64 << 10,
	MaxRequests:     512,
	MaxUserRequests: 32,
}

// maxRequestMemory is what the router may buffer for one request in
// flight at most: its headers, the start of its body kept for an error's
// id and that start read again for one, the body read to find a progress
// token, the buffered tail of an answer on a progress stream, and the copy
// buffers of the proxy and of both connections.
const maxRequestMemory = 64<<10 + 2*maxPrefix + maxPeek + maxTail + 32<<10 + 4*4<<10

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	l.HeaderTimeout = orDefault(l.HeaderTimeout, d.HeaderTimeout)
	l.BodyTimeout = orDefault(l.BodyTimeout, d.BodyTimeout)
	l.IdleTimeout = orDefault(l.IdleTimeout, d.IdleTimeout)
	l.WriteStall = orDefault(l.WriteStall, d.WriteStall)
	l.MaxHeaderBytes = orDefault(l.MaxHeaderBytes, d.MaxHeaderBytes)
	l.MaxRequests = orDefault(l.MaxRequests, d.MaxRequests)
	l.MaxUserRequests = orDefault(l.MaxUserRequests, d.MaxUserRequests)
	return l
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Server is an http.Server for the router with its limits. It has no
// write timeout, as an answer streams for as long as the call runs: each
// write has a deadline of its own instead (stallWriter).
func (r *Router) Server() *http.Server {
	return &http.Server{
		Handler:           r,
		ReadHeaderTimeout: r.limits.HeaderTimeout,
		IdleTimeout:       r.limits.IdleTimeout,
		MaxHeaderBytes:    r.limits.MaxHeaderBytes,
	}
}

// timedBody bounds the time a request's body takes to arrive, from its
// first read. http.Server.ReadTimeout would count from the request's
// start, and fail the body of a call that waited for its server to start.
type timedBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	limit time.Duration
	once  sync.Once
}

func (b *timedBody) Read(p []byte) (int, error) {
	// The server clears the deadline itself once the body has been read.
	b.once.Do(func() { _ = b.rc.SetReadDeadline(time.Now().Add(b.limit)) })
	return b.ReadCloser.Read(p)
}

// stallWriter gives each write of an answer WriteStall to reach the
// client, so that a client that never reads its stream cannot hold the
// router's goroutine and the user's server's call for ever.
type stallWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	limit time.Duration
}

func newStallWriter(w http.ResponseWriter, limit time.Duration) *stallWriter {
	return &stallWriter{ResponseWriter: w, rc: http.NewResponseController(w), limit: limit}
}

func (s *stallWriter) Write(b []byte) (int, error) {
	s.arm()
	return s.ResponseWriter.Write(b)
}

// arm sets the deadline of the next write (and of the flush after it),
// replacing the last answer's on a kept-alive connection; the server's
// own flush after the handler returns needs one too.
func (s *stallWriter) arm() { _ = s.rc.SetWriteDeadline(time.Now().Add(s.limit)) }

func (s *stallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// admission counts the requests in flight, overall and per user.
type admission struct {
	mu    sync.Mutex
	all   int
	users map[string]int
}

// Retry-After for a request refused at capacity: requests end quickly, or
// streams end with their sessions.
const capacityRetry = "2"

// admit counts a request in flight until release, unless MaxRequests are.
func (r *Router) admit() (release func(), refused *errHub) {
	a := &r.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.all >= r.limits.MaxRequests {
		return nil, &errHub{Status: http.StatusServiceUnavailable, Code: codeUnavailable, RetryAfter: capacityRetry,
			Message: fmt.Sprintf("the hub's MCP service is at capacity (%d requests in flight, the most it takes); retry in a moment", r.limits.MaxRequests)}
	}
	a.all++
	return func() {
		a.mu.Lock()
		a.all--
		a.mu.Unlock()
	}, nil
}

// admitUser counts one of user's requests in flight until release,
// unless MaxUserRequests are: one user cannot take everyone's share.
func (r *Router) admitUser(user string) (release func(), err error) {
	a := &r.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.users[user] >= r.limits.MaxUserRequests {
		return nil, &errHub{Status: http.StatusServiceUnavailable, Code: codeUnavailable, RetryAfter: capacityRetry,
			Message: fmt.Sprintf("%s has %d requests in flight through the hub's MCP URL, the most one user may (open streams count: each MCP session holds one); retry when one has ended", user, r.limits.MaxUserRequests)}
	}
	if a.users == nil {
		a.users = map[string]int{}
	}
	a.users[user]++
	return func() {
		a.mu.Lock()
		if a.users[user]--; a.users[user] == 0 {
			delete(a.users, user)
		}
		a.mu.Unlock()
	}, nil
}
