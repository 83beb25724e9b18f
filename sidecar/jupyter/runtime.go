package jupyter

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ServerInfo is what the sidecar needs to reach its Jupyter server.
type ServerInfo struct {
	// URL is the loopback URL of the server including its base URL, ending
	// in "/", e.g. "http://127.0.0.1:8888/user/alice/".
	URL string
	// Socket is the unix socket the server listens on, if any; URL's host
	// is then ignored for dialing.
	Socket  string
	Token   string
	BaseURL string
	RootDir string
	PID     int
}

// runtimeFile is the subset of jpserver-<pid>.json that the sidecar reads.
type runtimeFile struct {
	Port    int    `json:"port"`
	Sock    string `json:"sock"`
	Secure  bool   `json:"secure"`
	BaseURL string `json:"base_url"`
	Token   string `json:"token"`
	RootDir string `json:"root_dir"`
	PID     int    `json:"pid"`
}

// RuntimeDir returns Jupyter's runtime directory, following jupyter_core's
// rules on Linux: $JUPYTER_RUNTIME_DIR, else <data dir>/runtime.
func RuntimeDir(getenv func(string) string) string {
	if d := getenv("JUPYTER_RUNTIME_DIR"); d != "" {
		return d
	}
	return filepath.Join(DataDir(getenv), "runtime")
}

// DataDir returns Jupyter's data directory, following jupyter_core's rules
// on Linux: $JUPYTER_DATA_DIR, else $XDG_DATA_HOME/jupyter, else
// ~/.local/share/jupyter.
func DataDir(getenv func(string) string) string {
	if d := getenv("JUPYTER_DATA_DIR"); d != "" {
		return d
	}
	xdg := getenv("XDG_DATA_HOME")
	if xdg == "" {
		xdg = filepath.Join(getenv("HOME"), ".local", "share")
	}
	return filepath.Join(xdg, "jupyter")
}

// ReadServerInfo reads the runtime file jpserver-<pid>.json that the Jupyter
// server with that pid wrote into dir. The sidecar is exec'd by the server
// itself (no shell in between), so pid is its parent's.
func ReadServerInfo(dir string, pid int) (*ServerInfo, error) {
	path := filepath.Join(dir, "jpserver-"+strconv.Itoa(pid)+".json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read Jupyter runtime file: %w", err)
	}
	var rf runtimeFile
	if err := json.Unmarshal(data, &rf); err != nil {
		return nil, fmt.Errorf("parse Jupyter runtime file %s: %w", path, err)
	}
	if rf.Port == 0 && rf.Sock == "" {
		return nil, errors.New("Jupyter runtime file " + path + " names neither a port nor a socket")
	}
	base := rf.BaseURL
	if !strings.HasPrefix(base, "/") {
		base = "/" + base
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	scheme := "http"
	if rf.Secure {
		scheme = "https"
	}
	// Always loopback: Jupyter's check_host rejects other host names by
	// default, and the server may have bound 0.0.0.0.
	host := "127.0.0.1:" + strconv.Itoa(rf.Port)
	if rf.Sock != "" {
		host = "localhost"
	}
	return &ServerInfo{
		URL:     scheme + "://" + host + base,
		Socket:  rf.Sock,
		Token:   rf.Token,
		BaseURL: base,
		RootDir: rf.RootDir,
		PID:     rf.PID,
	}, nil
}
