//! Keystone's default policy, reduced to what Stratus serves: `admin` may do
//! everything; anyone else may read their own user and project list, their
//! own project and domain, validate or revoke their own token, and read
//! regions. A service user (role `service`) may validate any token, as
//! keystonemiddleware needs. Everything else is 403.
//!
//! `admin` counts on a project and on the system alike: a system-scoped token
//! with the admin role (`--os-system-scope all`) is the cloud administrator,
//! as Keystone's `rule:admin_required` lets it be; `reader` on the system is
//! no administrator.

use stratus_common::RequestContext;

use crate::error::{IdentityError, Result};

/// What the caller wants to do, with the target ids a rule compares against.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    GetUser(&'a str),
    ListUserProjects(&'a str),
    GetProject(&'a str),
    GetDomain(&'a str),
    ValidateToken {
        subject_user: &'a str,
    },
    RevokeToken {
        subject_user: &'a str,
    },
    ListRegions,
    GetRegion,
    /// List, show or delete a user's application credentials.
    OwnApplicationCredentials(&'a str),
    /// Any other API: `identity:<name>`, admin only.
    AdminOnly(&'static str),
}

impl Action<'_> {
    /// The Keystone policy name shown in a 403.
    pub fn name(&self) -> &'static str {
        match self {
            Self::GetUser(_) => "identity:get_user",
            Self::ListUserProjects(_) => "identity:list_user_projects",
            Self::GetProject(_) => "identity:get_project",
            Self::GetDomain(_) => "identity:get_domain",
            Self::ValidateToken { .. } => "identity:validate_token",
            Self::RevokeToken { .. } => "identity:revoke_token",
            Self::ListRegions => "identity:list_regions",
            Self::GetRegion => "identity:get_region",
            Self::OwnApplicationCredentials(_) => "identity:list_application_credentials",
            Self::AdminOnly(n) => n,
        }
    }
}

fn is_user(ctx: &RequestContext, id: &str) -> bool {
    ctx.user_id.as_ref().is_some_and(|u| u.as_str() == id)
}

/// Whether the caller may do `action` (pure, so it is unit-tested alone).
pub fn allowed(ctx: &RequestContext, action: Action<'_>) -> bool {
    if ctx.is_admin() {
        return true;
    }
    match action {
        Action::GetUser(id)
        | Action::ListUserProjects(id)
        | Action::OwnApplicationCredentials(id) => is_user(ctx, id),
        Action::GetProject(id) => ctx.project_id.as_ref().is_some_and(|p| p.as_str() == id),
        Action::GetDomain(id) => {
            ctx.domain_id.as_ref().is_some_and(|d| d.as_str() == id)
                || ctx
                    .project_domain_id
                    .as_ref()
                    .is_some_and(|d| d.as_str() == id)
        }
        Action::ValidateToken { subject_user } => {
            is_user(ctx, subject_user) || ctx.has_role("service")
        }
        Action::RevokeToken { subject_user } => is_user(ctx, subject_user),
        Action::ListRegions | Action::GetRegion => true,
        Action::AdminOnly(_) => false,
    }
}

/// [`allowed`] as a 403 with Keystone's message.
pub fn enforce(ctx: &RequestContext, action: Action<'_>) -> Result<()> {
    if allowed(ctx, action) {
        Ok(())
    } else {
        Err(IdentityError::forbidden(action.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_common::ids::{DomainId, ProjectId, UserId};

    fn ctx(user: &str, project: &str, roles: &[&str]) -> RequestContext {
        RequestContext {
            user_id: Some(UserId::from(user)),
            project_id: Some(ProjectId::from(project)),
            project_domain_id: Some(DomainId::default_domain()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..RequestContext::internal()
        }
    }

    #[test]
    fn admin_may_do_everything() {
        let a = ctx("u", "p", &["admin", "member", "reader"]);
        assert!(allowed(&a, Action::AdminOnly("identity:create_user")));
        assert!(allowed(&a, Action::GetUser("other")));
        assert!(allowed(&a, Action::GetProject("other")));
    }

    #[test]
    fn members_see_only_their_own() {
        let m = ctx("u", "p", &["member", "reader"]);
        assert!(allowed(&m, Action::GetUser("u")));
        assert!(!allowed(&m, Action::GetUser("v")));
        assert!(allowed(&m, Action::ListUserProjects("u")));
        assert!(!allowed(&m, Action::ListUserProjects("v")));
        assert!(allowed(&m, Action::GetProject("p")));
        assert!(!allowed(&m, Action::GetProject("q")));
        assert!(allowed(&m, Action::GetDomain("default")));
        assert!(!allowed(&m, Action::GetDomain("other")));
        assert!(allowed(&m, Action::ValidateToken { subject_user: "u" }));
        assert!(!allowed(&m, Action::ValidateToken { subject_user: "v" }));
        assert!(!allowed(&m, Action::AdminOnly("identity:list_users")));
        assert!(allowed(&m, Action::ListRegions));
        let e = enforce(&m, Action::AdminOnly("identity:list_users")).expect_err("403");
        assert_eq!(e.status(), axum::http::StatusCode::FORBIDDEN);
        assert!(e.to_string().contains("identity:list_users"));
    }

    #[test]
    fn a_system_admin_administers_and_a_system_reader_does_not() {
        let system = |roles: &[&str]| RequestContext {
            project_id: None,
            project_domain_id: None,
            system_scope: Some("all".into()),
            ..ctx("u", "", roles)
        };
        let admin = system(&["admin", "member", "reader"]);
        assert!(allowed(
            &admin,
            Action::AdminOnly("identity:create_system_grant_for_user")
        ));
        assert!(allowed(&admin, Action::GetProject("any")));
        let reader = system(&["reader"]);
        assert!(!allowed(&reader, Action::AdminOnly("identity:list_users")));
        assert!(!allowed(&reader, Action::GetProject("any")));
        assert!(allowed(&reader, Action::GetUser("u")));
    }

    #[test]
    fn service_role_validates_any_token() {
        let s = ctx("svc", "service", &["service"]);
        assert!(allowed(
            &s,
            Action::ValidateToken {
                subject_user: "anyone"
            }
        ));
        assert!(!allowed(
            &s,
            Action::RevokeToken {
                subject_user: "anyone"
            }
        ));
    }
}
