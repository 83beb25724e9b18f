// Package jupyter is the sidecar's client for the Jupyter server that launched
// it: it finds the server (runtime file, environment), and calls its REST API
// over loopback with the server's own credential.
package jupyter
