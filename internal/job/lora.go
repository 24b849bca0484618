package job

import (
	"encoding/hex"
	"net/url"
	"strings"
)

// LoRACacheFolder is the subfolder of a loras folder that holds the LoRAs
// downloaded from URLs, each named by its content: <sha256>.safetensors.
const LoRACacheFolder = "url-cache"

// LoRACacheName returns the name, relative to the loras folder, of the cached
// download whose SHA-256 is sum (lower-case hex).
func LoRACacheName(sum string) string { return LoRACacheFolder + "/" + sum + ".safetensors" }

// File returns the LoRA's file name relative to the loras folder, as the
// graph's LoraLoaderModelOnly takes it: Name, or for a URL LoRA the cached
// download (empty until its checksum is known).
func (l LoRA) File() string {
	if l.URL == "" {
		return l.Name
	}
	if l.SHA256 == "" {
		return ""
	}
	return LoRACacheName(l.SHA256)
}

// checkLoRAURL checks a LoRA URL: absolute http(s), a host, no credentials,
// at most 2048 bytes. It returns what is wrong and a hint, or "".
func checkLoRAURL(raw string) (msg, hint string) {
	const example = "e.g. https://huggingface.co/<user>/<repo>/resolve/main/my_lora.safetensors"
	if len(raw) > 2048 {
		return "is longer than 2048 bytes", "use a shorter URL, " + example
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "is not a valid URL", "give a full http(s) URL, " + example
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an http or https URL", "give a full http(s) URL, " + example
	case u.Host == "" || u.Hostname() == "":
		return "has no host", "give a full http(s) URL, " + example
	case u.User != nil:
		return "must not contain a user name or password", "remove them; tokens for huggingface.co and civitai.com come from the server's HF_TOKEN and CIVITAI_TOKEN"
	}
	return "", ""
}

// checkSHA256 checks a hex SHA-256 and returns it in lower case, or what is
// wrong.
func checkSHA256(s string) (sum, msg string) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) != 64 {
		return "", "must be 64 hexadecimal digits"
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", "must be 64 hexadecimal digits"
	}
	return s, ""
}
