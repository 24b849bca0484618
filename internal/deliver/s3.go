package deliver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// s3Target is a resolved bucket: where to send requests and how.
type s3Target struct {
	opts     S3Options
	endpoint string // base URL without the bucket
	bucket   string
	region   string
	prefix   string
	client   *s3.Client
	presign  *s3.PresignClient
	uploader *manager.Uploader
	err      *apperr.Error // why the bucket cannot be used
}

// bucketHint is the setup hint shared by the configuration errors.
const bucketHint = "set BUCKET_ENDPOINT_URL (e.g. https://<bucket>.s3.<region>.amazonaws.com or https://host/<bucket>), " +
	"BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY; BUCKET_NAME names the bucket when the URL does not"

func newS3Target(o S3Options) *s3Target {
	t := &s3Target{opts: o, prefix: strings.Trim(o.Prefix, "/")}
	endpoint, bucket, region, err := resolveBucket(o.Endpoint, o.Bucket, o.Region)
	if err != nil {
		t.err = apperr.Wrap(apperr.UploadFailed, err, "BUCKET_ENDPOINT_URL is not usable: "+err.Error(), bucketHint)
		return t
	}
	t.endpoint, t.bucket, t.region = endpoint, bucket, region
	switch {
	case bucket == "":
		t.err = apperr.New(apperr.UploadFailed, "no bucket: BUCKET_ENDPOINT_URL does not name one and BUCKET_NAME is empty", bucketHint)
		return t
	case o.AccessKey == "" || o.SecretKey == "":
		t.err = apperr.New(apperr.UploadFailed, "S3 credentials missing: BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY must both be set", bucketHint)
		return t
	}
	if o.PartSize <= 0 {
		o.PartSize = DefaultPartSize
	}
	o.PartSize = max(o.PartSize, MinPartSize)
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.URLExpiry <= 0 || o.URLExpiry > MaxURLExpiry {
		o.URLExpiry = MaxURLExpiry
	}
	t.opts = o

	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		ExpectContinueTimeout: time.Second,
		MaxIdleConnsPerHost:   o.Concurrency + 1,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	t.client = s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: o.PathStyle,
		Credentials:  credentials.NewStaticCredentialsProvider(o.AccessKey, o.SecretKey, ""),
		HTTPClient:   &http.Client{Transport: transport},
		Retryer: retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = o.MaxAttempts
			so.MaxBackoff = o.MaxBackoff
			so.RateLimiter = ratelimit.None
		}),
		// Checksums only where S3 requires them: the SDK's default trailing
		// CRC32 is not understood by every S3-compatible server. Integrity is
		// carried by the sha256 metadata (see upload).
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	t.presign = s3.NewPresignClient(t.client)
	t.uploader = manager.NewUploader(t.client, func(u *manager.Uploader) {
		u.PartSize = o.PartSize
		u.Concurrency = o.Concurrency
		u.LeavePartsOnError = false
	})
	return t
}

