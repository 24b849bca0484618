package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/wan22-worker/wan22-worker/internal/version"
)

func versionCommand() *command {
	c := &command{name: "version", usage: "version [--json]", summary: "print the version, commit and Go version"}
	c.run = func(ctx context.Context, env *Env, args []string) int {
		fs := newFlagSet(env, c)
		asJSON := fs.Bool("json", false, "print as JSON")
		if code, ok := parseFlags(fs, args); !ok {
			return code
		}
		info := version.Get()
		if *asJSON {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(info); err != nil {
				return exitFailed
			}
			return exitOK
		}
		fmt.Fprintln(env.Stdout, info)
		return exitOK
	}
	return c
}
