//! `keystone-manage bootstrap` and catalog registration, both idempotent:
//! every object is looked up by name first and created only when missing.

use std::path::Path;

use serde_json::Map;
use stratus_common::ids::{DomainId, ProjectId, RoleId, UserId};

use crate::db::assignments::{assignment_grant, ActorType, Assignment, TargetType, SYSTEM_ALL};
use crate::db::domains::{domain_create, domain_get, Domain};
use crate::db::endpoints::{
    endpoint_create, endpoint_list, endpoint_update, Endpoint, EndpointFilter,
};
use crate::db::projects::{project_create, project_get_by_name, Project};
use crate::db::regions::{region_create, region_get, Region};
use crate::db::roles::{implied_role_create, role_create, role_get_by_name, Role};
use crate::db::services::{service_create, service_list, Service};
use crate::db::users::{user_create, user_get_by_name, user_set_password, User};
use crate::db::Conn;
use crate::error::{IdentityError, Result};
use crate::ids::{EndpointId, ServiceId};
use crate::Inner;

/// What `bootstrap` sets up.
#[derive(Clone)]
pub struct BootstrapSpec {
    pub admin_password: String,
    /// Set the passwords of existing admin and service users again.
    pub reset: bool,
    pub region: String,
    pub service_user_name: String,
    /// Empty: generated once and kept in `<data_dir>/service-user-password`.
    pub service_user_password: String,
    pub service_project: String,
    /// Registered as the `identity` service (`keystone`) when set.
    pub identity_url: Option<String>,
}

impl std::fmt::Debug for BootstrapSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapSpec")
            .field("region", &self.region)
            .field("service_user_name", &self.service_user_name)
            .finish_non_exhaustive()
    }
}