// resolveBucket splits BUCKET_ENDPOINT_URL into the base endpoint and the
// bucket it names, following RunPod's convention: the bucket is the first
// path segment (https://host/bucket) or the virtual-host subdomain
// (https://bucket.s3.region.amazonaws.com, https://bucket.region.digitaloceanspaces.com).
// A non-empty name (BUCKET_NAME) overrides the bucket the URL names. The
// region comes from the URL when it names one and region is the default
// us-east-1 or empty.
func resolveBucket(rawURL, name, region string) (endpoint, bucket, outRegion string, err error) {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		return "", "", "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "", "", fmt.Errorf("scheme %q, want http or https", u.Scheme)
	}
	if u.Host == "" {
		return "", "", "", errors.New("no host")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", "", errors.New("credentials, query or fragment in the URL")
	}
	host := u.Hostname()
	port := u.Port()
	labels := strings.Split(host, ".")
	urlRegion := ""

	// Virtual-hosted style: <bucket>.s3[.-]<region>... or <bucket>.<region>.digitaloceanspaces.com.
	vhBucket := ""
	if net.ParseIP(host) == nil && len(labels) >= 3 {
		second := labels[1]
		switch {
		case second == "s3" || strings.HasPrefix(second, "s3-"):
			vhBucket = labels[0]
		case len(labels) == 4 && labels[2] == "digitaloceanspaces" && labels[3] == "com":
			vhBucket = labels[0]
		}
	}
	// Region in the host: s3.<region>.amazonaws.com, s3-<region>.amazonaws.com, <region>.digitaloceanspaces.com.
	for i, l := range labels {
		if l == "s3" && i+2 < len(labels) && labels[i+1] != "amazonaws" && labels[i+1] != "dualstack" {
			urlRegion = labels[i+1]
			break
		}
		if strings.HasPrefix(l, "s3-") && l != "s3-accelerate" {
			urlRegion = strings.TrimPrefix(l, "s3-")
			break
		}
		if l == "digitaloceanspaces" && i > 0 {
			urlRegion = labels[i-1]
			break
		}
	}
	if urlRegion != "" && (region == "" || region == "us-east-1") {
		region = urlRegion
	}
	if region == "" {
		region = "us-east-1"
	}

	segs := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
	pathBucket := ""
	if len(segs) > 0 {
		pathBucket = segs[0]
	}

	switch {
	case name != "":
		bucket = name
		switch {
		case pathBucket == name && len(segs) == 1:
			u.Path = ""
		case vhBucket == name:
			host = strings.Join(labels[1:], ".")
		}
	case pathBucket != "":
		if len(segs) > 1 {
			return "", "", "", fmt.Errorf("path %q has more than one segment; put the bucket alone in the path or set BUCKET_NAME", u.Path)
		}
		bucket = pathBucket
		u.Path = ""
	case vhBucket != "":
		bucket = vhBucket
		host = strings.Join(labels[1:], ".")
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	}
	base := url.URL{Scheme: u.Scheme, Host: host, Path: strings.TrimRight(u.Path, "/")}
	return base.String(), bucket, region, nil
}

// objectKey is <prefix>/<job id>/<file>.
func (t *s3Target) objectKey(jobID, filename string) string {
	return path.Join(t.prefix, safeJobID(jobID), filename)
}

// upload puts the spooled video (and the last frame) in the bucket and sets
// the URLs. Re-delivering the same job overwrites the same keys.
//
// Checksum: the SHA-256 of the whole video, computed while spooling, is
// stored as object metadata (x-amz-meta-sha256) and returned in the result.
// S3's own ChecksumAlgorithm=SHA256 is not used: for multipart uploads it
// yields a checksum of part checksums, not the file's digest, and S3-compatible
// servers differ in support for it; metadata works everywhere.
func (d *Deliverer) upload(ctx context.Context, jobID, filename string, sp *spooled, frame []byte, out *Delivered) error {
	t := d.s3
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()

	if frame != nil {
		key := t.objectKey(jobID, lastFrameName(filename))
		if err := t.put(ctx, key, bytes.NewReader(frame), "image/png", ""); err != nil {
			return uploadError(parent, ctx, err, t)
		}
		u, err := t.url(ctx, key)
		if err != nil {
			return uploadError(parent, ctx, err, t)
		}
		out.LastFrameURL = u
	}
	if _, err := sp.file.Seek(0, io.SeekStart); err != nil {
		return apperr.Wrap(apperr.Internal, err, "rereading the video failed: "+err.Error(), "check the temp folder (TMPDIR)")
	}
	key := t.objectKey(jobID, filename)
	mime := out.Info.MimeType
	if mime == "" {
		mime = "video/mp4"
	}
	if err := t.put(ctx, key, sp.file, mime, sp.sha256); err != nil {
		return uploadError(parent, ctx, err, t)
	}
	u, err := t.url(ctx, key)
	if err != nil {
		return uploadError(parent, ctx, err, t)
	}
	out.Key, out.URL = key, u
	return nil
}

