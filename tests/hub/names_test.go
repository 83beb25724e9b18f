package hub

import "testing"

// Every name reaches its owner's server through <hub>/services/mcp,
// however the hub escapes it in URLs: names with a space, a quote, a %,
// non-ASCII letters, and pairs whose names differ by one escaping (ann lee
// and ann%20lee, o'brien and o%27brien), all with their servers running,
// so that a call sent one escaping off would reach the other's. Each
// token's calls run on its owner's kernel, and only there.
func TestHubURLNames(t *testing.T) {
	names := []string{"ann lee", "ann%20lee", "o'brien", "o%27brien", "zoë (#1)"}
	tok := map[string]string{}
	for _, name := range names {
		if err := theHub.createUser(name); err != nil {
			t.Fatal(err)
		}
		var err error
		if tok[name], err = theHub.userToken(name); err != nil {
			t.Fatal(err)
		}
		tokens[name] = tok[name] // TestMain checks that no log holds it
	}
	for _, name := range names { // one after the other: the hub starts a few at a time
		t.Cleanup(func() { _ = theHub.stopServer(name) }) // their containers are not needed after
		if err := theHub.startServer(name); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"/services/mcp", "/services/mcp/"} { // the second call with the token known
				cs := connect(t, path, "token "+tok[name])
				if who := whoami(t, cs, "who.ipynb"); who != name {
					t.Fatalf("%q's token through %s ran code on %q's kernel", name, path, who)
				}
			}
		})
	}
}
