package httpapi

import (
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dcvaas/dcvaas"
)

// eventDataFields names, per event type, the data fields it always
// carries: the OpenAPI document gets one schema per type from it
// (DomainCreatedEvent, CertificateRenewedEvent, …). Keep it in step with
// the README's event list.
var eventDataFields = map[dcvaas.EventType][]string{
	dcvaas.EventDomainCreated:            {"domain"},
	dcvaas.EventDomainDeleted:            {"domain"},
	dcvaas.EventDomainVerified:           {"domain"},
	dcvaas.EventDomainDelegationLost:     {"domain", "found"},
	dcvaas.EventDomainDelegationRestored: {"domain"},
	dcvaas.EventCertificateIssued:        certificateFields,
	dcvaas.EventCertificateRenewed:       append(certificateFields[:len(certificateFields):len(certificateFields)], "previousCertificateId", "previousSerialNumber"),
	dcvaas.EventCertificateFailed:        {"domain", "reason", "jobId", "jobType"},
	dcvaas.EventCertificateExpiring:      append(certificateFields[:len(certificateFields):len(certificateFields)], "daysLeft"),
	dcvaas.EventWebhookTest:              {"webhookId", "url"},
	dcvaas.EventWebhookDisabled:          {"webhookId", "url", "reason"},
}

var certificateFields = []string{"domain", "certificateId", "serialNumber", "notBefore", "notAfter", "caName", "sans"}

// addEventSchemas registers the Event schema and one schema per type.
func addEventSchemas(api huma.API) {
	reg := api.OpenAPI().Components.Schemas
	reg.Schema(reflect.TypeFor[eventEnvelope](), true, "Event")
	for _, t := range dcvaas.EventTypes {
		name := schemaName(t)
		reg.Map()[name] = &huma.Schema{
			Description: "The " + string(t) + " event.",
			AllOf: []*huma.Schema{
				{Ref: "#/components/schemas/Event"},
				{
					Type:     huma.TypeObject,
					Required: []string{"type", "data"},
					Properties: map[string]*huma.Schema{
						"type": {Type: huma.TypeString, Enum: []any{string(t)}},
						"data": {Type: huma.TypeObject, Required: eventDataFields[t]},
					},
				},
			},
		}
	}
}

// schemaName turns certificate.delegation_lost into CertificateDelegationLostEvent.
func schemaName(t dcvaas.EventType) string {
	out := []byte{}
	up := true
	for _, c := range []byte(t) {
		switch {
		case c == '.' || c == '_':
			up = true
		case up:
			out = append(out, c&^0x20)
			up = false
		default:
			out = append(out, c)
		}
	}
	return string(out) + "Event"
}
