package providertest

import (
	"encoding/xml"
	"fmt"
	"net/http"
)

const stsNS = "https://sts.amazonaws.com/doc/2011-06-15/"

// serveSTS answers AssumeRole (query protocol: a form POST, an XML answer)
// with temporary credentials that the fake Route 53 then accepts.
func (f *Route53) serveSTS(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	akid, code := checkSigV4(r, f.keys, "sts")
	if code != "" {
		awsError(w, stsNS, http.StatusForbidden, code, "The security token included in the request is invalid.")
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("Action") != "AssumeRole" {
		awsError(w, stsNS, http.StatusBadRequest, "InvalidAction", "Could not find operation "+r.PostForm.Get("Action"))
		return
	}
	role := r.PostForm.Get("RoleArn")
	want, ok := f.roles[role]
	if !ok || want != r.PostForm.Get("ExternalId") {
		awsError(w, stsNS, http.StatusForbidden, "AccessDenied",
			fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", f.keys[akid].identity, role))
		return
	}
	f.n++
	f.assumed++
	id, secret, token := fmt.Sprintf("ASIAFAKE%08d", f.n), fmt.Sprintf("tmpsecret%d", f.n), fmt.Sprintf("session-token-%d", f.n)
	session := r.PostForm.Get("RoleSessionName")
	f.keys[id] = awsKey{secret: secret, sessionToken: token, identity: role + "/" + session}
	out := struct {
		XMLName      xml.Name `xml:"AssumeRoleResponse"`
		Xmlns        string   `xml:"xmlns,attr"`
		AccessKeyID  string   `xml:"AssumeRoleResult>Credentials>AccessKeyId"`
		Secret       string   `xml:"AssumeRoleResult>Credentials>SecretAccessKey"`
		SessionToken string   `xml:"AssumeRoleResult>Credentials>SessionToken"`
		Expiration   string   `xml:"AssumeRoleResult>Credentials>Expiration"`
		UserArn      string   `xml:"AssumeRoleResult>AssumedRoleUser>Arn"`
		UserID       string   `xml:"AssumeRoleResult>AssumedRoleUser>AssumedRoleId"`
		RequestID    string   `xml:"ResponseMetadata>RequestId"`
	}{Xmlns: stsNS, AccessKeyID: id, Secret: secret, SessionToken: token,
		Expiration: "2099-01-01T00:00:00Z", UserArn: role + "/" + session, UserID: "AROAFAKE:" + session, RequestID: "fake-request-id"}
	writeXML(w, http.StatusOK, out)
}
