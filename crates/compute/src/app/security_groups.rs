//! A server's security groups, as Nova keeps them through Neutron
//! (`nova/network/security_group_api.py`): the groups a create names are
//! checked with the user's token (a missing one is a 400), the ports the
//! agent makes get them, and `addSecurityGroup` / `removeSecurityGroup`
//! change the groups of every port of the server.

use stratus_common::RequestContext;

use crate::api::AppState;
use crate::db;
use crate::db::instances::Instance;
use crate::error::{ComputeError, Result};

/// The groups a create names (names or ids), as the names the server will
/// show: each must be the caller's (Nova's `_check_requested_secgroups`;
/// `default` is Neutron's, always there).
pub async fn resolve_for_create(
    s: &AppState,
    ctx: &RequestContext,
    requested: &[String],
) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for g in requested {
        let name = if g == "default" {
            g.clone()
        } else {
            match s.networks.security_group_find(ctx, g).await {
                Ok(found) => found.name,
                // Nova answers the network client's own message, as a 400.
                Err(ComputeError::NotFound(m)) => return Err(ComputeError::BadRequest(m)),
                Err(e) => return Err(e),
            }
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// What `addSecurityGroup` / `removeSecurityGroup` do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Add,
    Remove,
}

/// Adds the group `name` to (or removes it from) every port of the server,
/// with the caller's token, then keeps the names the view shows.
pub async fn change(
    s: &AppState,
    ctx: &RequestContext,
    i: &Instance,
    name: &str,
    how: Change,
) -> Result<()> {
    let project = ctx.project_id.as_ref().map(|p| p.as_str()).unwrap_or("");
    let group = match s.networks.security_group_find(ctx, name).await {
        Ok(g) => g,
        Err(ComputeError::NotFound(_)) => {
            return Err(ComputeError::NotFound(format!(
                "Security group {name} is not found for project {project}"
            )))
        }
        Err(e) => return Err(e),
    };
    let id = i.id.to_string();
    let ports = s.networks.server_ports(ctx, &id).await?;
    if ports.is_empty() {
        return Err(ComputeError::NotFound(format!(
            "instance_id {id} could not be found as device id on any ports"
        )));
    }
    let mut changed = false;
    for p in ports {
        let mut groups = p.security_groups.clone();
        match how {
            Change::Add => {
                if groups.contains(&group.id) {
                    continue;
                }
                groups.push(group.id.clone());
            }
            Change::Remove => {
                if !groups.contains(&group.id) {
                    // Nova: 404 only when no port had the group.
                    continue;
                }
                groups.retain(|g| g != &group.id);
            }
        }
        s.networks
            .port_set_security_groups(ctx, &p.id, &groups)
            .await?;
        changed = true;
    }
    if how == Change::Remove && !changed {
        return Err(ComputeError::NotFound(format!(
            "Security group {name} not associated with the instance {id}"
        )));
    }
    let mut names = i.security_groups.clone();
    match how {
        Change::Add if !names.contains(&group.name) => names.push(group.name.clone()),
        Change::Add => {}
        Change::Remove => names.retain(|n| n != &group.name),
    }
    db::instance_security_groups::instance_security_groups_set(
        &mut *s.db.conn().await?,
        &id,
        &names,
    )
    .await
}

/// `GET /servers/{id}/os-security-groups`: the groups of the server's
/// ports in Nova's format (`_format_security_group`): ingress rules only,
/// a rule's source either a group (`{"name", "tenant_id"}`) or a CIDR.
pub async fn of_server(
    s: &AppState,
    ctx: &RequestContext,
    i: &Instance,
) -> Result<Vec<serde_json::Value>> {
    let ports = s.networks.server_ports(ctx, &i.id.to_string()).await?;
    let mut ids: Vec<String> = Vec::new();
    for p in ports {
        for g in p.security_groups {
            if !ids.contains(&g) {
                ids.push(g);
            }
        }
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let all = s.networks.security_groups(ctx).await?;
    Ok(ids
        .iter()
        .filter_map(|id| all.iter().find(|g| &g.id == id))
        .map(|g| nova_group(g, &all))
        .collect())
}

/// A Neutron group as Nova's security group view shows it.
pub fn nova_group(
    g: &crate::clients::SecurityGroup,
    all: &[crate::clients::SecurityGroup],
) -> serde_json::Value {
    use serde_json::json;
    let rules: Vec<serde_json::Value> = g
        .security_group_rules
        .iter()
        .filter(|r| r.direction == "ingress")
        .filter_map(|r| {
            // Nova's defaults for a protocol without ports.
            let (from, to) = match (&r.protocol, r.port_range_min, r.port_range_max) {
                (Some(p), None, None)
                    if ["tcp", "udp"].contains(&p.to_ascii_lowercase().as_str()) =>
                {
                    (json!(1), json!(65535))
                }
                (Some(_), None, None) => (json!(-1), json!(-1)),
                (_, min, max) => (json!(min), json!(max)),
            };
            let (group, ip_range) = match &r.remote_group_id {
                Some(remote) => {
                    // A rule whose source group vanished is left out, as Nova does.
                    let src = all.iter().find(|x| &x.id == remote)?;
                    (
                        json!({"name": src.name, "tenant_id": src.project_id}),
                        json!({}),
                    )
                }
                None => (json!({}), json!({"cidr": r.remote_ip_prefix})),
            };
            Some(json!({
                "id": r.id, "parent_group_id": r.security_group_id, "ip_protocol": r.protocol,
                "from_port": from, "to_port": to, "group": group, "ip_range": ip_range,
            }))
        })
        .collect();
    json!({
        "id": g.id, "name": g.name, "description": g.description,
        "tenant_id": g.project_id, "rules": rules,
    })
}
