package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/event"
)

// Events: GET /api/events lists the outbox after a cursor; GET
// /api/events/stream sends the same events live as Server-Sent Events
// (event.Stream does the work; this file only reads the request).

// eventFilterInput is the filter both event endpoints take. (huma reads
// parameters from the input struct's own fields, so each input repeats
// them and converts.)
type eventFilterInput struct {
	Type     []string
	DomainID string
}

type listEventsInput struct {
	Type     []string `query:"type" doc:"Only these event types: exact names or prefixes such as certificate.* (comma-separated or repeated)."`
	DomainID string   `query:"domain_id" doc:"Only events of this domain."`
	After    string   `query:"after" doc:"The nextCursor (or SSE id) of an earlier answer: only events after it. Empty: from the oldest kept event." example:"0-42"`
	Limit    int      `query:"limit" default:"100" minimum:"1" maximum:"500"`
}

// eventEnvelope is an event as the API, the stream and webhooks send it
// (the same JSON as dcvaas.Envelope, with data typed for the schema).
type eventEnvelope struct {
	ID             string           `json:"id" doc:"Unique per event; the webhook-id of its deliveries."`
	Type           dcvaas.EventType `json:"type" example:"certificate.issued"`
	Timestamp      time.Time        `json:"timestamp"`
	OrganizationID string           `json:"organizationId"`
	Data           dcvaas.EventData `json:"data" doc:"Which fields are present depends on type: see the <Type>Event schemas."`
}

func toEventEnvelope(e *dcvaas.Event) (eventEnvelope, error) {
	out := eventEnvelope{ID: e.ID, Type: e.Type, Timestamp: e.Timestamp.UTC(), OrganizationID: e.OrgID}
	return out, json.Unmarshal(e.Data, &out.Data)
}

type eventList struct {
	Items []eventEnvelope `json:"items" doc:"Oldest first."`
	// NextCursor is the cursor to pass as after to read on.
	NextCursor string `json:"nextCursor" doc:"Pass as after to read on; the same cursor when there was nothing new."`
}

type eventListOutput struct {
	Body eventList
}

// filter checks the type patterns and builds the store filter.
func (in *eventFilterInput) filter() (dcvaas.EventFilter, error) {
	var types []string
	for _, t := range in.Type {
		for p := range strings.SplitSeq(t, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if !dcvaas.ValidEventPattern(p) {
				return dcvaas.EventFilter{}, invalid(map[string]string{"query.type": "unknown event type or prefix " + p})
			}
			types = append(types, p)
		}
	}
	return dcvaas.EventFilter{Types: types, DomainID: in.DomainID}, nil
}

func (s *server) listEvents(ctx context.Context, in *listEventsInput) (*eventListOutput, error) {
	if s.events == nil {
		return nil, dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "events are not configured")
	}
	f, err := (&eventFilterInput{in.Type, in.DomainID}).filter()
	if err != nil {
		return nil, err
	}
	if f.After, err = dcvaas.ParseCursor(in.After); err != nil {
		return nil, invalid(map[string]string{"query.after": dcvaas.ErrorMessage(err)})
	}
	f.Limit = in.Limit
	es, err := s.events.ListEvents(ctx, actorFrom(ctx).OrgID, f)
	if err != nil {
		return nil, err
	}
	out := eventList{Items: make([]eventEnvelope, 0, len(es)), NextCursor: f.After.String()}
	for _, e := range es {
		env, err := toEventEnvelope(e)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, env)
		out.NextCursor = e.Cursor.String()
	}
	return &eventListOutput{Body: out}, nil
}

type streamEventsInput struct {
	Type        []string `query:"type" doc:"Only these event types: exact names or prefixes such as certificate.* (comma-separated or repeated)."`
	DomainID    string   `query:"domain_id" doc:"Only events of this domain."`
	LastEventID string   `header:"Last-Event-ID" doc:"The id of the last event received: the stream sends the events after it first."`
}

// streamEvents answers with the SSE stream. Errors found before it starts
// (a bad filter or cursor) are ordinary problem responses.
func (s *server) streamEvents(ctx context.Context, in *streamEventsInput) (*huma.StreamResponse, error) {
	if s.events == nil || s.hub == nil {
		return nil, dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "events are not configured")
	}
	f, err := (&eventFilterInput{in.Type, in.DomainID}).filter()
	if err != nil {
		return nil, err
	}
	actor := actorFrom(ctx)
	o := event.StreamOptions{OrgID: actor.OrgID, Filter: f, Heartbeat: s.heartbeat}
	if actor.Scope != nil {
		o.Allow = func(e *dcvaas.Event) bool { return actor.Scope.Allows(e.DomainID, eventDomainName(e)) }
	}
	if in.LastEventID != "" {
		c, err := dcvaas.ParseCursor(in.LastEventID)
		if err != nil {
			return nil, invalid(map[string]string{"header.Last-Event-ID": dcvaas.ErrorMessage(err)})
		}
		o.Resume = &c
	}
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		r, w := humago.Unwrap(hctx)
		rc := http.NewResponseController(w)
		// The server's write timeout is for ordinary answers; a stream
		// lasts as long as its client stays.
		_ = rc.SetWriteDeadline(time.Time{})
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
		w.WriteHeader(http.StatusOK)
		err := event.Stream(r.Context(), w, rc.Flush, s.hub, s.events, o)
		if err != nil && r.Context().Err() == nil && !errors.Is(err, event.ErrStopped) {
			s.log.WarnContext(r.Context(), "event stream ended", "err", err)
		}
	}}, nil
}

// eventDomainName is the domain name of an event's data, "" when it has
// none (then only a scope naming its domain id allows it).
func eventDomainName(e *dcvaas.Event) string {
	var d dcvaas.EventData
	if json.Unmarshal(e.Data, &d) != nil || d.Domain == nil {
		return ""
	}
	return d.Domain.DomainName
}
