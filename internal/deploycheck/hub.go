package deploycheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/wan22-worker/wan22-worker/internal/config"
)

// The RunPod Hub schema (docs.runpod.io, "Hub publishing guide": hub.json and
// tests.json reference). Keys outside these lists are findings: the Hub
// ignores or rejects them, and a typo would silently drop a setting.
var (
	hubKeys         = []string{"title", "description", "type", "category", "iconUrl", "config"}
	hubCategories   = []string{"audio", "embedding", "language", "video", "image"}
	hubConfigKeys   = []string{"runsOn", "containerDiskInGb", "cpuFlavor", "gpuCount", "gpuIds", "allowedCudaVersions", "env", "presets"}
	hubEnvKeys      = []string{"key", "value", "input"}
	hubInputKeys    = []string{"name", "type", "description", "default", "advanced", "options", "min", "max", "trueValue", "falseValue"}
	hubInputTypes   = []string{"string", "number", "boolean", "huggingface"}
	hubPresetKeys   = []string{"name", "defaults"}
	testsKeys       = []string{"tests", "config"}
	testKeys        = []string{"name", "input", "timeout"}
	testsConfigKeys = []string{"gpuTypeId", "gpuCount", "cpuFlavor", "env", "allowedCudaVersions"}
	cudaVersionRE   = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)
	gpuPoolRE       = regexp.MustCompile(`^[A-Z]+_[0-9]+(_PRO)?$`)
)

// jsonObject decodes src keeping numbers exact.
func jsonObject(src []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("text after the JSON object")
	}
	return v, nil
}

// checker walks a decoded JSON document and records findings.
type checker struct {
	*findings
	src []byte
}

// line guesses the line of a key or value by its first occurrence in the file.
func (c *checker) line(needle string) int {
	if needle == "" {
		return 0
	}
	return lineOf(c.src, needle)
}

func (c *checker) keys(where string, obj map[string]any, allowed []string) {
	for _, k := range sortedKeys(obj) {
		if !slices.Contains(allowed, k) {
			c.add(c.line(`"`+k+`"`), "hub-schema", "%s: unknown key %q (allowed: %s)", where, k, strings.Join(allowed, ", "))
		}
	}
}

func (c *checker) str(where string, obj map[string]any, key string, required bool) (string, bool) {
	v, ok := obj[key]
	if !ok {
		if required {
			c.add(0, "hub-schema", "%s: %q is required", where, key)
		}
		return "", false
	}
	s, isStr := v.(string)
	if !isStr {
		c.add(c.line(`"`+key+`"`), "hub-schema", "%s: %q must be a string", where, key)
		return "", false
	}
	if required && strings.TrimSpace(s) == "" {
		c.add(c.line(`"`+key+`"`), "hub-schema", "%s: %q is empty", where, key)
	}
	return s, true
}

func (c *checker) integer(where string, obj map[string]any, key string, required bool) (int64, bool) {
	v, ok := obj[key]
	if !ok {
		if required {
			c.add(0, "hub-schema", "%s: %q is required", where, key)
		}
		return 0, false
	}
	n, isNum := v.(json.Number)
	if !isNum {
		c.add(c.line(`"`+key+`"`), "hub-schema", "%s: %q must be an integer", where, key)
		return 0, false
	}
	i, err := n.Int64()
	if err != nil {
		c.add(c.line(`"`+key+`"`), "hub-schema", "%s: %q must be an integer, not %s", where, key, n)
		return 0, false
	}
	return i, true
}

func (c *checker) object(where string, obj map[string]any, key string, required bool) (map[string]any, bool) {
	v, ok := obj[key]
	if !ok {
		if required {
			c.add(0, "hub-schema", "%s: %q is required", where, key)
		}
		return nil, false
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		c.add(c.line(`"`+key+`"`), "hub-schema", "%s: %q must be an object", where, key)
	}
	return m, isObj
}

func (c *checker) array(where string, obj map[string]any, key string, required bool) ([]any, bool) {
	v, ok := obj[key]
	if !ok {
		if required {
			c.add(0, "hub-schema", "%s: %q is required", where, key)
		}
		return nil, false
	}
	a, isArr := v.([]any)
	if !isArr {
		c.add(c.line(`"`+key+`"`), "hub-schema", "%s: %q must be an array", where, key)
	}
	return a, isArr
}