impl BootstrapSpec {
    /// The spec a cloud's config implies, with the given admin password.
    pub fn from_config(config: &stratus_common::Config, admin_password: &str) -> Self {
        Self {
            admin_password: admin_password.to_owned(),
            reset: false,
            region: config.region.clone(),
            service_user_name: config.service_user.name.clone(),
            service_user_password: config.service_user.password.clone(),
            service_project: config.service_user.project.clone(),
            identity_url: Some(config.catalog_url(stratus_common::config::ServiceKind::Identity)),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapOutcome {
    pub admin_user_id: UserId,
    pub admin_project_id: ProjectId,
    pub service_user_id: UserId,
    pub service_project_id: ProjectId,
    /// Whether the admin user was created by this call.
    pub admin_created: bool,
    /// The service user's password (generated when the spec had none).
    pub service_user_password: String,
}

impl std::fmt::Debug for BootstrapOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapOutcome")
            .field("admin_user_id", &self.admin_user_id)
            .field("admin_project_id", &self.admin_project_id)
            .field("admin_created", &self.admin_created)
            .finish_non_exhaustive()
    }
}

const SERVICE_PASSWORD_FILE: &str = "service-user-password";

/// Reads the kept service password, or makes and keeps one (mode 0600).
fn service_password(data_dir: &Path) -> Result<String> {
    let path = data_dir.join(SERVICE_PASSWORD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    std::fs::create_dir_all(data_dir)?;
    let pw = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    opts.open(&path)?.write_all(pw.as_bytes())?;
    Ok(pw)
}

async fn ensure_role(conn: &mut Conn, name: &str) -> Result<String> {
    match role_get_by_name(conn, name).await {
        Ok(r) => return Ok(r.id.0),
        Err(IdentityError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let role = Role {
        id: RoleId::generate(),
        name: name.to_owned(),
        domain_id: None,
        description: String::new(),
        extra: Map::new(),
    };
    role_create(conn, &role).await?;
    Ok(role.id.0)
}

async fn ensure_project(conn: &mut Conn, name: &str, description: &str) -> Result<String> {
    match project_get_by_name(conn, "default", name).await {
        Ok(p) => return Ok(p.id.0),
        Err(IdentityError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let p = Project {
        id: ProjectId::generate(),
        name: name.to_owned(),
        domain_id: DomainId::default_domain(),
        parent_id: None,
        description: description.to_owned(),
        enabled: true,
        is_domain: false,
        extra: Map::new(),
    };
    project_create(conn, &p).await?;
    Ok(p.id.0)
}

/// Returns the user id and whether it was created now.
async fn ensure_user(
    conn: &mut Conn,
    name: &str,
    hash: &str,
    reset: bool,
) -> Result<(String, bool)> {
    match user_get_by_name(conn, "default", name).await {
        Ok(u) => {
            if reset {
                user_set_password(conn, u.id.as_str(), hash).await?;
            }
            return Ok((u.id.0, false));
        }
        Err(IdentityError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let u = User {
        id: UserId::generate(),
        name: name.to_owned(),
        domain_id: DomainId::default_domain(),
        enabled: true,
        default_project_id: None,
        description: String::new(),
        password_hash: Some(hash.to_owned()),
        extra: Map::new(),
    };
    user_create(conn, &u).await?;
    Ok((u.id.0, true))
}

async fn ensure_region(conn: &mut Conn, id: &str) -> Result<()> {
    match region_get(conn, id).await {
        Ok(_) => Ok(()),
        Err(IdentityError::NotFound { .. }) => {
            region_create(
                conn,
                &Region {
                    id: id.to_owned(),
                    description: String::new(),
                    parent_region_id: None,
                    extra: Map::new(),
                },
            )
            .await
        }
        Err(e) => Err(e),
    }
}

pub(crate) async fn bootstrap(inner: &Inner, spec: &BootstrapSpec) -> Result<BootstrapOutcome> {
    if spec.admin_password.is_empty() {
        return Err(IdentityError::validation(
            "the admin password must not be empty",
        ));
    }
    let service_pw = if spec.service_user_password.is_empty() {
        service_password(&inner.global.data_dir)?
    } else {
        spec.service_user_password.clone()
    };
    let cost = inner.config.password_hash_cost;
    let admin_hash = inner.hashing.hash(&spec.admin_password, cost).await?;
    let service_hash = inner.hashing.hash(&service_pw, cost).await?;

    let mut tx = crate::db::begin(&inner.db).await?;
    match domain_get(&mut tx, "default").await {
        Ok(_) => {}
        Err(IdentityError::NotFound { .. }) => {
            domain_create(
                &mut tx,
                &Domain {
                    id: DomainId::default_domain(),
                    name: "Default".into(),
                    description: "The default domain".into(),
                    enabled: true,
                    extra: Map::new(),
                },
            )
            .await?
        }
        Err(e) => return Err(e),
    }
    let admin_role = ensure_role(&mut tx, "admin").await?;
    let member = ensure_role(&mut tx, "member").await?;
    let reader = ensure_role(&mut tx, "reader").await?;
    // Keystone (2024.1+) also bootstraps `service`, the role keystonemiddleware
    // expects on service tokens.
    let service_role = ensure_role(&mut tx, "service").await?;
    implied_role_create(&mut tx, &admin_role, &member).await?;
    implied_role_create(&mut tx, &member, &reader).await?;

    let admin_project = ensure_project(
        &mut tx,
        "admin",
        "Bootstrap project for initializing the cloud.",
    )
    .await?;
    let service_project = ensure_project(
        &mut tx,
        &spec.service_project,
        "Project of the service users.",
    )
    .await?;
    let (admin_user, admin_created) =
        ensure_user(&mut tx, "admin", &admin_hash, spec.reset).await?;
    let (service_user, _) =
        ensure_user(&mut tx, &spec.service_user_name, &service_hash, spec.reset).await?;
    // `keystone-manage bootstrap` also makes the admin an admin of the
    // system (`system_assignment`), so `--os-system-scope all` works for it.
    for (user, (target_type, target), role) in [
        (
            &admin_user,
            (TargetType::Project, &admin_project),
            &admin_role,
        ),
        (
            &admin_user,
            (TargetType::System, &SYSTEM_ALL.to_owned()),
            &admin_role,
        ),
        (
            &service_user,
            (TargetType::Project, &service_project),
            &admin_role,
        ),
        (
            &service_user,
            (TargetType::Project, &service_project),
            &service_role,
        ),
    ] {
        assignment_grant(
            &mut tx,
            &Assignment {
                actor_type: ActorType::User,
                actor_id: user.clone(),
                target_type,
                target_id: target.clone(),
                role_id: role.clone(),
                inherited: false,
            },
        )
        .await?;
    }
    ensure_region(&mut tx, &spec.region).await?;
    if let Some(url) = &spec.identity_url {
        register_in(&mut tx, "identity", "keystone", url, &spec.region).await?;
    }
    tx.commit().await?;
    tracing::info!(admin_created, "identity bootstrapped");
    Ok(BootstrapOutcome {
        admin_user_id: UserId(admin_user),
        admin_project_id: ProjectId(admin_project),
        service_user_id: UserId(service_user),
        service_project_id: ProjectId(service_project),
        admin_created,
        service_user_password: service_pw,
    })
}

/// Service `(type, name)` with public, internal and admin endpoints at `url`
/// in `region`; an existing endpoint gets the URL if it changed.
pub(crate) async fn register_in(
    conn: &mut Conn,
    service_type: &str,
    name: &str,
    url: &str,
    region: &str,
) -> Result<()> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(IdentityError::validation(format!(
            "'{url}' is not an http(s) URL"
        )));
    }
    ensure_region(conn, region).await?;
    let service_id = match service_list(conn, Some(service_type), Some(name))
        .await?
        .into_iter()
        .next()
    {
        Some(s) => s.id.0,
        None => {
            let s = Service {
                id: ServiceId::generate(),
                service_type: service_type.to_owned(),
                name: name.to_owned(),
                description: String::new(),
                enabled: true,
                extra: Map::new(),
            };
            service_create(conn, &s).await?;
            s.id.0
        }
    };
    let existing = endpoint_list(
        conn,
        &EndpointFilter {
            service_id: Some(&service_id),
            region_id: Some(region),
            ..Default::default()
        },
    )
    .await?;
    for interface in ["public", "internal", "admin"] {
        match existing.iter().find(|e| e.interface == interface) {
            Some(e) if e.url == url && e.enabled => {}
            Some(e) => {
                let mut e = e.clone();
                e.url = url.to_owned();
                e.enabled = true;
                endpoint_update(conn, &e).await?;
            }
            None => {
                endpoint_create(
                    conn,
                    &Endpoint {
                        id: EndpointId::generate(),
                        service_id: service_id.clone(),
                        interface: interface.to_owned(),
                        region_id: Some(region.to_owned()),
                        url: url.to_owned(),
                        enabled: true,
                        extra: Map::new(),
                    },
                )
                .await?
            }
        }
    }
    Ok(())
}
