//! The one rule that says whose resources a caller's request may read or
//! touch, for every API (compute, image, network, and volume later):
//!
//! - a token without a project (unscoped or domain-scoped) gets no project
//!   resource at all: 403, never "no filter";
//! - a project-scoped caller sees its own project;
//! - an admin sees every project only when it asks for all of them (Nova's
//!   `all_tenants`, Nova's server groups' `all_projects`); services whose
//!   admins always see everything (Neutron, Glance) ask with
//!   `ctx.is_admin()`;
//! - asking for all projects without the admin role is a 403 (Nova's
//!   `...:get_all_tenants` rule);
//! - a system-scoped token (`"system": {"all": true}`) with the admin role
//!   is the cloud administrator: every project when it asks for all of them
//!   (as with `enforce_scope = False`, the Zed default, where `role:admin`
//!   passes whatever the scope). It has no project of its own, so a request
//!   that does not ask for every project is refused like a project-less
//!   token; Nova's server list is the exception (it lists the user's own
//!   servers) and compute handles it before asking here.
//!
//! Each service turns a [`ScopeDenied`] into its own 403 body (Nova's
//! `forbidden`, Neutron's `NeutronError`, Glance's), and a resource outside
//! the scope into its 404.

use stratus_common::ids::ProjectId;
use stratus_common::RequestContext;

/// Which projects' rows a list or show may return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProjectScope {
    /// Every project (an admin who asked for all).
    All,
    /// The caller's project only.
    Project(ProjectId),
}

impl ProjectScope {
    /// The project filter of a list query: `None` for every project.
    pub fn filter(&self) -> Option<&ProjectId> {
        match self {
            Self::All => None,
            Self::Project(p) => Some(p),
        }
    }

    /// Whether a resource of project `owner` is inside the scope.
    pub fn permits(&self, owner: &str) -> bool {
        match self {
            Self::All => true,
            Self::Project(p) => p.as_str() == owner,
        }
    }
}

/// Why a caller gets no scope (each service's 403).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeDenied {
    /// Unscoped or domain-scoped token on a project resource.
    #[error("a project-scoped token is required")]
    NoProject,
    /// A project-scoped token without `reader` (or stronger, or `service`).
    #[error("the caller has no role that may read this project")]
    NoRole,
    /// All projects asked for without the admin role.
    #[error("only an admin may list the resources of every project")]
    NotAdmin,
}

/// The scope of a request of `ctx`; `all_projects` is whether it asks for
/// every project's resources.
pub fn project_scope(
    ctx: &RequestContext,
    all_projects: bool,
) -> Result<ProjectScope, ScopeDenied> {
    let Some(project) = ctx.project_id.as_ref().filter(|p| !p.as_str().is_empty()) else {
        if ctx.is_system_scoped() && ctx.is_admin() && all_projects {
            return Ok(ProjectScope::All);
        }
        return Err(ScopeDenied::NoProject);
    };
    if !(ctx.can_read() || ctx.has_role("service")) {
        return Err(ScopeDenied::NoRole);
    }
    if all_projects {
        return if ctx.is_admin() {
            Ok(ProjectScope::All)
        } else {
            Err(ScopeDenied::NotAdmin)
        };
    }
    Ok(ProjectScope::Project(project.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(project: Option<&str>, roles: &[&str]) -> RequestContext {
        RequestContext {
            project_id: project.map(ProjectId::from),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..RequestContext::internal()
        }
    }

    #[test]
    fn no_project_is_never_everything() {
        for roles in [&[][..], &["reader"], &["member"], &["admin"]] {
            for all in [false, true] {
                assert_eq!(
                    project_scope(&ctx(None, roles), all),
                    Err(ScopeDenied::NoProject),
                    "{roles:?} all={all}"
                );
            }
        }
        assert_eq!(
            project_scope(&ctx(Some(""), &["admin"]), false),
            Err(ScopeDenied::NoProject)
        );
    }

    #[test]
    fn a_system_admin_sees_every_project_when_it_asks() {
        let system = |roles: &[&str]| RequestContext {
            system_scope: Some("all".into()),
            ..ctx(None, roles)
        };
        assert_eq!(
            project_scope(&system(&["admin", "reader"]), true),
            Ok(ProjectScope::All)
        );
        assert_eq!(
            project_scope(&system(&["admin"]), false),
            Err(ScopeDenied::NoProject)
        );
        assert_eq!(
            project_scope(&system(&["reader"]), true),
            Err(ScopeDenied::NoProject)
        );
        // Unscoped stays refused, admin role or not.
        assert_eq!(
            project_scope(&ctx(None, &["admin"]), true),
            Err(ScopeDenied::NoProject)
        );
    }

    #[test]
    fn own_project_unless_an_admin_asks_for_all() {
        let p = ProjectScope::Project(ProjectId::from("a"));
        assert_eq!(
            project_scope(&ctx(Some("a"), &["reader"]), false),
            Ok(p.clone())
        );
        assert_eq!(
            project_scope(&ctx(Some("a"), &["member"]), false),
            Ok(p.clone())
        );
        assert_eq!(
            project_scope(&ctx(Some("a"), &["admin"]), false),
            Ok(p.clone())
        );
        assert_eq!(project_scope(&ctx(Some("a"), &["service"]), false), Ok(p));
        assert_eq!(
            project_scope(&ctx(Some("a"), &["admin"]), true),
            Ok(ProjectScope::All)
        );
        assert_eq!(
            project_scope(&ctx(Some("a"), &["member"]), true),
            Err(ScopeDenied::NotAdmin)
        );
        assert_eq!(
            project_scope(&ctx(Some("a"), &["custom"]), false),
            Err(ScopeDenied::NoRole)
        );
    }

    #[test]
    fn scopes_filter_and_permit() {
        let p = ProjectScope::Project(ProjectId::from("a"));
        assert_eq!(p.filter().map(ProjectId::as_str), Some("a"));
        assert!(p.permits("a") && !p.permits("b") && !p.permits(""));
        assert!(ProjectScope::All.permits("b"));
        assert_eq!(ProjectScope::All.filter(), None);
    }
}