func (c *checker) cudaVersions(where string, obj map[string]any) {
	vs, ok := c.array(where, obj, "allowedCudaVersions", false)
	if !ok {
		return
	}
	for _, v := range vs {
		s, isStr := v.(string)
		if !isStr || !cudaVersionRE.MatchString(s) {
			c.add(c.line("allowedCudaVersions"), "hub-schema", "%s: allowedCudaVersions entry %v is not a version string such as \"12.8\"", where, v)
		}
	}
}

// hubInput is one env entry's input definition.
type hubInput struct {
	typ       string
	def       any
	trueValue string
	falseVal  string
}

// render turns a JSON value of the input's type into the environment text the
// worker receives.
func (in hubInput) render(v any) (string, error) {
	switch in.typ {
	case "number":
		n, ok := v.(json.Number)
		if !ok {
			return "", fmt.Errorf("must be a number")
		}
		f, err := n.Float64()
		if err != nil {
			return "", err
		}
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	case "boolean":
		b, ok := v.(bool)
		if !ok {
			return "", fmt.Errorf("must be true or false")
		}
		if b {
			return in.trueValue, nil
		}
		return in.falseVal, nil
	default:
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("must be a string")
		}
		return s, nil
	}
}

// settingsTable maps the worker's settings by name.
func settingsTable() map[string]config.Setting {
	m := map[string]config.Setting{}
	for _, s := range config.Settings() {
		m[s.Name] = s
	}
	return m
}

// loadWith loads the worker's configuration with one variable set.
func loadWith(key, value string) (*config.Config, error) {
	return config.Load(nil, func(k string) string {
		if k == key {
			return value
		}
		return ""
	})
}

// sameConfig compares two configurations field by field (exported fields only:
// the effective settings, not where they came from).
func sameConfig(a, b *config.Config) bool {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := range va.NumField() {
		if !va.Type().Field(i).IsExported() {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			return false
		}
	}
	return true
}

// checkValue reports a value the worker would refuse at start.
func (c *checker) checkValue(where, key, value string) {
	if _, err := loadWith(key, value); err != nil {
		c.add(c.line(`"`+key+`"`), "hub-env", "%s: %s=%q is refused by the worker: %v", where, key, value, err)
	}
}

// CheckHub checks .runpod/hub.json against the Hub's schema and the worker's
// settings: every env key is a setting of the worker, every default, option,
// bound and preset value is one the worker accepts, and each input's default
// has the same effect as the worker's own default (so that deploying from the
// Hub without touching a field changes nothing). The error is invalid JSON.
func CheckHub(name string, src []byte) ([]Finding, error) {
	doc, err := jsonObject(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := &checker{findings: &findings{file: name}, src: src}
	c.keys("hub.json", doc, hubKeys)
	c.str("hub.json", doc, "title", true)
	c.str("hub.json", doc, "description", true)
	if t, ok := c.str("hub.json", doc, "type", true); ok && t != "serverless" {
		c.add(c.line(`"type"`), "hub-schema", "type must be \"serverless\", not %q", t)
	}
	if cat, ok := c.str("hub.json", doc, "category", true); ok && !slices.Contains(hubCategories, cat) {
		c.add(c.line(`"category"`), "hub-schema", "category %q is not one of %s", cat, strings.Join(hubCategories, ", "))
	}
	if u, ok := c.str("hub.json", doc, "iconUrl", false); ok && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		c.add(c.line(`"iconUrl"`), "hub-schema", "iconUrl %q is not a URL", u)
	}
	cfg, ok := c.object("hub.json", doc, "config", true)
	if !ok {
		return c.sorted(), nil
	}
	c.keys("config", cfg, hubConfigKeys)
	runsOn, _ := c.str("config", cfg, "runsOn", true)
	switch runsOn {
	case "GPU":
		if n, ok := c.integer("config", cfg, "gpuCount", true); ok && n < 1 {
			c.add(c.line(`"gpuCount"`), "hub-schema", "config: gpuCount must be at least 1")
		}
		if ids, ok := c.str("config", cfg, "gpuIds", true); ok {
			for _, id := range strings.Split(ids, ",") {
				id = strings.TrimSpace(id)
				if id == "" || (!strings.HasPrefix(id, "-") && !gpuPoolRE.MatchString(id)) {
					c.add(c.line(`"gpuIds"`), "hub-schema", "config: gpuIds entry %q is neither a GPU pool id (e.g. ADA_32_PRO) nor a negated GPU id (e.g. -NVIDIA GeForce RTX 4090)", id)
				}
			}
		}
	case "CPU":
		c.str("config", cfg, "cpuFlavor", true)
	case "":
	default:
		c.add(c.line(`"runsOn"`), "hub-schema", "config: runsOn must be GPU or CPU, not %q", runsOn)
	}
	if n, ok := c.integer("config", cfg, "containerDiskInGb", true); ok && n < 1 {
		c.add(c.line(`"containerDiskInGb"`), "hub-schema", "config: containerDiskInGb must be positive")
	}
	c.cudaVersions("config", cfg)
	inputs := c.hubEnv(cfg)
	c.hubPresets(cfg, inputs)
	return c.sorted(), nil
}

