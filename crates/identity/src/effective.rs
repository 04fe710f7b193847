//! Effective roles: what a user really holds on a target, counting group
//! membership, roles inherited from a project's domain, and implied roles
//! (admin implies member implies reader). Token validation and
//! `GET /v3/role_assignments?effective` both use it.

use std::collections::{BTreeMap, BTreeSet};

use crate::db::assignments::{
    assignment_list, ActorType, Assignment, AssignmentFilter, TargetType,
};
use crate::db::groups::{group_ids_of_user, group_member_ids};
use crate::db::projects::{project_get, project_list, ProjectFilter};
use crate::db::roles::implied_role_list;
use crate::db::Conn;
use crate::error::{IdentityError, Result};

/// Adds every role implied (transitively) by the given ones. Pure, so cycles
/// in the data cannot loop: each role is visited once.
pub fn expand_implied(pairs: &[(String, String)], roles: &[String]) -> Vec<String> {
    let mut by_prior: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (p, i) in pairs {
        by_prior.entry(p.as_str()).or_default().push(i.as_str());
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = roles.to_vec();
    while let Some(r) = stack.pop() {
        if !seen.insert(r.clone()) {
            continue;
        }
        if let Some(next) = by_prior.get(r.as_str()) {
            stack.extend(next.iter().map(|s| (*s).to_owned()));
        }
    }
    seen.into_iter().collect()
}

/// Direct role ids of a user on a target: own grants, grants to the user's
/// groups and, for a project, grants on its domain marked inherited.
pub async fn direct_role_ids(
    conn: &mut Conn,
    user_id: &str,
    target: TargetType,
    target_id: &str,
) -> Result<Vec<String>> {
    let groups = group_ids_of_user(conn, user_id).await?;
    let mut on = vec![(target, target_id.to_owned(), false)];
    if target == TargetType::Project {
        match project_get(conn, target_id).await {
            Ok(p) => on.push((TargetType::Domain, p.domain_id.0, true)),
            Err(IdentityError::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    }
    let mut roles = BTreeSet::new();
    for (tt, tid, inherited) in on {
        let all = assignment_list(
            conn,
            &AssignmentFilter {
                target_type: Some(tt),
                target_id: Some(tid),
                ..Default::default()
            },
        )
        .await?;
        for a in all.into_iter().filter(|a| a.inherited == inherited) {
            let mine = match a.actor_type {
                ActorType::User => a.actor_id == user_id,
                ActorType::Group => groups.contains(&a.actor_id),
            };
            if mine {
                roles.insert(a.role_id);
            }
        }
    }
    Ok(roles.into_iter().collect())
}

/// Effective role ids (implied ones included).
pub async fn effective_role_ids(
    conn: &mut Conn,
    user_id: &str,
    target: TargetType,
    target_id: &str,
) -> Result<Vec<String>> {
    let direct = direct_role_ids(conn, user_id, target, target_id).await?;
    if direct.is_empty() {
        return Ok(direct);
    }
    let pairs = implied_role_list(conn).await?;
    Ok(expand_implied(&pairs, &direct))
}

/// Keystone's `effective` view of assignments: group grants become one
/// grant per member, inherited domain grants become one per project of the
/// domain, implied roles are added. Filters apply to the result.
pub async fn effective_assignments(
    conn: &mut Conn,
    filter: &AssignmentFilter,
) -> Result<Vec<Assignment>> {
    let all = assignment_list(
        conn,
        &AssignmentFilter {
            target_type: None,
            target_id: None,
            role_id: None,
            actor_type: None,
            actor_id: None,
        },
    )
    .await?;
    let pairs = implied_role_list(conn).await?;
    let mut out: BTreeSet<Assignment> = BTreeSet::new();
    // Keystone's effective mode leaves system grants out (its
    // `_list_effective_role_assignments` knows only projects and domains).
    for a in all
        .into_iter()
        .filter(|a| a.target_type != TargetType::System)
    {
        let users = match a.actor_type {
            ActorType::User => vec![a.actor_id.clone()],
            ActorType::Group => group_member_ids(conn, &a.actor_id).await?,
        };
        let targets: Vec<(TargetType, String)> = if a.inherited {
            if a.target_type != TargetType::Domain {
                continue;
            }
            project_list(
                conn,
                &ProjectFilter {
                    domain_id: Some(&a.target_id),
                    ..Default::default()
                },
            )
            .await?
            .into_iter()
            .map(|p| (TargetType::Project, p.id.0))
            .collect()
        } else {
            vec![(a.target_type, a.target_id.clone())]
        };
        for role in expand_implied(&pairs, std::slice::from_ref(&a.role_id)) {
            for u in &users {
                for (tt, tid) in &targets {
                    out.insert(Assignment {
                        actor_type: ActorType::User,
                        actor_id: u.clone(),
                        target_type: *tt,
                        target_id: tid.clone(),
                        role_id: role.clone(),
                        inherited: false,
                    });
                }
            }
        }
    }
    Ok(out
        .into_iter()
        .filter(|a| filter.actor_id.as_ref().is_none_or(|u| &a.actor_id == u))
        .filter(|_| filter.actor_type.is_none_or(|t| t == ActorType::User))
        .filter(|a| filter.target_type.is_none_or(|t| a.target_type == t))
        .filter(|a| filter.target_id.as_ref().is_none_or(|t| &a.target_id == t))
        .filter(|a| filter.role_id.as_ref().is_none_or(|r| &a.role_id == r))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &str, b: &str) -> (String, String) {
        (a.into(), b.into())
    }

    #[test]
    fn implied_roles_are_transitive_and_cycle_safe() {
        let pairs = vec![
            p("admin", "member"),
            p("member", "reader"),
            p("reader", "admin"),
        ];
        assert_eq!(
            expand_implied(&pairs[..2], &["admin".into()]),
            vec!["admin", "member", "reader"]
        );
        assert_eq!(
            expand_implied(&pairs[..2], &["reader".into()]),
            vec!["reader"]
        );
        assert_eq!(expand_implied(&pairs, &["reader".into()]).len(), 3);
        assert!(expand_implied(&pairs, &[]).is_empty());
    }
}
