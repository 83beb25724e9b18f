package hubauth

import (
	"html/template"
	"net/http"
	"net/url"
)

// The two pages a person sees: the consent page, and the page that says why
// a sign-in cannot go on. Neither may be framed (clickjacking).

var pages = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}}</title><style>
body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem} .who{color:#555} label{display:block;margin:.4rem 0} button{font-size:1rem;padding:.4rem 1.2rem;margin-right:.6rem}
code{background:#f3f3f3;padding:0 .2rem}</style></head><body>{{end}}
{{define "consent"}}{{template "head" .}}
<h1>Allow <em>{{.Client}}</em> to use your notebooks?</h1>
<p class="who">Signed in to JupyterHub as <strong>{{.User}}</strong>.{{if .Admin}} The hub's admin registered this client.{{end}}{{if .Publisher}} The client is described by <code>{{.Publisher}}</code>.{{end}} After you allow it, the client will be sent back to <code>{{.RedirectHost}}</code>.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="pending" value="{{.Pending}}">
<p>It asks to:</p>
{{range .Scopes}}<label><input type="checkbox" name="scope" value="{{.Name}}" checked> {{.Text}} <code>{{.Name}}</code></label>
{{end}}<p>Untick what you do not want to allow. You can revoke access at any time on the hub's token page.</p>
<button type="submit" name="action" value="allow">Allow</button><button type="submit" name="action" value="deny">Deny</button>
</form></body></html>{{end}}
{{define "error"}}{{template "head" .}}<h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>{{end}}
`))

func noFraming(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
}

// page shows a person why a sign-in cannot go on.
func page(w http.ResponseWriter, status int, title, message string) {
	noFraming(w)
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, "error", map[string]string{"Title": title, "Message": message})
}

type scopeChoice struct{ Name, Text string }

func (s *Server) consentPage(w http.ResponseWriter, req *request, pending string) {
	var choices []scopeChoice
	for _, sc := range req.Scopes {
		choices = append(choices, scopeChoice{sc, scopeText[sc]})
	}
	host := req.RedirectURI
	if u, err := url.Parse(req.RedirectURI); err == nil {
		host = u.Host
	}
	publisher := ""
	if isMetadataURL(req.ClientID) {
		u, _ := url.Parse(req.ClientID)
		publisher = u.Host
	}
	noFraming(w)
	_ = pages.ExecuteTemplate(w, "consent", map[string]any{
		"Publisher": publisher,
		"Admin":     s.preRegistered(req.ClientID) != nil,
		"Title":     "Allow " + req.ClientName + "?", "Client": req.ClientName, "User": req.User, "RedirectHost": host,
		"Action": s.prefix + "/consent", "Pending": pending, "Scopes": choices,
	})
}