// hubEnv checks config.env and returns the inputs by key.
func (c *checker) hubEnv(cfg map[string]any) map[string]hubInput {
	inputs := map[string]hubInput{}
	entries, ok := c.array("config", cfg, "env", false)
	if !ok {
		return inputs
	}
	table := settingsTable()
	defaults := config.Default()
	seen := map[string]bool{}
	for i, e := range entries {
		where := fmt.Sprintf("config.env[%d]", i)
		obj, isObj := e.(map[string]any)
		if !isObj {
			c.add(0, "hub-schema", "%s must be an object", where)
			continue
		}
		c.keys(where, obj, hubEnvKeys)
		key, ok := c.str(where, obj, "key", true)
		if !ok {
			continue
		}
		where = "env " + key
		if seen[key] {
			c.add(c.line(`"`+key+`"`), "hub-schema", "%s is defined twice", where)
		}
		seen[key] = true
		setting, known := table[key]
		if !known {
			c.add(c.line(`"`+key+`"`), "hub-env", "%s is not a setting of the worker (internal/config)", where)
		}
		_, hasValue := obj["value"]
		input, hasInput := c.object(where, obj, "input", false)
		switch {
		case hasValue && hasInput, !hasValue && !hasInput:
			c.add(c.line(`"`+key+`"`), "hub-schema", "%s needs exactly one of \"value\" and \"input\"", where)
			continue
		case hasValue:
			if v, ok := c.str(where, obj, "value", false); ok && known {
				c.checkValue(where, key, v)
			}
			continue
		}
		in, ok := c.hubInput(where, key, input)
		if !ok {
			inputs[key] = hubInput{} // reported; presets may still name it
			continue
		}
		inputs[key] = in
		if !known {
			continue
		}
		def, err := in.render(in.def)
		if err != nil {
			c.add(c.line(`"`+key+`"`), "hub-schema", "%s: default %v", where, err)
			continue
		}
		cfgHub, err := loadWith(key, def)
		switch {
		case err != nil:
			c.add(c.line(`"`+key+`"`), "hub-env", "%s: default %q is refused by the worker: %v", where, def, err)
		case !sameConfig(cfgHub, defaults):
			c.add(c.line(`"`+key+`"`), "hub-env", "%s: default %q differs from the worker's default %q: make them agree", where, def, setting.Default)
		}
		if opts, ok := input["options"].([]any); ok {
			for _, o := range opts {
				if om, ok := o.(map[string]any); ok {
					if v, ok := om["value"].(string); ok {
						c.checkValue(where+" option", key, v)
					}
				}
			}
		}
		for _, bound := range []string{"min", "max"} {
			if v, ok := input[bound]; ok {
				if s, err := in.render(v); err == nil {
					c.checkValue(where+" "+bound, key, s)
				}
			}
		}
		if in.typ == "boolean" {
			c.checkValue(where+" trueValue", key, in.trueValue)
			c.checkValue(where+" falseValue", key, in.falseVal)
		}
	}
	return inputs
}

