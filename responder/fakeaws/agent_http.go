package fakeaws

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/responder-ir/responder/responder/cloud"
)

// The fake agent's HTTP: the requests the documents' scripts make with curl
// (Linux) or .NET (Windows) through presigned URLs, served by the fake S3 of
// the account that has the bucket. The S3 semantics are the fake's own
// (GetObject, PutObject, uploadPart: Object Lock, Content-MD5, faults,
// Deny); this file adds what a presigned request adds:
//
//   - path-style (https://host/bucket/key) and virtual-hosted
//     (https://bucket.s3.<region>.amazonaws.com/key) URLs; partNumber and
//     uploadId make a PUT an UploadPart;
//   - the signature's scope: X-Amz-Credential must name the bucket's Region
//     (AuthorizationQueryParametersError), X-Amz-Expires is at most 7 days,
//     and a URL used after X-Amz-Date + X-Amz-Expires, by the serving
//     account's Clock, answers AccessDenied "Request has expired" (the SDK
//     signs with the real time, whatever the fake's Clock says);
//   - a URL signed for another operation (x-id) or with signed headers the
//     script does not send (anything but host, content-type, content-md5)
//     answers SignatureDoesNotMatch. The signature itself is not checked.
//
// When the instance cannot reach S3 (CanReach) every request times out:
// HTTP status 000, curl exit 28.

// sentHeaders are the headers the scripts send with a PUT (curl -T with
// Content-Type and Content-MD5); a GET sends only host.
var sentHeaders = map[string][]string{
	http.MethodGet: {"host"},
	http.MethodPut: {"host", "content-type", "content-md5", "content-length"},
}

// virtualHost matches virtual-hosted S3 hosts: bucket.s3.amazonaws.com,
// bucket.s3.<region>.amazonaws.com, bucket.s3-<region>.amazonaws.com.
var virtualHost = regexp.MustCompile(`^(.+)\.s3([.-][a-z0-9-]+)?\.amazonaws\.com$`)

// httpResult is the outcome of one request as the scripts record it.
type httpResult struct {
	status   int    // HTTP status; 0 when no response ("000")
	curlExit int    // curl's exit status (0 when a response came)
	etag     string // the ETag response header, quoted
	body     []byte
	err      string // the AWS error code, for messages
}

func (r httpResult) ok() bool { return r.status == http.StatusOK }

// httpStatusCode returns the status S3 answers an error code with.
func httpStatusCode(code string) int {
	if s, ok := httpStatus[code]; ok {
		return s
	}
	switch code {
	case "SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId", "RequestTimeTooSkewed":
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

func failed(code string) httpResult {
	return httpResult{status: httpStatusCode(code), err: code}
}

// request makes one request. body and contentType are for PUT.
func (j *agentJob) request(method, rawURL string, body []byte, contentType string) httpResult {
	if !j.s3Reachable {
		return httpResult{curlExit: 28} // connection timed out: the security groups drop it
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return httpResult{curlExit: 3} // URL malformed
	}
	if u.Scheme != "https" {
		return httpResult{curlExit: 1} // --proto =https: unsupported protocol
	}
	bucket, key := splitS3URL(u)
	if bucket == "" || key == "" {
		return failed("InvalidRequest")
	}
	q := u.Query()
	op := "GetObject"
	if method == http.MethodPut {
		op = "PutObject"
		if q.Has("partNumber") || q.Has("uploadId") {
			op = "UploadPart"
		}
	}
	srv := j.serverFor(bucket)
	if srv == nil {
		return failed("NoSuchBucket")
	}
	if code := checkPresigned(srv.c, q, op, method); code != "" {
		return failed(code)
	}
	ctx := context.Background() // the instance's request: not in the caller's call log
	md5sum := md5.Sum(body)
	contentMD5 := base64.StdEncoding.EncodeToString(md5sum[:])
	switch op {
	case "GetObject":
		out, err := srv.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return failed(cloud.ErrorCode(err))
		}
		b, _ := io.ReadAll(out.Body)
		return httpResult{status: http.StatusOK, body: b, etag: aws.ToString(out.ETag)}
	case "PutObject":
		out, err := srv.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
			ContentLength: aws.Int64(int64(len(body))), ContentMD5: aws.String(contentMD5), ContentType: aws.String(contentType),
		})
		if err != nil {
			return failed(cloud.ErrorCode(err))
		}
		return httpResult{status: http.StatusOK, etag: aws.ToString(out.ETag)}
	default: // UploadPart
		n, err := strconv.Atoi(q.Get("partNumber"))
		if err != nil {
			return failed("InvalidArgument")
		}
		etag, err := srv.uploadPart(bucket, key, q.Get("uploadId"), int32(n), body, contentMD5)
		if err != nil {
			return failed(cloud.ErrorCode(err))
		}
		return httpResult{status: http.StatusOK, etag: etag}
	}
}

