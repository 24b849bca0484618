package job

import "encoding/json"

// Request is a job as RunPod's API accepts it: {"input": {...}} with an
// optional id and the platform's own top-level keys, which are kept raw for
// whoever needs them and never validated here.
type Request struct {
	ID       string
	Input    json.RawMessage
	Webhook  json.RawMessage
	Policy   json.RawMessage
	S3Config json.RawMessage
}

// requestKeys are the top-level keys a job may have.
func requestKeys() []string { return []string{"input", "id", "webhook", "policy", "s3Config"} }

// DecodeRequest splits a job document into its id and its input, which Parse
// validates. Unknown top-level keys are errors, like everywhere else.
func DecodeRequest(body []byte) (*Request, error) {
	c := &checker{}
	if !json.Valid(body) {
		var v any
		c.add(syntaxError(body, json.Unmarshal(body, &v)))
		return nil, asError(c.errs)
	}
	members, ok := readObject(body)
	if !ok {
		c.fail("", `send one JSON object: {"input": {"prompt": "...", "image": "..."}}`,
			"the job must be a JSON object, got %s", kind(body))
		return nil, asError(c.errs)
	}
	r := &Request{}
	seen := map[string]bool{}
	bare := false
	for _, m := range members {
		if seen[m.key] {
			c.fail(m.key, "give each key once", "%s appears more than once", m.key)
			continue
		}
		seen[m.key] = true
		switch m.key {
		case "input":
			r.Input = m.raw
		case "id":
			if isNull(m.raw) {
				continue
			}
			if id, ok := c.str("id", m.raw, `"id": "job-1"`); ok {
				r.ID = id
			}
		case "webhook":
			r.Webhook = m.raw
		case "policy":
			r.Policy = m.raw
		case "s3Config":
			r.S3Config = m.raw
		default:
			if contains(inputKeys(), m.key) || contains(optionKeys(), m.key) {
				bare = true
				continue
			}
			c.add(unknownKey("", m.key, requestKeys()))
		}
	}
	switch {
	case bare && r.Input == nil:
		c.fail("input", `wrap the job's fields: {"input": {"prompt": "...", "image": "...", "options": {...}}}`,
			"the job's fields must be inside \"input\"")
	case bare:
		c.fail("input", "move prompt, image, negative_prompt and options inside \"input\"",
			"the job has input fields both inside and outside \"input\"")
	case r.Input == nil || isNull(r.Input):
		c.fail("input", `send {"input": {"prompt": "...", "image": "..."}}`, "input is required")
	}
	if len(c.errs) > 0 {
		return nil, asError(c.errs)
	}
	return r, nil
}
