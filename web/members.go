package web

import (
	"net/http"

	"github.com/dcvaas/dcvaas"
)

type membersData struct {
	Items      []*dcvaas.Member
	Total      int
	Roles      []string
	Form       string
	FormRole   string
	Self       string
	Admin      bool
	Prev, Next string
}

// canAdminister: the sign-in may change the organization's members (the
// store checks it again): an owner's or admin's, not read-only.
func canAdminister(c *call) bool {
	return c.actor.CanChange() && c.actor.MemberRole.CanAdminister()
}

func (s *server) members(w http.ResponseWriter, r *http.Request, c *call) {
	s.renderMembers(w, r, c, http.StatusOK, &membersData{}, nil)
}

func (s *server) renderMembers(w http.ResponseWriter, r *http.Request, c *call, status int, d *membersData, formErr error) {
	off := offsetOf(r)
	items, total, err := s.Store.ListMembers(r.Context(), c.actor, c.actor.OrgID, dcvaas.Page{Limit: pageSize, Offset: off})
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	d.Items, d.Total, d.Roles, d.Self, d.Admin = items, total, strs(dcvaas.MemberRoles), c.actor.UserID, canAdminister(c)
	d.Prev, d.Next = pager("/members", r.URL.Query(), off, total)
	v := s.newView(r, c, "Members", "members")
	v.Data = d
	if formErr != nil {
		v.Error, v.Fields = dcvaas.ErrorMessage(formErr), fieldErrors(formErr)
	}
	s.render(w, status, "members.html", v)
}

// addMember adds a member by e-mail, or changes a member's role, with the
// API's rules (the store's AddMember).
func (s *server) addMember(w http.ResponseWriter, r *http.Request, c *call) {
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return
	}
	email, role := r.PostFormValue("email"), r.PostFormValue("role")
	m, err := s.Store.AddMember(r.Context(), c.actor, c.actor.OrgID, email, dcvaas.MemberRole(role))
	if err != nil {
		code := dcvaas.ErrorCode(err)
		if code != dcvaas.EINVALID && code != dcvaas.ECONFLICT && code != dcvaas.EFORBIDDEN {
			s.fail(w, r, c, err)
			return
		}
		s.renderMembers(w, r, c, statusOf(code), &membersData{Form: email, FormRole: role}, err)
		return
	}
	back(w, r, "/members", m.Email+" is now "+string(m.Role)+".")
}

func (s *server) removeMember(w http.ResponseWriter, r *http.Request, c *call) {
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return
	}
	if err := s.Store.RemoveMember(r.Context(), c.actor, c.actor.OrgID, r.PathValue("id")); err != nil {
		if dcvaas.ErrorCode(err) == dcvaas.ECONFLICT {
			back(w, r, "/members", dcvaas.ErrorMessage(err))
			return
		}
		s.fail(w, r, c, err)
		return
	}
	back(w, r, "/members", "Member removed.")
}
