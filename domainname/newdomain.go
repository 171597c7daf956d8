package domainname

import (
	"github.com/dcvaas/dcvaas"
)

// KeyTypes are the key types a domain's certificates may have.
var KeyTypes = []string{dcvaas.KeyEC256, dcvaas.KeyEC384, dcvaas.KeyRSA2048, dcvaas.KeyRSA4096}

// NewDomain builds the domain a customer asks for: the name normalized, a
// fresh CNAME target under verifyZone, and wildcard and key type from the
// request, else the organization's defaults, else wildcard on and ec256.
// The name must be public (CheckPublic) unless under one of allowTLDs.
// The API and the dashboard both add domains through it. EINVALID names
// the field ("domainName", "keyType").
func NewDomain(rawName string, wildcard *bool, keyType, verifyZone string, allowTLDs []string, defaults dcvaas.OrgSettings) (*dcvaas.Domain, error) {
	name, err := Normalize(rawName, verifyZone)
	if err == nil {
		err = CheckPublic(name, allowTLDs)
	}
	if err != nil {
		return nil, &dcvaas.Error{Code: dcvaas.EINVALID, Message: err.Error(), Fields: map[string]string{"domainName": err.Error()}}
	}
	d := &dcvaas.Domain{
		Name:            name,
		CNAMETarget:     NewLabel() + "." + verifyZone,
		IncludeWildcard: true,
		KeyType:         dcvaas.KeyEC256,
	}
	switch {
	case wildcard != nil:
		d.IncludeWildcard = *wildcard
	case defaults.DefaultIncludeWildcard != nil:
		d.IncludeWildcard = *defaults.DefaultIncludeWildcard
	}
	switch {
	case keyType != "":
		d.KeyType = keyType
	case defaults.DefaultKeyType != "":
		d.KeyType = defaults.DefaultKeyType
	}
	for _, k := range KeyTypes {
		if d.KeyType == k {
			return d, nil
		}
	}
	msg := "must be one of ec256, ec384, rsa2048, rsa4096"
	return nil, &dcvaas.Error{Code: dcvaas.EINVALID, Message: "keyType " + msg, Fields: map[string]string{"keyType": msg}}
}