// hubInput checks one input definition.
func (c *checker) hubInput(where, key string, input map[string]any) (hubInput, bool) {
	c.keys(where+" input", input, hubInputKeys)
	c.str(where+" input", input, "name", true)
	c.str(where+" input", input, "description", true)
	typ, _ := c.str(where+" input", input, "type", true)
	if !slices.Contains(hubInputTypes, typ) {
		c.add(c.line(`"`+key+`"`), "hub-schema", "%s: input type %q is not one of %s", where, typ, strings.Join(hubInputTypes, ", "))
		return hubInput{}, false
	}
	if v, ok := input["advanced"]; ok {
		if _, isBool := v.(bool); !isBool {
			c.add(c.line(`"`+key+`"`), "hub-schema", "%s: advanced must be true or false", where)
		}
	}
	in := hubInput{typ: typ, def: input["default"]}
	if _, ok := input["default"]; !ok {
		c.add(c.line(`"`+key+`"`), "hub-schema", "%s: input has no default", where)
		return in, false
	}
	if _, ok := input["options"]; ok && typ != "string" {
		c.add(c.line(`"`+key+`"`), "hub-schema", "%s: options are for string inputs", where)
	}
	if opts, ok := input["options"]; ok && typ == "string" {
		list, isList := opts.([]any)
		if !isList || len(list) == 0 {
			c.add(c.line(`"`+key+`"`), "hub-schema", "%s: options must be a non-empty array", where)
		}
		found := false
		for _, o := range list {
			om, isObj := o.(map[string]any)
			if !isObj {
				c.add(c.line(`"`+key+`"`), "hub-schema", "%s: an option must be {\"label\", \"value\"}", where)
				continue
			}
			c.keys(where+" option", om, []string{"label", "value"})
			c.str(where+" option", om, "label", true)
			if v, ok := c.str(where+" option", om, "value", false); ok && v == in.def {
				found = true
			}
		}
		if !found {
			c.add(c.line(`"`+key+`"`), "hub-schema", "%s: the default %v is not among the options", where, in.def)
		}
	}
	for _, bound := range []string{"min", "max"} {
		if v, ok := input[bound]; ok {
			if typ != "number" {
				c.add(c.line(`"`+key+`"`), "hub-schema", "%s: %s is for number inputs", where, bound)
			} else if _, isNum := v.(json.Number); !isNum {
				c.add(c.line(`"`+key+`"`), "hub-schema", "%s: %s must be a number", where, bound)
			}
		}
	}
	if typ == "number" {
		lo, hasLo := input["min"].(json.Number)
		hi, hasHi := input["max"].(json.Number)
		d, isNum := in.def.(json.Number)
		if isNum {
			df, _ := d.Float64()
			if l, _ := lo.Float64(); hasLo && df < l {
				c.add(c.line(`"`+key+`"`), "hub-schema", "%s: default %s is below min %s", where, d, lo)
			}
			if h, _ := hi.Float64(); hasHi && df > h {
				c.add(c.line(`"`+key+`"`), "hub-schema", "%s: default %s is above max %s", where, d, hi)
			}
		}
	}
	if typ == "boolean" {
		tv, ok1 := c.str(where+" input", input, "trueValue", true)
		fv, ok2 := c.str(where+" input", input, "falseValue", true)
		if !ok1 || !ok2 {
			return in, false
		}
		in.trueValue, in.falseVal = tv, fv
	} else {
		for _, k := range []string{"trueValue", "falseValue"} {
			if _, ok := input[k]; ok {
				c.add(c.line(`"`+key+`"`), "hub-schema", "%s: %s is for boolean inputs", where, k)
			}
		}
	}
	return in, true
}

func (c *checker) hubPresets(cfg map[string]any, inputs map[string]hubInput) {
	presets, ok := c.array("config", cfg, "presets", false)
	if !ok {
		return
	}
	for i, p := range presets {
		where := fmt.Sprintf("config.presets[%d]", i)
		obj, isObj := p.(map[string]any)
		if !isObj {
			c.add(0, "hub-schema", "%s must be an object", where)
			continue
		}
		c.keys(where, obj, hubPresetKeys)
		if n, ok := c.str(where, obj, "name", true); ok {
			where = "preset " + strconv.Quote(n)
		}
		defs, ok := c.object(where, obj, "defaults", true)
		if !ok {
			continue
		}
		for _, k := range sortedKeys(defs) {
			in, known := inputs[k]
			if !known {
				c.add(c.line(`"`+k+`"`), "hub-schema", "%s sets %s, which is not an input of config.env", where, k)
				continue
			}
			if in.typ == "" {
				continue // its input is invalid, already reported
			}
			v, err := in.render(defs[k])
			if err != nil {
				c.add(c.line(`"`+k+`"`), "hub-schema", "%s: %s %v (its input is a %s)", where, k, err, in.typ)
				continue
			}
			c.checkValue(where, k, v)
		}
	}
}

