package deploycheck

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// ComposeService is the part of a docker-compose service that the checks read.
type ComposeService struct {
	Build       any               `yaml:"build"`
	Image       string            `yaml:"image"`
	Command     any               `yaml:"command"`     // a string or a list
	Environment any               `yaml:"environment"` // a map or a list of NAME=value
	Ports       []any             `yaml:"ports"`
	Volumes     []any             `yaml:"volumes"`
	Gpus        any               `yaml:"gpus"`
	Deploy      composeDeploy     `yaml:"deploy"`
	Extra       map[string]any    `yaml:",inline"`
	envMap      map[string]string // Environment as a map
}

type composeDeploy struct {
	Resources struct {
		Reservations struct {
			Devices []ComposeDevice `yaml:"devices"`
		} `yaml:"reservations"`
	} `yaml:"resources"`
}

// ComposeDevice is one deploy.resources.reservations.devices entry.
type ComposeDevice struct {
	Driver       string   `yaml:"driver"`
	Count        any      `yaml:"count"` // a number or "all"
	DeviceIDs    []string `yaml:"device_ids"`
	Capabilities []string `yaml:"capabilities"`
}

// Env returns the service's environment as a map (values as written, before
// Compose's ${VAR} interpolation).
func (s *ComposeService) Env() map[string]string { return s.envMap }

// CommandList returns the command as a list ("" entries for a string command
// split on spaces).
func (s *ComposeService) CommandList() []string {
	switch c := s.Command.(type) {
	case string:
		return strings.Fields(c)
	case []any:
		out := make([]string, len(c))
		for i, v := range c {
			out[i] = fmt.Sprint(v)
		}
		return out
	}
	return nil
}

// Compose is a parsed docker-compose.yml.
type Compose struct {
	Services map[string]*ComposeService `yaml:"services"`
	Extra    map[string]any             `yaml:",inline"`
}

// composeTop and composeServiceKeys are the Compose specification's keys; a
// key outside them is a typo that Compose would reject or ignore.
var (
	composeTop         = []string{"services", "volumes", "networks", "configs", "secrets", "name", "version", "include", "models"}
	composeServiceKeys = []string{"annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup",
		"cgroup_parent", "command", "configs", "container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota",
		"cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset", "credential_spec", "depends_on", "deploy",
		"develop", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname", "driver_opts",
		"entrypoint", "env_file", "environment", "expose", "extends", "external_links", "extra_hosts", "gpus",
		"group_add", "healthcheck", "hostname", "image", "init", "ipc", "isolation", "labels", "label_file", "links",
		"logging", "mac_address", "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit", "models",
		"network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "ports",
		"post_start", "pre_stop", "privileged", "profiles", "provider", "pull_policy", "read_only", "restart",
		"runtime", "scale", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period", "stop_signal",
		"storage_opt", "sysctls", "tmpfs", "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts",
		"volumes", "volumes_from", "working_dir"}
)

// ParseCompose reads a docker-compose.yml.
func ParseCompose(name string, src []byte) (*Compose, error) {
	var c Compose
	if err := yaml.Unmarshal(src, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for sname, s := range c.Services {
		if s == nil {
			return nil, fmt.Errorf("%s: service %s is empty", name, sname)
		}
		s.envMap = map[string]string{}
		switch e := s.Environment.(type) {
		case map[string]any:
			for k, v := range e {
				if v == nil {
					s.envMap[k] = ""
				} else {
					s.envMap[k] = fmt.Sprint(v)
				}
			}
		case []any:
			for _, v := range e {
				k, val, _ := strings.Cut(fmt.Sprint(v), "=")
				s.envMap[k] = val
			}
		case nil:
		default:
			return nil, fmt.Errorf("%s: service %s: environment must be a map or a list", name, sname)
		}
	}
	return &c, nil
}

// CheckCompose parses src and checks it: known keys only, every service has an
// image or a build, and at least one service reserves an NVIDIA GPU (the
// worker needs one).
func CheckCompose(name string, src []byte) ([]Finding, error) {
	c, err := ParseCompose(name, src)
	if err != nil {
		return nil, err
	}
	fs := &findings{file: name}
	for k := range c.Extra {
		if !slices.Contains(composeTop, k) && !strings.HasPrefix(k, "x-") {
			fs.add(lineOf(src, k+":"), "compose-key", "unknown top-level key %q", k)
		}
	}
	if len(c.Services) == 0 {
		fs.add(0, "compose-service", "no services")
	}
	gpu := false
	for _, sname := range sortedKeys(c.Services) {
		s := c.Services[sname]
		for k := range s.Extra {
			if !slices.Contains(composeServiceKeys, k) && !strings.HasPrefix(k, "x-") {
				fs.add(lineOf(src, k+":"), "compose-key", "service %s: unknown key %q", sname, k)
			}
		}
		if s.Build == nil && s.Image == "" {
			fs.add(lineOf(src, sname+":"), "compose-service", "service %s has neither image nor build", sname)
		}
		if s.Gpus != nil {
			gpu = true
		}
		for _, d := range s.Deploy.Resources.Reservations.Devices {
			if !slices.Contains(d.Capabilities, "gpu") {
				continue
			}
			if d.Driver != "" && d.Driver != "nvidia" {
				fs.add(lineOf(src, "driver:"), "compose-gpu", "service %s: GPU driver %q; the worker needs an NVIDIA GPU", sname, d.Driver)
				continue
			}
			switch n := d.Count.(type) {
			case int:
				if n < 1 {
					fs.add(lineOf(src, "count:"), "compose-gpu", "service %s: GPU count %d", sname, n)
					continue
				}
			case string:
				if n != "all" {
					fs.add(lineOf(src, "count:"), "compose-gpu", "service %s: GPU count %q (a number or all)", sname, n)
					continue
				}
			case nil:
				if len(d.DeviceIDs) == 0 {
					fs.add(lineOf(src, "capabilities:"), "compose-gpu", "service %s: GPU reservation without count or device_ids", sname)
					continue
				}
			}
			gpu = true
		}
	}
	if !gpu && len(c.Services) > 0 {
		fs.add(0, "compose-gpu", "no service reserves a GPU: add deploy.resources.reservations.devices with driver nvidia, count 1, capabilities [gpu]")
	}
	return fs.sorted(), nil
}

// lineOf returns the 1-based line of the first occurrence of needle in src, or 0.
func lineOf(src []byte, needle string) int {
	i := strings.Index(string(src), needle)
	if i < 0 {
		return 0
	}
	return strings.Count(string(src[:i]), "\n") + 1
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