// splitS3URL returns the bucket and key a URL addresses.
func splitS3URL(u *url.URL) (bucket, key string) {
	path := strings.TrimPrefix(u.Path, "/")
	if m := virtualHost.FindStringSubmatch(u.Hostname()); m != nil {
		return m[1], path
	}
	bucket, key, _ = strings.Cut(path, "/")
	return bucket, key
}

// serverFor returns the S3 that has the bucket: the instance's account's,
// else one registered with AgentS3.
func (j *agentJob) serverFor(bucket string) *S3 {
	for _, s := range j.s3s {
		s.c.mu.Lock()
		_, ok := s.c.st.Buckets[bucket]
		s.c.mu.Unlock()
		if ok {
			return s
		}
	}
	return nil
}

// checkPresigned checks a presigned request's query against the serving
// account and returns the error code S3 answers, or "".
func checkPresigned(c *Cloud, q url.Values, op, method string) string {
	auth := []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"}
	present := 0
	for _, k := range auth {
		if q.Get(k) != "" {
			present++
		}
	}
	switch {
	case present == 0:
		return "AccessDenied" // an anonymous request
	case present < len(auth) || q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
		return "AuthorizationQueryParametersError"
	}
	// <access key>/<yyyymmdd>/<region>/s3/aws4_request
	scope := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(scope) != 5 || scope[3] != "s3" || scope[4] != "aws4_request" {
		return "AuthorizationQueryParametersError"
	}
	c.mu.Lock()
	region := c.Region
	c.mu.Unlock()
	if scope[2] != region {
		return "AuthorizationQueryParametersError" // the region is wrong; expecting the bucket's
	}
	expires, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || expires < 1 || expires > 604800 {
		return "AuthorizationQueryParametersError" // X-Amz-Expires must be less than a week
	}
	signed, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return "AuthorizationQueryParametersError"
	}
	if c.now().After(signed.Add(time.Duration(expires) * time.Second)) {
		return "AccessDenied" // Request has expired
	}
	if id := q.Get("x-id"); id != "" && id != op {
		return "SignatureDoesNotMatch" // signed for another method or operation
	}
	for _, h := range strings.Split(q.Get("X-Amz-SignedHeaders"), ";") {
		if !slices.Contains(sentHeaders[method], strings.ToLower(h)) {
			return "SignatureDoesNotMatch" // the script does not send that header
		}
	}
	return ""
}

// get downloads a URL (rc_get: one request, curl's own retries aside).
func (j *agentJob) get(rawURL string) httpResult {
	return j.request(http.MethodGet, rawURL, nil, "")
}

// putResult is the outcome of rc_put: the attempts of a PUT with
// Content-MD5.
type putResult struct {
	httpResult
	attempts   int
	contentMD5 string
}

// put uploads body as rc_put does: up to 5 attempts, stopping at once on
// 403, 404, 405, 411 and 413, which a retry cannot fix.
func (j *agentJob) put(rawURL string, body []byte, contentType string) putResult {
	sum := md5.Sum(body)
	r := putResult{contentMD5: base64.StdEncoding.EncodeToString(sum[:])}
	for r.attempts < putAttempts {
		r.attempts++
		r.httpResult = j.request(http.MethodPut, rawURL, body, contentType)
		if r.ok() && r.etag != "" {
			break
		}
		if slices.Contains([]int{403, 404, 405, 411, 413}, r.status) {
			break
		}
	}
	return r
}

// putAttempts is RC_PUT_ATTEMPTS.
const putAttempts = 5