// CheckHubTests checks .runpod/tests.json against the Hub's schema: each test
// has a name, an input object and an optional timeout in milliseconds; the
// test environment names a GPU (or CPU flavor), its env keys are settings of
// the worker with values it accepts, and they turn SELF_TEST on: the Hub runs
// the tests without the network volume, so only the self-test's generated
// stand-in models are there. validate, when not nil, checks each test's
// input as the worker would (the job input contract). The error is invalid
// JSON.
func CheckHubTests(name string, src []byte, validate func(input json.RawMessage) error) ([]Finding, error) {
	doc, err := jsonObject(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var raw struct {
		Tests []struct {
			Input json.RawMessage `json:"input"`
		} `json:"tests"`
	}
	_ = json.Unmarshal(src, &raw) // shapes are checked below; this only keeps the inputs' exact bytes
	c := &checker{findings: &findings{file: name}, src: src}
	c.keys("tests.json", doc, testsKeys)
	tests, _ := c.array("tests.json", doc, "tests", true)
	if len(tests) == 0 {
		c.add(0, "hub-schema", "tests.json: no tests")
	}
	for i, t := range tests {
		where := fmt.Sprintf("tests[%d]", i)
		obj, isObj := t.(map[string]any)
		if !isObj {
			c.add(0, "hub-schema", "%s must be an object", where)
			continue
		}
		c.keys(where, obj, testKeys)
		if n, ok := c.str(where, obj, "name", true); ok {
			where = "test " + strconv.Quote(n)
		}
		if ms, ok := c.integer(where, obj, "timeout", false); ok && ms < 1000 {
			c.add(c.line(`"timeout"`), "hub-schema", "%s: timeout is in milliseconds; %d is under a second", where, ms)
		}
		if _, ok := c.object(where, obj, "input", true); ok && validate != nil && i < len(raw.Tests) {
			if err := validate(raw.Tests[i].Input); err != nil {
				c.add(c.line(`"input"`), "hub-input", "%s: the input is not a valid job: %v", where, err)
			}
		}
	}
	cfg, ok := c.object("tests.json", doc, "config", false)
	if !ok {
		c.noSelfTest()
		return c.sorted(), nil
	}
	c.keys("config", cfg, testsConfigKeys)
	gpu, hasGPU := c.str("config", cfg, "gpuTypeId", false)
	_, hasCPU := c.str("config", cfg, "cpuFlavor", false)
	switch {
	case !hasGPU && !hasCPU:
		c.add(0, "hub-schema", "config: name the test machine with gpuTypeId (e.g. \"NVIDIA GeForce RTX 5090\") or cpuFlavor")
	case hasGPU:
		if gpuPoolRE.MatchString(gpu) {
			c.add(c.line(`"gpuTypeId"`), "hub-schema", "config: gpuTypeId is a GPU id such as \"NVIDIA H100 80GB HBM3\", not a pool id (%s)", gpu)
		}
		if n, ok := c.integer("config", cfg, "gpuCount", true); ok && n < 1 {
			c.add(c.line(`"gpuCount"`), "hub-schema", "config: gpuCount must be at least 1")
		}
	}
	c.cudaVersions("config", cfg)
	selfTest := false
	if env, ok := c.array("config", cfg, "env", false); ok {
		table := settingsTable()
		for i, e := range env {
			where := fmt.Sprintf("config.env[%d]", i)
			obj, isObj := e.(map[string]any)
			if !isObj {
				c.add(0, "hub-schema", "%s must be an object", where)
				continue
			}
			c.keys(where, obj, []string{"key", "value"})
			key, ok1 := c.str(where, obj, "key", true)
			val, ok2 := c.str(where, obj, "value", true)
			if !ok1 || !ok2 {
				continue
			}
			if _, known := table[key]; !known {
				c.add(c.line(`"`+key+`"`), "hub-env", "%s: %s is not a setting of the worker (internal/config)", where, key)
				continue
			}
			c.checkValue(where, key, val)
			if key == "SELF_TEST" {
				if cfg, err := loadWith(key, val); err == nil && cfg.SelfTest {
					selfTest = true
				}
			}
		}
	}
	if !selfTest {
		c.noSelfTest()
	}
	return c.sorted(), nil
}

// noSelfTest reports a tests.json whose env does not turn SELF_TEST on.
func (c *checker) noSelfTest() {
	line := c.line(`"SELF_TEST"`)
	c.add(line, "hub-env", "config.env: set SELF_TEST to 1: the Hub runs the tests without the network volume, "+
		"so every job would fail MODEL_MISSING; the self-test generates stand-in models (docs/deployment.md)")
}