// put uploads body (an *os.File or *bytes.Reader: seekable, so the uploader
// reads parts in place instead of buffering them).
func (t *s3Target) put(ctx context.Context, key string, body io.Reader, contentType, sha string) error {
	in := &s3.PutObjectInput{
		Bucket:      aws.String(t.bucket),
		Key:         aws.String(key),
		Body:        body,
		ContentType: aws.String(contentType),
	}
	if sha != "" {
		in.Metadata = map[string]string{"sha256": sha}
	}
	_, err := t.uploader.Upload(ctx, in)
	return err
}

// url is the public URL of key when BUCKET_PUBLIC_URL is set, else a
// presigned GET URL valid for URLExpiry.
func (t *s3Target) url(ctx context.Context, key string) (string, error) {
	if t.opts.PublicURL != "" {
		segs := strings.Split(key, "/")
		for i, s := range segs {
			segs[i] = url.PathEscape(s)
		}
		return strings.TrimRight(t.opts.PublicURL, "/") + "/" + strings.Join(segs, "/"), nil
	}
	req, err := t.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(t.bucket), Key: aws.String(key)},
		s3.WithPresignExpires(t.opts.URLExpiry))
	if err != nil {
		return "", err
	}
	return req.URL, nil
}

// Check asks the bucket whether it exists and the credentials may use it
// (HeadBucket), for `doctor`. It returns nil when no bucket is configured.
func (d *Deliverer) Check(ctx context.Context) error {
	if d.s3 == nil {
		return nil
	}
	if d.s3.err != nil {
		return d.s3.err
	}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := d.s3.client.HeadBucket(hctx, &s3.HeadBucketInput{Bucket: aws.String(d.s3.bucket)}); err != nil {
		return uploadError(ctx, hctx, err, d.s3)
	}
	return nil
}

// uploadError maps an SDK error to UPLOAD_FAILED with a hint that fits the
// cause, or to CANCELLED/TIMEOUT when the job's context (parent) ended; ctx is
// the upload's own, time-bounded context.
func uploadError(parent, ctx context.Context, err error, t *s3Target) *apperr.Error {
	if e := ctxError(parent); e != nil {
		return e
	}
	where := fmt.Sprintf("bucket %q at %s", t.bucket, t.endpoint)
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) || status != 0 {
		code, text := "", err.Error()
		if ae != nil {
			code, text = ae.ErrorCode(), ae.ErrorMessage()
		}
		hint := "check the bucket settings (BUCKET_ENDPOINT_URL, BUCKET_NAME, BUCKET_REGION, BUCKET_PATH_STYLE)"
		switch {
		case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || code == "IllegalLocationConstraintException" || status == http.StatusMovedPermanently:
			hint = "set BUCKET_REGION to the bucket's region"
		case status == http.StatusForbidden || status == http.StatusUnauthorized || strings.Contains(code, "AccessKey") ||
			strings.Contains(code, "Signature") || code == "AccessDenied" || strings.Contains(code, "Token") || strings.Contains(code, "UserNotFound"):
			hint = "check BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY, that the key may write to the bucket, and BUCKET_REGION (used for signing)"
		case code == "NoSuchBucket" || status == http.StatusNotFound:
			hint = "create the bucket or fix BUCKET_NAME / the bucket in BUCKET_ENDPOINT_URL; some servers also need BUCKET_PATH_STYLE=true"
		}
		if code != "" {
			text = code + ": " + text
		}
		return apperr.Wrap(apperr.UploadFailed, err, fmt.Sprintf("upload to %s failed: %s", where, text), hint)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return apperr.Wrap(apperr.UploadFailed, err, fmt.Sprintf("upload to %s did not finish in time: %v", where, err),
			"check that the S3 endpoint is reachable from the worker and fast enough; large videos need a faster link")
	}
	return apperr.Wrap(apperr.UploadFailed, err, fmt.Sprintf("upload to %s failed: %v", where, err),
		"check that BUCKET_ENDPOINT_URL is right and the server is reachable from the worker")
}
