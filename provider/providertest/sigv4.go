package providertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// awsKey is a credential the AWS fakes accept.
type awsKey struct {
	secret, sessionToken string
	// identity is the ARN it acts as, for STS's error messages.
	identity string
}

// checkSigV4 verifies r's Signature Version 4 the way AWS does: it signs
// the same request again with the secret of the access key the request
// names and compares. It returns the access key id, or an AWS error code.
// The body is read and put back.
func checkSigV4(r *http.Request, keys map[string]awsKey, service string) (string, string) {
	auth := r.Header.Get("Authorization")
	const alg = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, alg) {
		return "", "MissingAuthenticationToken"
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, alg), ", ") {
		k, v, _ := strings.Cut(part, "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/") // AKID/date/region/service/aws4_request
	if len(scope) != 5 || scope[3] != service {
		return "", "IncompleteSignature"
	}
	key, ok := keys[scope[0]]
	if !ok || key.sessionToken != r.Header.Get("X-Amz-Security-Token") {
		return "", "InvalidClientTokenId"
	}
	signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "", "IncompleteSignature"
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	sum := sha256.Sum256(body)

	again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	again.ContentLength = r.ContentLength
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		if h != "host" && h != "content-length" {
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	creds := aws.Credentials{AccessKeyID: scope[0], SecretAccessKey: key.secret, SessionToken: key.sessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), service, scope[2], signedAt); err != nil {
		return "", "IncompleteSignature"
	}
	if again.Header.Get("Authorization") != auth {
		return "", "SignatureDoesNotMatch"
	}
	return scope[0], ""
}
