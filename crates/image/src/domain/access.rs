//! Who may see and change an image (Glance's default policies): the owner
//! and admins change it; everyone sees public and community images; members
//! see shared ones. What a caller may not see is "not found", never 403.

use stratus_common::RequestContext;

use super::{Image, Visibility};

/// Whether `ctx` owns `image` (admins act as owners).
pub fn owns(ctx: &RequestContext, image: &Image) -> bool {
    ctx.is_admin() || project(ctx).is_some_and(|p| image.owner.as_deref() == Some(p))
}

pub fn project(ctx: &RequestContext) -> Option<&str> {
    ctx.project_id.as_ref().map(|p| p.as_str())
}

/// Whether `ctx` may see `image`; `is_member` says whether the caller's
/// project is in the image's member list (any member status).
pub fn can_see(ctx: &RequestContext, image: &Image, is_member: bool) -> bool {
    // A service (the compute agent with its own token) reads any image: the
    // compute API already checked that the user may boot it.
    if owns(ctx, image) || ctx.has_role("service") {
        return true;
    }
    match image.visibility {
        Visibility::Public | Visibility::Community => true,
        Visibility::Shared => is_member,
        Visibility::Private => false,
    }
}

/// Admins and the `service` role see store locations (Glance's
/// `show_image_direct_url` / `show_multiple_locations` for trusted callers):
/// the compute agent reads image data straight from the store with them.
pub fn sees_locations(ctx: &RequestContext) -> bool {
    ctx.is_admin() || ctx.has_role("service")
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_common::ids::{ImageId, ProjectId};

    fn ctx(project: &str, roles: &[&str]) -> RequestContext {
        RequestContext {
            project_id: Some(ProjectId::from(project)),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..RequestContext::internal()
        }
    }

    #[test]
    fn visibility_rules() {
        let mut img = Image::new(
            ImageId::new(),
            Some("a".into()),
            stratus_common::time::now(),
        );
        let owner = ctx("a", &["member"]);
        let other = ctx("b", &["member"]);
        let admin = ctx("c", &["admin"]);
        img.visibility = Visibility::Private;
        assert!(can_see(&owner, &img, false));
        assert!(!can_see(&other, &img, true));
        assert!(can_see(&admin, &img, false));
        img.visibility = Visibility::Shared;
        assert!(!can_see(&other, &img, false));
        assert!(can_see(&other, &img, true));
        img.visibility = Visibility::Community;
        assert!(can_see(&other, &img, false));
        assert!(!owns(&other, &img));
        assert!(sees_locations(&admin) && !sees_locations(&owner));
        img.visibility = Visibility::Private;
        assert!(can_see(&ctx("s", &["service"]), &img, false));
        assert!(!owns(&ctx("s", &["service"]), &img));
    }
}
