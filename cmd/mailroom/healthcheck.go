package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

func newHealthcheckCommand() *cobra.Command {
	var f serveFlags
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the local server answers /healthz, 1 otherwise (for container health checks)",
		Long: `Exit 0 if the server answers GET /healthz with 200, and 1 otherwise.

Without --url it asks the address serve would listen on with the same
--config and MAILROOM_* environment, on loopback when that address is a
wildcard (:8080 → 127.0.0.1:8080). The container image runs it as its
HEALTHCHECK, since the image holds no shell or curl.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				listen, err := listenOf(f)
				if err != nil {
					return err
				}
				url = "http://" + listen + "/healthz"
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return usageErrorf("--url %q: %v", url, err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("unhealthy: %w", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("unhealthy: GET %s: %s %s", url, resp.Status, body)
			}
			_, err = cmd.OutOrStdout().Write(body)
			return err
		},
	}
	cmd.Flags().StringVarP(&f.configPath, "config", "c", "", "YAML config file whose listen address to check (default: embedded default config)")
	cmd.Flags().StringVar(&url, "url", "", "URL to GET instead (e.g. http://127.0.0.1:8080/healthz)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

// listenOf returns the address serve would listen on with these flags,
// with a wildcard host replaced by loopback so a local client can dial it.
func listenOf(f serveFlags) (string, error) {
	cfg, err := configOf(f)
	if err != nil {
		return "", err
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("listen %q: %w", cfg.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}
