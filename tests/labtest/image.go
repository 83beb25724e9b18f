package labtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// BaseImages are the build args naming the Dockerfile's base images: the
// local ones of `make base-images` unless BASE_BUILD_IMAGE/BASE_RUNTIME_IMAGE
// say otherwise (the same variables as in the Makefile).
func BaseImages() map[string]string {
	get := func(env, def string) string {
		if v := os.Getenv(env); v != "" {
			return v
		}
		return def
	}
	return map[string]string{
		"BUILD_IMAGE":   get("BASE_BUILD_IMAGE", "jupyter-mcp-sidecar-base:build"),
		"RUNTIME_IMAGE": get("BASE_RUNTIME_IMAGE", "jupyter-mcp-sidecar-base:runtime"),
	}
}

// BuildImage builds the Dockerfile at the repository root as repo:tag with
// testcontainers-go on the base images of BaseImages. Docker's layer cache
// makes this quick when only the tests changed.
func BuildImage(ctx context.Context, repo, tag string) error {
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return fmt.Errorf("docker is not available (%v: %s): install and start it (.ci/run does)", err, bytes.TrimSpace(out))
	}
	args := map[string]*string{}
	for name, ref := range BaseImages() {
		if err := exec.Command("docker", "image", "inspect", ref).Run(); err != nil {
			return fmt.Errorf("base image %s is missing: run `make base-images` (or `make image`) first", ref)
		}
		args[name] = &ref
	}
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return err
	}
	defer provider.Close()
	var buildLog bytes.Buffer
	start := time.Now()
	_, err = provider.BuildImage(ctx, &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context:        RepoRoot(),
		Repo:           repo,
		Tag:            tag,
		BuildArgs:      args,
		BuildLogWriter: &buildLog,
		KeepImage:      true,
	}})
	if err != nil {
		return fmt.Errorf("docker build: %v\n%s", err, Tail(buildLog.Bytes(), 8<<10))
	}
	fmt.Fprintf(os.Stderr, "built %s:%s in %s\n", repo, tag, time.Since(start).Round(time.Second))
	return nil
}
