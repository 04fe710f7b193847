//! The request context: who is asking, on behalf of which project, with which
//! roles. The auth layer builds it from a validated token; the bus carries it in
//! every envelope so that work done by workers is attributed to the caller.
//!
//! The request id also travels implicitly: the API layer and the bus run
//! each request's work in a [`with_request_id`] scope, and every
//! service-to-service client reads [`current_request_id`] and sends it as
//! [`REQUEST_ID_HEADER`], as Nova forwards its global request id, so that one
//! launch can be followed across services. A task spawned from a request
//! leaves the scope: capture the id first and scope the task again.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::ids::{DomainId, ProjectId, RequestId, UserId};

/// The header a service-to-service call carries the caller's request id in.
pub const REQUEST_ID_HEADER: &str = "X-OpenStack-Request-ID";

tokio::task_local! {
    static CURRENT_REQUEST_ID: RequestId;
}

/// Runs `f` with `id` as the current request id.
pub async fn with_request_id<F: Future>(id: RequestId, f: F) -> F::Output {
    CURRENT_REQUEST_ID.scope(id, f).await
}

/// The id of the request whose work is running, if any.
pub fn current_request_id() -> Option<RequestId> {
    CURRENT_REQUEST_ID.try_with(Clone::clone).ok()
}

/// The header (name, value) an outgoing service-to-service call adds: the
/// current request id, if any.
pub fn request_id_header() -> Option<(&'static str, String)> {
    current_request_id().map(|id| (REQUEST_ID_HEADER, id.0))
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestContext {
    pub request_id: RequestId,
    pub user_id: Option<UserId>,
    pub user_name: Option<String>,
    pub user_domain_id: Option<DomainId>,
    pub project_id: Option<ProjectId>,
    pub project_name: Option<String>,
    pub project_domain_id: Option<DomainId>,
    /// Set for a domain-scoped token.
    pub domain_id: Option<DomainId>,
    /// `Some("all")` for a system-scoped token (oslo.context's
    /// `system_scope`): no project, and an admin of it administers the cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_scope: Option<String>,
    /// Role names, lower case, as Keystone returns them.
    pub roles: Vec<String>,
    /// The caller's token, kept so that a service can call another on the
    /// caller's behalf (compute asking image and network). Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
}

impl RequestContext {
    /// A context for work a service starts itself (periodic tasks, recovery).
    pub fn internal() -> Self {
        Self {
            request_id: RequestId::generate(),
            user_id: None,
            user_name: None,
            user_domain_id: None,
            project_id: None,
            project_name: None,
            project_domain_id: None,
            domain_id: None,
            system_scope: None,
            roles: vec!["admin".to_owned()],
            auth_token: None,
        }
    }

    /// [`RequestContext::internal`] for work a request caused (a cast to an
    /// agent after an API call): it carries the current request id, if any.
    pub fn internal_for_current() -> Self {
        let mut ctx = Self::internal();
        if let Some(id) = current_request_id() {
            ctx.request_id = id;
        }
        ctx
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }

    /// OpenStack's default `admin` rule.
    pub fn is_admin(&self) -> bool {
        self.has_role("admin")
    }

    /// Whether the token is scoped to the system (Keystone's
    /// `"system": {"all": true}`).
    pub fn is_system_scoped(&self) -> bool {
        self.system_scope.as_deref() == Some("all")
    }

    /// `member` (or admin) may change things in its project.
    pub fn can_write(&self) -> bool {
        self.is_admin() || self.has_role("member")
    }

    /// `reader` (or anything stronger) may look.
    pub fn can_read(&self) -> bool {
        self.can_write() || self.has_role("reader")
    }

    /// Whether the caller may act on a resource owned by `owner`.
    pub fn owns(&self, owner: &ProjectId) -> bool {
        self.is_admin() || self.project_id.as_ref() == Some(owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(roles: &[&str], project: &str) -> RequestContext {
        RequestContext {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            project_id: Some(ProjectId::from(project)),
            ..RequestContext::internal()
        }
    }

    #[test]
    fn roles_imply_weaker_ones() {
        assert!(ctx(&["admin"], "a").can_read());
        assert!(ctx(&["member"], "a").can_write());
        assert!(!ctx(&["reader"], "a").can_write());
        assert!(ctx(&["reader"], "a").can_read());
        assert!(!ctx(&[], "a").can_read());
    }

    #[tokio::test]
    async fn the_current_request_id_is_scoped() {
        assert_eq!(current_request_id(), None);
        let id = RequestId::generate();
        let inner = with_request_id(id.clone(), async {
            (
                current_request_id(),
                RequestContext::internal_for_current().request_id,
            )
        })
        .await;
        assert_eq!(inner, (Some(id.clone()), id.clone()));
        assert_eq!(current_request_id(), None);
        assert_ne!(RequestContext::internal_for_current().request_id, id);
    }

    #[test]
    fn members_own_only_their_project() {
        let c = ctx(&["member"], "a");
        assert!(c.owns(&ProjectId::from("a")));
        assert!(!c.owns(&ProjectId::from("b")));
        assert!(ctx(&["admin"], "a").owns(&ProjectId::from("b")));
    }
}
