//! Authorisation of every route of every API (identity, compute, image,
//! network, metadata, volume), against a real `stratus up`.
//!
//! [`expectations`] lists every route with what OpenStack answers to four
//! callers that must not get the owning project's resources:
//!
//! - no token: 401 (keystonemiddleware's body) except version discovery and
//!   the routes OpenStack leaves open;
//! - a member of another project: 404 for the project's resources (Nova,
//!   Neutron, Glance and Cinder hide them; Keystone answers 403), 403 for
//!   admin-only routes, and lists without any of the project's resources;
//! - a `reader` of the owning project: 403 for writes, 200 for reads;
//! - an unscoped token (a user with no role at all): 403 on every project
//!   resource (the bug of issue 9: it used to list every project's servers).
//!
//! The list is checked against each service's route table
//! (`route_table()`, recorded while its router is built): a route added
//! without an entry here fails [`every_route_has_an_expectation`].
//!
//! Writes that must be refused carry a valid body, so that nothing but the
//! authorisation can refuse them; a 404 for another project is only
//! believed when the owner reads the same path with a 2xx.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{json, Value};
use stratus_auth::Route;

use super::harness::Cloud;

/// The services, in the order their tables are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Svc {
    Identity,
    Compute,
    Image,
    Network,
    Metadata,
    Volume,
}

impl Svc {
    const ALL: [Svc; 6] = [
        Svc::Identity,
        Svc::Compute,
        Svc::Image,
        Svc::Network,
        Svc::Metadata,
        Svc::Volume,
    ];

    fn port_key(self) -> &'static str {
        match self {
            Svc::Identity => "IDENTITY",
            Svc::Compute => "COMPUTE",
            Svc::Image => "IMAGE",
            Svc::Network => "NETWORK",
            Svc::Metadata => "METADATA",
            Svc::Volume => "VOLUME",
        }
    }

    fn table(self) -> Vec<Route> {
        match self {
            Svc::Identity => stratus_identity::api::route_table(),
            Svc::Compute => stratus_compute::api::route_table(),
            Svc::Image => stratus_image::api::route_table(),
            Svc::Network => stratus_network::api::route_table(),
            Svc::Metadata => stratus_metadata::route_table(),
            Svc::Volume => stratus_volume::api::route_table(),
        }
    }
}

/// What one caller must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// This status.
    Is(u16),
    /// Open to anyone: a 2xx or 3xx.
    Open,
    /// 200, and none of the owning project's ids in the body.
    Hidden,
    /// Not a cross-project case: the caller acts on its own project or
    /// its own user (creating in its own project); not sent.
    Own,
}

use Want::{Hidden, Is, Open, Own};

const NONE: usize = 0;
const OTHER: usize = 1;
const READER: usize = 2;
const UNSCOPED: usize = 3;
const CALLERS: [&str; 4] = ["no token", "another project", "reader", "unscoped"];

/// One route and what each caller gets.
struct Case {
    svc: Svc,
    method: &'static str,
    /// The route as the router mounts it.
    template: &'static str,
    /// The path sent, with `{name}` fixtures filled in.
    path: &'static str,
    body: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    want: [Want; 4],
}

fn c(
    svc: Svc,
    method: &'static str,
    template: &'static str,
    path: &'static str,
    want: [Want; 4],
) -> Case {
    Case {
        svc,
        method,
        template,
        path,
        body: None,
        headers: &[],
        want,
    }
}

impl Case {
    fn body(mut self, b: &'static str) -> Self {
        self.body = Some(b);
        self
    }

    fn headers(mut self, h: &'static [(&'static str, &'static str)]) -> Self {
        self.headers = h;
        self
    }
}

/// Compute's server tags need microversion 2.26.
const V2_26: &[(&str, &str)] = &[("OpenStack-API-Version", "compute 2.26")];

const OPEN: [Want; 4] = [Open, Open, Open, Open];
/// Any valid token may read it (not a project resource).
const ANY_TOKEN: [Want; 4] = [Is(401), Is(200), Is(200), Is(200)];
/// Admin only.
const ADMIN: [Want; 4] = [Is(401), Is(403), Is(403), Is(403)];
/// A project resource read: hidden from others, readable by readers.
const READ: [Want; 4] = [Is(401), Is(404), Is(200), Is(403)];
/// A project resource write.
const WRITE: [Want; 4] = [Is(401), Is(404), Is(403), Is(403)];
/// A project collection: others see none of it.
const LIST: [Want; 4] = [Is(401), Hidden, Is(200), Is(403)];
/// A create in the caller's own project.
const CREATE: [Want; 4] = [Is(401), Own, Is(403), Is(403)];
/// Neutron's admin-only resources: not found for anyone else.
const HIDDEN_ADMIN: [Want; 4] = [Is(401), Is(404), Is(404), Is(404)];
/// Neutron's tag check: 204 when the resource has the tag.
const TAG_CHECK: [Want; 4] = [Is(401), Is(404), Is(204), Is(403)];
/// Keystone: another project's or user's things are 403, not 404.
const KS_READ: [Want; 4] = [Is(401), Is(403), Is(200), Is(403)];
/// Any project-scoped token may read it (Cinder's types, zones,
/// extensions); an unscoped token has no project to act in.
const SCOPED: [Want; 4] = [Is(401), Is(200), Is(200), Is(403)];

const PATCH_JSON: &[(&str, &str)] = &[(
    "content-type",
    "application/openstack-images-v2.1-json-patch",
)];
const OCTETS: &[(&str, &str)] = &[("content-type", "application/octet-stream")];
const SUBJECT: &[(&str, &str)] = &[("x-subject-token", "{alice_token}")];
const NOVA_2_55: &[(&str, &str)] = &[("openstack-api-version", "compute 2.55")];
const NOVA_2_53: &[(&str, &str)] = &[("openstack-api-version", "compute 2.53")];
/// Project-less Cinder URLs came with 3.67, attachments with 3.27 (their
/// complete action with 3.44): every volume case asks for the newest.
const CINDER_3_70: &[(&str, &str)] = &[("openstack-api-version", "volume 3.70")];

/// A `&'static str` of a string made at run time (the volume cases are
/// generated once per prefix).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Cinder mounts every route twice: under `/v3/{project_id}` (the
/// catalog's URL) and, from 3.67, under `/v3`. A URL whose project is not
/// the token's is 400 "Malformed request url" (Cinder's WSGI check, see
/// [`a_url_of_another_project_is_malformed`]), so each caller sends its own
/// project's URL (`{own_project}`) and another project's resource is then
/// not found, as in Cinder; [`World::malformed_urls`] checks the 400.
#[rustfmt::skip]
fn volume_cases() -> Vec<Case> {
    use Svc::Volume;
    let mut out = vec![
        c(Volume, "GET", "/", "/", OPEN),
        c(Volume, "GET", "/v3", "/v3", OPEN),
        c(Volume, "GET", "/v3/", "/v3/", OPEN),
    ];
    for (mount, sent) in [("/v3/{project_id}", "/v3/{own_project}"), ("/v3", "/v3")] {
        let v = |method: &'static str, route: &str, path: &str, want: [Want; 4]| -> Case {
            c(Volume, method, leak(format!("{mount}{route}")), leak(format!("{sent}{path}")), want)
                .headers(CINDER_3_70)
        };
        out.extend([
            v("GET", "/volumes", "/volumes", LIST),
            // A clone of another project's volume: that volume is not found.
            v("POST", "/volumes", "/volumes", WRITE)
                .body(r#"{"volume": {"size": 1, "source_volid": "{volume}"}}"#),
            v("GET", "/volumes/detail", "/volumes/detail", LIST),
            v("GET", "/volumes/summary", "/volumes/summary", LIST),
            v("GET", "/volumes/{id}", "/volumes/{volume}", READ),
            v("PUT", "/volumes/{id}", "/volumes/{volume}", WRITE)
                .body(r#"{"volume": {"name": "authz-y"}}"#),
            v("DELETE", "/volumes/{id}", "/volumes/{volume}", WRITE),
            // os-reset_status is admin-only: see MEMBER_REFUSED.
            v("POST", "/volumes/{id}/action", "/volumes/{volume}/action", WRITE)
                .body(r#"{"os-extend": {"new_size": 2}}"#),
            v("GET", "/volumes/{id}/metadata", "/volumes/{volume}/metadata", READ),
            v("POST", "/volumes/{id}/metadata", "/volumes/{volume}/metadata", WRITE)
                .body(r#"{"metadata": {"k2": "v"}}"#),
            v("PUT", "/volumes/{id}/metadata", "/volumes/{volume}/metadata", WRITE)
                .body(r#"{"metadata": {"k": "v"}}"#),
            v("GET", "/volumes/{id}/metadata/{key}", "/volumes/{volume}/metadata/k", READ),
            v("PUT", "/volumes/{id}/metadata/{key}", "/volumes/{volume}/metadata/k", WRITE)
                .body(r#"{"meta": {"k": "w"}}"#),
            v("DELETE", "/volumes/{id}/metadata/{key}", "/volumes/{volume}/metadata/k", WRITE),
            // Public types: any project reads them, admins manage them.
            v("GET", "/types", "/types", SCOPED),
            v("POST", "/types", "/types", ADMIN).body(r#"{"volume_type": {"name": "authz-x"}}"#),
            v("GET", "/types/{id}", "/types/{vtype}", SCOPED),
            v("PUT", "/types/{id}", "/types/{vtype}", ADMIN)
                .body(r#"{"volume_type": {"description": "x"}}"#),
            v("DELETE", "/types/{id}", "/types/{vtype}", ADMIN),
            v("GET", "/types/{id}/extra_specs", "/types/{vtype}/extra_specs", SCOPED),
            v("POST", "/types/{id}/extra_specs", "/types/{vtype}/extra_specs", ADMIN)
                .body(r#"{"extra_specs": {"authz:y": "v"}}"#),
            // A user-visible key (Cinder's USER_VISIBLE_EXTRA_SPECS).
            v("GET", "/types/{id}/extra_specs/{key}", "/types/{vtype}/extra_specs/multiattach",
              SCOPED),
            v("PUT", "/types/{id}/extra_specs/{key}", "/types/{vtype}/extra_specs/multiattach",
              ADMIN)
                .body(r#"{"multiattach": "<is> True"}"#),
            v("DELETE", "/types/{id}/extra_specs/{key}",
              "/types/{vtype}/extra_specs/multiattach", ADMIN),
            v("GET", "/snapshots", "/snapshots", LIST),
            v("POST", "/snapshots", "/snapshots", WRITE)
                .body(r#"{"snapshot": {"volume_id": "{volume}", "name": "authz-x"}}"#),
            v("GET", "/snapshots/detail", "/snapshots/detail", LIST),
            v("GET", "/snapshots/{id}", "/snapshots/{snapshot}", READ),
            v("PUT", "/snapshots/{id}", "/snapshots/{snapshot}", WRITE)
                .body(r#"{"snapshot": {"name": "authz-y"}}"#),
            v("DELETE", "/snapshots/{id}", "/snapshots/{snapshot}", WRITE),
            v("GET", "/attachments", "/attachments", LIST),
            v("POST", "/attachments", "/attachments", WRITE)
                .body(r#"{"attachment": {"volume_uuid": "{volume}"}}"#),
            v("GET", "/attachments/detail", "/attachments/detail", LIST),
            v("GET", "/attachments/{id}", "/attachments/{attachment}", READ),
            v("PUT", "/attachments/{id}", "/attachments/{attachment}", WRITE).body(
                r#"{"attachment": {"connector": {"host": "authz", "initiator": "iqn.authz"}}}"#,
            ),
            v("DELETE", "/attachments/{id}", "/attachments/{attachment}", WRITE),
            v("POST", "/attachments/{id}/action", "/attachments/{attachment}/action", WRITE)
                .body(r#"{"os-complete": null}"#),
            // Quotas of project A: its readers read them, admins set them.
            v("GET", "/os-quota-sets/{id}", "/os-quota-sets/{project_a}", KS_READ),
            v("PUT", "/os-quota-sets/{id}", "/os-quota-sets/{project_a}", ADMIN)
                .body(r#"{"quota_set": {"volumes": 20}}"#),
            v("DELETE", "/os-quota-sets/{id}", "/os-quota-sets/{project_a}", ADMIN),
            v("GET", "/os-quota-sets/{id}/defaults", "/os-quota-sets/{project_a}/defaults",
              KS_READ),
            // The caller's own project's limits.
            v("GET", "/limits", "/limits", LIST),
            v("GET", "/os-availability-zone", "/os-availability-zone", SCOPED),
            v("GET", "/extensions", "/extensions", SCOPED),
        ]);
    }
    out
}

/// What a member of project A (its owner, not an admin) must be refused
/// on its own project's URLs: Cinder's admin-only actions and routes that
/// share a route with what members may do, so that the walk's table
/// cannot tell them apart.
#[rustfmt::skip]
const MEMBER_REFUSED: &[(&str, &str, &str)] = &[
    ("POST", "/v3/{project_a}/volumes/{volume}/action",
     r#"{"os-reset_status": {"status": "error"}}"#),
    ("POST", "/v3/volumes/{volume}/action", r#"{"os-reset_status": {"status": "error"}}"#),
    ("POST", "/v3/{project_a}/types/{vtype}/extra_specs", r#"{"extra_specs": {"authz:m": "v"}}"#),
    ("POST", "/v3/{project_a}/types", r#"{"volume_type": {"name": "authz-m"}}"#),
    ("PUT", "/v3/{project_a}/os-quota-sets/{project_a}", r#"{"quota_set": {"volumes": 99}}"#),
    ("DELETE", "/v3/{project_a}/os-quota-sets/{project_a}", "null"),
];

/// Every route of every API and what each caller gets (one line per
/// route where it fits, hence no rustfmt).
#[rustfmt::skip]
fn expectations() -> Vec<Case> {
    use Svc::*;
    vec![
        // ---- identity (Keystone's default policy)
        c(Identity, "GET", "/", "/", OPEN),
        c(Identity, "GET", "/v3", "/v3", OPEN),
        c(Identity, "GET", "/v3/", "/v3/", OPEN),
        c(Identity, "POST", "/v3/auth/tokens", "/v3/auth/tokens", OPEN).body(
            r#"{"auth": {"identity": {"methods": ["password"], "password": {"user":
                {"id": "{alice}", "password": "authz-alice-pw"}}}}}"#,
        ),
        // Validating or revoking someone else's token.
        c(Identity, "GET", "/v3/auth/tokens", "/v3/auth/tokens", ADMIN).headers(SUBJECT),
        c(Identity, "DELETE", "/v3/auth/tokens", "/v3/auth/tokens", ADMIN).headers(SUBJECT),
        // An unscoped token has no catalog.
        c(Identity, "GET", "/v3/auth/catalog", "/v3/auth/catalog",
          [Is(401), Is(200), Is(200), Is(403)]),
        // The caller's own projects and domains, also unscoped.
        c(Identity, "GET", "/v3/auth/projects", "/v3/auth/projects",
          [Is(401), Hidden, Is(200), Hidden]),
        c(Identity, "GET", "/v3/auth/domains", "/v3/auth/domains", ANY_TOKEN),
        c(Identity, "GET", "/v3/domains", "/v3/domains", ADMIN),
        c(Identity, "POST", "/v3/domains", "/v3/domains", ADMIN)
            .body(r#"{"domain": {"name": "authz-d"}}"#),
        // The domain of the caller's project (everyone's here is default).
        c(Identity, "GET", "/v3/domains/{id}", "/v3/domains/default",
          [Is(401), Is(200), Is(200), Is(403)]),
        c(Identity, "PATCH", "/v3/domains/{id}", "/v3/domains/default", ADMIN)
            .body(r#"{"domain": {"description": "x"}}"#),
        c(Identity, "DELETE", "/v3/domains/{id}", "/v3/domains/default", ADMIN),
        c(Identity, "GET", "/v3/projects", "/v3/projects", ADMIN),
        c(Identity, "POST", "/v3/projects", "/v3/projects", ADMIN)
            .body(r#"{"project": {"name": "authz-x", "domain_id": "default"}}"#),
        c(Identity, "GET", "/v3/projects/{id}", "/v3/projects/{project_a}", KS_READ),
        c(Identity, "PATCH", "/v3/projects/{id}", "/v3/projects/{project_a}", ADMIN)
            .body(r#"{"project": {"description": "x"}}"#),
        c(Identity, "DELETE", "/v3/projects/{id}", "/v3/projects/{project_a}", ADMIN),
        c(Identity, "GET", "/v3/users", "/v3/users", ADMIN),
        c(Identity, "POST", "/v3/users", "/v3/users", ADMIN)
            .body(r#"{"user": {"name": "authz-x", "domain_id": "default"}}"#),
        c(Identity, "GET", "/v3/users/{id}", "/v3/users/{alice}", ADMIN),
        c(Identity, "PATCH", "/v3/users/{id}", "/v3/users/{alice}", ADMIN)
            .body(r#"{"user": {"description": "x"}}"#),
        c(Identity, "DELETE", "/v3/users/{id}", "/v3/users/{alice}", ADMIN),
        c(Identity, "GET", "/v3/users/{id}/projects", "/v3/users/{alice}/projects", ADMIN),
        c(Identity, "GET", "/v3/users/{id}/groups", "/v3/users/{alice}/groups", ADMIN),
        // Keystone authenticates this one by the original password.
        c(Identity, "POST", "/v3/users/{id}/password", "/v3/users/{alice}/password",
          [Is(401), Is(401), Is(401), Is(401)])
            .body(r#"{"user": {"password": "new-pw-123", "original_password": "wrong"}}"#),
        c(Identity, "GET", "/v3/users/{id}/application_credentials",
          "/v3/users/{alice}/application_credentials", ADMIN),
        c(Identity, "POST", "/v3/users/{id}/application_credentials",
          "/v3/users/{alice}/application_credentials", ADMIN)
            .body(r#"{"application_credential": {"name": "authz-x"}}"#),
        c(Identity, "GET", "/v3/users/{id}/application_credentials/{cred}",
          "/v3/users/{alice}/application_credentials/{cred}", ADMIN),
        c(Identity, "DELETE", "/v3/users/{id}/application_credentials/{cred}",
          "/v3/users/{alice}/application_credentials/{cred}", ADMIN),
        c(Identity, "GET", "/v3/groups", "/v3/groups", ADMIN),
        c(Identity, "POST", "/v3/groups", "/v3/groups", ADMIN)
            .body(r#"{"group": {"name": "authz-x", "domain_id": "default"}}"#),
        c(Identity, "GET", "/v3/groups/{id}", "/v3/groups/{group}", ADMIN),
        c(Identity, "PATCH", "/v3/groups/{id}", "/v3/groups/{group}", ADMIN)
            .body(r#"{"group": {"description": "x"}}"#),
        c(Identity, "DELETE", "/v3/groups/{id}", "/v3/groups/{group}", ADMIN),
        c(Identity, "GET", "/v3/groups/{id}/users", "/v3/groups/{group}/users", ADMIN),
        c(Identity, "PUT", "/v3/groups/{id}/users/{user}", "/v3/groups/{group}/users/{bob}", ADMIN),
        c(Identity, "HEAD", "/v3/groups/{id}/users/{user}", "/v3/groups/{group}/users/{alice}", ADMIN),
        c(Identity, "DELETE", "/v3/groups/{id}/users/{user}", "/v3/groups/{group}/users/{alice}", ADMIN),
        c(Identity, "GET", "/v3/roles", "/v3/roles", ADMIN),
        c(Identity, "POST", "/v3/roles", "/v3/roles", ADMIN)
            .body(r#"{"role": {"name": "authz-x"}}"#),
        c(Identity, "GET", "/v3/roles/{id}", "/v3/roles/{member_role}", ADMIN),
        c(Identity, "PATCH", "/v3/roles/{id}", "/v3/roles/{member_role}", ADMIN)
            .body(r#"{"role": {"description": "x"}}"#),
        c(Identity, "DELETE", "/v3/roles/{id}", "/v3/roles/{member_role}", ADMIN),
        c(Identity, "GET", "/v3/roles/{id}/implies", "/v3/roles/{member_role}/implies", ADMIN),
        c(Identity, "PUT", "/v3/roles/{id}/implies/{implied}",
          "/v3/roles/{member_role}/implies/{reader_role}", ADMIN),
        c(Identity, "GET", "/v3/roles/{id}/implies/{implied}",
          "/v3/roles/{member_role}/implies/{reader_role}", ADMIN),
        c(Identity, "DELETE", "/v3/roles/{id}/implies/{implied}",
          "/v3/roles/{member_role}/implies/{reader_role}", ADMIN),
        c(Identity, "GET", "/v3/role_inferences", "/v3/role_inferences", ADMIN),
        c(Identity, "GET", "/v3/role_assignments", "/v3/role_assignments", ADMIN),
        // -- system scope (ident-sys): grants on the system are admin-only;
        // any token may ask which system it can scope to.
        c(Identity, "GET", "/v3/auth/system", "/v3/auth/system", ANY_TOKEN),
        c(Identity, "GET", "/v3/system/users/{actor}/roles",
          "/v3/system/users/{alice}/roles", ADMIN),
        c(Identity, "GET", "/v3/system/groups/{actor}/roles",
          "/v3/system/groups/{group}/roles", ADMIN),
        c(Identity, "PUT", "/v3/system/users/{actor}/roles/{role}",
          "/v3/system/users/{bob}/roles/{reader_role}", ADMIN),
        c(Identity, "GET", "/v3/system/users/{actor}/roles/{role}",
          "/v3/system/users/{alice}/roles/{reader_role}", ADMIN),
        c(Identity, "DELETE", "/v3/system/users/{actor}/roles/{role}",
          "/v3/system/users/{alice}/roles/{reader_role}", ADMIN),
        c(Identity, "PUT", "/v3/system/groups/{actor}/roles/{role}",
          "/v3/system/groups/{group}/roles/{reader_role}", ADMIN),
        c(Identity, "GET", "/v3/system/groups/{actor}/roles/{role}",
          "/v3/system/groups/{group}/roles/{reader_role}", ADMIN),
        c(Identity, "DELETE", "/v3/system/groups/{actor}/roles/{role}",
          "/v3/system/groups/{group}/roles/{reader_role}", ADMIN),
        // -- end of system scope
        c(Identity, "GET", "/v3/projects/{id}/users/{actor}/roles",
          "/v3/projects/{project_a}/users/{alice}/roles", ADMIN),
        c(Identity, "GET", "/v3/projects/{id}/groups/{actor}/roles",
          "/v3/projects/{project_a}/groups/{group}/roles", ADMIN),
        c(Identity, "GET", "/v3/domains/{id}/users/{actor}/roles",
          "/v3/domains/default/users/{alice}/roles", ADMIN),
        c(Identity, "GET", "/v3/domains/{id}/groups/{actor}/roles",
          "/v3/domains/default/groups/{group}/roles", ADMIN),
        c(Identity, "PUT", "/v3/projects/{id}/users/{actor}/roles/{role}",
          "/v3/projects/{project_a}/users/{bob}/roles/{member_role}", ADMIN),
        c(Identity, "GET", "/v3/projects/{id}/users/{actor}/roles/{role}",
          "/v3/projects/{project_a}/users/{alice}/roles/{member_role}", ADMIN),
        c(Identity, "DELETE", "/v3/projects/{id}/users/{actor}/roles/{role}",
          "/v3/projects/{project_a}/users/{alice}/roles/{member_role}", ADMIN),
        c(Identity, "PUT", "/v3/projects/{id}/groups/{actor}/roles/{role}",
          "/v3/projects/{project_a}/groups/{group}/roles/{member_role}", ADMIN),
        c(Identity, "GET", "/v3/projects/{id}/groups/{actor}/roles/{role}",
          "/v3/projects/{project_a}/groups/{group}/roles/{member_role}", ADMIN),
        c(Identity, "DELETE", "/v3/projects/{id}/groups/{actor}/roles/{role}",
          "/v3/projects/{project_a}/groups/{group}/roles/{member_role}", ADMIN),
        c(Identity, "PUT", "/v3/domains/{id}/users/{actor}/roles/{role}",
          "/v3/domains/default/users/{bob}/roles/{member_role}", ADMIN),
        c(Identity, "GET", "/v3/domains/{id}/users/{actor}/roles/{role}",
          "/v3/domains/default/users/{alice}/roles/{member_role}", ADMIN),
        c(Identity, "DELETE", "/v3/domains/{id}/users/{actor}/roles/{role}",
          "/v3/domains/default/users/{alice}/roles/{member_role}", ADMIN),
        c(Identity, "PUT", "/v3/domains/{id}/groups/{actor}/roles/{role}",
          "/v3/domains/default/groups/{group}/roles/{member_role}", ADMIN),
        c(Identity, "GET", "/v3/domains/{id}/groups/{actor}/roles/{role}",
          "/v3/domains/default/groups/{group}/roles/{member_role}", ADMIN),
        c(Identity, "DELETE", "/v3/domains/{id}/groups/{actor}/roles/{role}",
          "/v3/domains/default/groups/{group}/roles/{member_role}", ADMIN),
        // Anyone with a token may read regions.
        c(Identity, "GET", "/v3/regions", "/v3/regions", ANY_TOKEN),
        c(Identity, "POST", "/v3/regions", "/v3/regions", ADMIN)
            .body(r#"{"region": {"description": "x"}}"#),
        c(Identity, "GET", "/v3/regions/{id}", "/v3/regions/RegionOne", ANY_TOKEN),
        c(Identity, "PATCH", "/v3/regions/{id}", "/v3/regions/RegionOne", ADMIN)
            .body(r#"{"region": {"description": "x"}}"#),
        c(Identity, "DELETE", "/v3/regions/{id}", "/v3/regions/RegionOne", ADMIN),
        c(Identity, "PUT", "/v3/regions/{id}", "/v3/regions/authz-region", ADMIN)
            .body(r#"{"region": {}}"#),
        c(Identity, "GET", "/v3/services", "/v3/services", ADMIN),
        c(Identity, "POST", "/v3/services", "/v3/services", ADMIN)
            .body(r#"{"service": {"type": "authz", "name": "authz"}}"#),
        c(Identity, "GET", "/v3/services/{id}", "/v3/services/{service}", ADMIN),
        c(Identity, "PATCH", "/v3/services/{id}", "/v3/services/{service}", ADMIN)
            .body(r#"{"service": {"description": "x"}}"#),
        c(Identity, "DELETE", "/v3/services/{id}", "/v3/services/{service}", ADMIN),
        c(Identity, "GET", "/v3/endpoints", "/v3/endpoints", ADMIN),
        c(Identity, "POST", "/v3/endpoints", "/v3/endpoints", ADMIN).body(
            r#"{"endpoint": {"service_id": "{service}", "interface": "public",
                "url": "http://authz.invalid"}}"#,
        ),
        c(Identity, "GET", "/v3/endpoints/{id}", "/v3/endpoints/{endpoint}", ADMIN),
        c(Identity, "PATCH", "/v3/endpoints/{id}", "/v3/endpoints/{endpoint}", ADMIN)
            .body(r#"{"endpoint": {"url": "http://authz.invalid"}}"#),
        c(Identity, "DELETE", "/v3/endpoints/{id}", "/v3/endpoints/{endpoint}", ADMIN),
        // ---- identity extras (issue 12): unified limits, access rules,
        // ---- OS-EP-FILTER, domain configuration
        c(Identity, "GET", "/v3/registered_limits", "/v3/registered_limits", ANY_TOKEN),
        c(Identity, "POST", "/v3/registered_limits", "/v3/registered_limits", ADMIN).body(
            r#"{"registered_limits": [{"service_id": "{service}", "resource_name": "authz-x",
                "default_limit": 1}]}"#,
        ),
        c(Identity, "GET", "/v3/registered_limits/{id}", "/v3/registered_limits/{registered_limit}", ANY_TOKEN),
        c(Identity, "PATCH", "/v3/registered_limits/{id}", "/v3/registered_limits/{registered_limit}", ADMIN)
            .body(r#"{"registered_limit": {"default_limit": 2}}"#),
        c(Identity, "DELETE", "/v3/registered_limits/{id}", "/v3/registered_limits/{registered_limit}", ADMIN),
        // Keystone lists only the caller's project's limits.
        c(Identity, "GET", "/v3/limits", "/v3/limits", [Is(401), Hidden, Is(200), Hidden]),
        c(Identity, "POST", "/v3/limits", "/v3/limits", ADMIN).body(
            r#"{"limits": [{"project_id": "{project_b}", "service_id": "{service}",
                "resource_name": "authz-volumes", "resource_limit": 1}]}"#,
        ),
        c(Identity, "GET", "/v3/limits/model", "/v3/limits/model", ANY_TOKEN),
        c(Identity, "GET", "/v3/limits/{id}", "/v3/limits/{limit}", KS_READ),
        c(Identity, "PATCH", "/v3/limits/{id}", "/v3/limits/{limit}", ADMIN)
            .body(r#"{"limit": {"resource_limit": 2}}"#),
        c(Identity, "DELETE", "/v3/limits/{id}", "/v3/limits/{limit}", ADMIN),
        c(Identity, "GET", "/v3/users/{id}/access_rules", "/v3/users/{alice}/access_rules", ADMIN),
        c(Identity, "GET", "/v3/users/{id}/access_rules/{rule}",
          "/v3/users/{alice}/access_rules/{access_rule}", ADMIN),
        c(Identity, "DELETE", "/v3/users/{id}/access_rules/{rule}",
          "/v3/users/{alice}/access_rules/{access_rule}", ADMIN),
        c(Identity, "GET", "/v3/OS-EP-FILTER/endpoint_groups", "/v3/OS-EP-FILTER/endpoint_groups", ADMIN),
        c(Identity, "POST", "/v3/OS-EP-FILTER/endpoint_groups", "/v3/OS-EP-FILTER/endpoint_groups", ADMIN)
            .body(r#"{"endpoint_group": {"name": "authz-x", "filters": {"interface": "public"}}}"#),
        c(Identity, "GET", "/v3/OS-EP-FILTER/endpoint_groups/{id}",
          "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group}", ADMIN),
        c(Identity, "PATCH", "/v3/OS-EP-FILTER/endpoint_groups/{id}",
          "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group}", ADMIN)
            .body(r#"{"endpoint_group": {"description": "x"}}"#),
        c(Identity, "DELETE", "/v3/OS-EP-FILTER/endpoint_groups/{id}",
          "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group}", ADMIN),
        c(Identity, "GET", "/v3/OS-EP-FILTER/endpoint_groups/{id}/projects",
          "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group}/projects", ADMIN),
        c(Identity, "GET", "/v3/OS-EP-FILTER/endpoint_groups/{id}/endpoints",
          "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group}/endpoints", ADMIN),
        c(Identity, "GET", "/v3/OS-EP-FILTER/endpoint_groups/{id}/projects/{project}",
          "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group}/projects/{project_a}", ADMIN),
        c(Identity, "PUT", "/v3/OS-EP-FILTER/endpoint_groups/{id}/projects/{project}",
          "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group}/projects/{project_b}", ADMIN),
        c(Identity, "DELETE", "/v3/OS-EP-FILTER/endpoint_groups/{id}/projects/{project}",
          "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group}/projects/{project_a}", ADMIN),
        c(Identity, "GET", "/v3/OS-EP-FILTER/projects/{id}/endpoint_groups",
          "/v3/OS-EP-FILTER/projects/{project_a}/endpoint_groups", ADMIN),
        c(Identity, "GET", "/v3/OS-EP-FILTER/projects/{id}/endpoints",
          "/v3/OS-EP-FILTER/projects/{project_a}/endpoints", ADMIN),
        c(Identity, "GET", "/v3/OS-EP-FILTER/projects/{id}/endpoints/{endpoint}",
          "/v3/OS-EP-FILTER/projects/{project_a}/endpoints/{endpoint}", ADMIN),
        c(Identity, "HEAD", "/v3/OS-EP-FILTER/projects/{id}/endpoints/{endpoint}",
          "/v3/OS-EP-FILTER/projects/{project_a}/endpoints/{endpoint}", ADMIN),
        c(Identity, "PUT", "/v3/OS-EP-FILTER/projects/{id}/endpoints/{endpoint}",
          "/v3/OS-EP-FILTER/projects/{project_b}/endpoints/{endpoint}", ADMIN),
        c(Identity, "DELETE", "/v3/OS-EP-FILTER/projects/{id}/endpoints/{endpoint}",
          "/v3/OS-EP-FILTER/projects/{project_a}/endpoints/{endpoint}", ADMIN),
        c(Identity, "GET", "/v3/OS-EP-FILTER/endpoints/{id}/projects",
          "/v3/OS-EP-FILTER/endpoints/{endpoint}/projects", ADMIN),
        c(Identity, "GET", "/v3/domains/{id}/config", "/v3/domains/default/config", ADMIN),
        c(Identity, "PUT", "/v3/domains/{id}/config", "/v3/domains/default/config", ADMIN)
            .body(r#"{"config": {"identity": {"driver": "ldap"}}}"#),
        c(Identity, "PATCH", "/v3/domains/{id}/config", "/v3/domains/default/config", ADMIN)
            .body(r#"{"config": {"ldap": {"url": "ldap://authz.invalid"}}}"#),
        c(Identity, "DELETE", "/v3/domains/{id}/config", "/v3/domains/default/config", ADMIN),
        c(Identity, "GET", "/v3/domains/{id}/config/{group}", "/v3/domains/default/config/ldap", ADMIN),
        c(Identity, "PATCH", "/v3/domains/{id}/config/{group}", "/v3/domains/default/config/ldap", ADMIN)
            .body(r#"{"config": {"ldap": {"url": "ldap://authz.invalid"}}}"#),
        c(Identity, "DELETE", "/v3/domains/{id}/config/{group}", "/v3/domains/default/config/ldap", ADMIN),
        c(Identity, "GET", "/v3/domains/{id}/config/{group}/{option}",
          "/v3/domains/default/config/ldap/url", ADMIN),
        c(Identity, "PATCH", "/v3/domains/{id}/config/{group}/{option}",
          "/v3/domains/default/config/ldap/url", ADMIN)
            .body(r#"{"config": {"url": "ldap://authz.invalid"}}"#),
        c(Identity, "DELETE", "/v3/domains/{id}/config/{group}/{option}",
          "/v3/domains/default/config/ldap/url", ADMIN),
        c(Identity, "GET", "/v3/domains/config/default", "/v3/domains/config/default", ADMIN),
        c(Identity, "GET", "/v3/domains/config/{group}/default", "/v3/domains/config/ldap/default", ADMIN),
        c(Identity, "GET", "/v3/domains/config/{group}/{option}/default",
          "/v3/domains/config/ldap/url/default", ADMIN),
        // ---- compute (Nova's default policy)
        c(Compute, "GET", "/", "/", OPEN),
        c(Compute, "GET", "/v2.1", "/v2.1", OPEN),
        c(Compute, "GET", "/v2.1/", "/v2.1/", OPEN),
        c(Compute, "GET", "/v2", "/v2", OPEN),
        c(Compute, "GET", "/v2/", "/v2/", OPEN),
        // Flavors are everyone's; only admins change them.
        c(Compute, "GET", "/v2.1/flavors", "/v2.1/flavors", ANY_TOKEN),
        c(Compute, "POST", "/v2.1/flavors", "/v2.1/flavors", ADMIN)
            .body(r#"{"flavor": {"name": "authz-x", "ram": 64, "vcpus": 1, "disk": 0}}"#),
        c(Compute, "GET", "/v2.1/flavors/detail", "/v2.1/flavors/detail", ANY_TOKEN),
        c(Compute, "GET", "/v2.1/flavors/{id}", "/v2.1/flavors/{flavor}", ANY_TOKEN),
        c(Compute, "DELETE", "/v2.1/flavors/{id}", "/v2.1/flavors/{flavor}", ADMIN),
        c(Compute, "PUT", "/v2.1/flavors/{id}", "/v2.1/flavors/{flavor}", ADMIN)
            .body(r#"{"flavor": {"description": "x"}}"#)
            .headers(NOVA_2_55),
        c(Compute, "GET", "/v2.1/flavors/{id}/os-extra_specs",
          "/v2.1/flavors/{flavor}/os-extra_specs", ANY_TOKEN),
        c(Compute, "POST", "/v2.1/flavors/{id}/os-extra_specs",
          "/v2.1/flavors/{flavor}/os-extra_specs", ADMIN)
            .body(r#"{"extra_specs": {"authz:y": "v"}}"#),
        c(Compute, "GET", "/v2.1/flavors/{id}/os-extra_specs/{key}",
          "/v2.1/flavors/{flavor}/os-extra_specs/authz:k", ANY_TOKEN),
        c(Compute, "PUT", "/v2.1/flavors/{id}/os-extra_specs/{key}",
          "/v2.1/flavors/{flavor}/os-extra_specs/authz:k", ADMIN)
            .body(r#"{"authz:k": "w"}"#),
        c(Compute, "DELETE", "/v2.1/flavors/{id}/os-extra_specs/{key}",
          "/v2.1/flavors/{flavor}/os-extra_specs/authz:k", ADMIN),
        c(Compute, "GET", "/v2.1/flavors/{id}/os-flavor-access",
          "/v2.1/flavors/{flavor}/os-flavor-access", ADMIN),
        c(Compute, "POST", "/v2.1/flavors/{id}/action", "/v2.1/flavors/{flavor}/action", ADMIN)
            .body(r#"{"addTenantAccess": {"tenant": "{project_b}"}}"#),
        c(Compute, "GET", "/v2.1/servers", "/v2.1/servers", LIST),
        c(Compute, "POST", "/v2.1/servers", "/v2.1/servers", CREATE).body(
            r#"{"server": {"name": "authz-x", "flavorRef": "{flavor}", "imageRef": "{image}",
                "networks": [{"uuid": "{net}"}]}}"#,
        ),
        c(Compute, "GET", "/v2.1/servers/detail", "/v2.1/servers/detail", LIST),
        c(Compute, "GET", "/v2.1/servers/{id}", "/v2.1/servers/{server}", READ),
        c(Compute, "PUT", "/v2.1/servers/{id}", "/v2.1/servers/{server}", WRITE)
            .body(r#"{"server": {"name": "authz-y"}}"#),
        c(Compute, "DELETE", "/v2.1/servers/{id}", "/v2.1/servers/{server}", WRITE),
        c(Compute, "POST", "/v2.1/servers/{id}/action", "/v2.1/servers/{server}/action", WRITE)
            .body(r#"{"reboot": {"type": "SOFT"}}"#),
        c(Compute, "GET", "/v2.1/servers/{id}/metadata", "/v2.1/servers/{server}/metadata", READ),
        c(Compute, "POST", "/v2.1/servers/{id}/metadata", "/v2.1/servers/{server}/metadata", WRITE)
            .body(r#"{"metadata": {"k2": "v"}}"#),
        c(Compute, "PUT", "/v2.1/servers/{id}/metadata", "/v2.1/servers/{server}/metadata", WRITE)
            .body(r#"{"metadata": {"k": "v"}}"#),
        c(Compute, "GET", "/v2.1/servers/{id}/metadata/{key}",
          "/v2.1/servers/{server}/metadata/k", READ),
        c(Compute, "PUT", "/v2.1/servers/{id}/metadata/{key}",
          "/v2.1/servers/{server}/metadata/k", WRITE)
            .body(r#"{"meta": {"k": "w"}}"#),
        c(Compute, "DELETE", "/v2.1/servers/{id}/metadata/{key}",
          "/v2.1/servers/{server}/metadata/k", WRITE),
        c(Compute, "GET", "/v2.1/servers/{id}/os-instance-actions",
          "/v2.1/servers/{server}/os-instance-actions", READ),
        c(Compute, "GET", "/v2.1/servers/{id}/os-volume_attachments",
          "/v2.1/servers/{server}/os-volume_attachments", READ),
        c(Compute, "POST", "/v2.1/servers/{id}/os-volume_attachments",
          "/v2.1/servers/{server}/os-volume_attachments", WRITE)
            .body(r#"{"volumeAttachment": {"volumeId": "{volume}"}}"#),
        c(Compute, "GET", "/v2.1/servers/{id}/os-volume_attachments/{volume}",
          "/v2.1/servers/{server}/os-volume_attachments/{attached_volume}", READ),
        c(Compute, "DELETE", "/v2.1/servers/{id}/os-volume_attachments/{volume}",
          "/v2.1/servers/{server}/os-volume_attachments/{attached_volume}", WRITE),
        c(Compute, "GET", "/v2.1/servers/{id}/os-instance-actions/{req}",
          "/v2.1/servers/{server}/os-instance-actions/{action_req}", READ),
        // Issue 12 (cmp-sg): server tags (2.26+), security groups, addresses by network.
        c(Compute, "GET", "/v2.1/servers/{id}/tags", "/v2.1/servers/{server}/tags", READ)
            .headers(V2_26),
        c(Compute, "PUT", "/v2.1/servers/{id}/tags", "/v2.1/servers/{server}/tags", WRITE)
            .headers(V2_26)
            .body(r#"{"tags": ["x"]}"#),
        c(Compute, "DELETE", "/v2.1/servers/{id}/tags", "/v2.1/servers/{server}/tags", WRITE)
            .headers(V2_26),
        // A tag answers 204 when the server has it.
        c(Compute, "GET", "/v2.1/servers/{id}/tags/{tag}",
          "/v2.1/servers/{server}/tags/authz", [Is(401), Is(404), Is(204), Is(403)])
            .headers(V2_26),
        c(Compute, "PUT", "/v2.1/servers/{id}/tags/{tag}",
          "/v2.1/servers/{server}/tags/other", WRITE)
            .headers(V2_26),
        c(Compute, "DELETE", "/v2.1/servers/{id}/tags/{tag}",
          "/v2.1/servers/{server}/tags/authz", WRITE)
            .headers(V2_26),
        c(Compute, "GET", "/v2.1/servers/{id}/os-security-groups",
          "/v2.1/servers/{server}/os-security-groups", READ),
        c(Compute, "GET", "/v2.1/servers/{id}/ips", "/v2.1/servers/{server}/ips", READ),
        c(Compute, "GET", "/v2.1/servers/{id}/ips/{network}",
          "/v2.1/servers/{server}/ips/authz-net", READ),
        // Services (Neutron) only.
        c(Compute, "POST", "/v2.1/os-server-external-events",
          "/v2.1/os-server-external-events", ADMIN)
            .body(r#"{"events": [{"name": "network-changed", "server_uuid": "{server}"}]}"#),
        // Key pairs belong to a user: others have none of that name.
        c(Compute, "GET", "/v2.1/os-keypairs", "/v2.1/os-keypairs",
          [Is(401), Hidden, Hidden, Hidden]),
        c(Compute, "POST", "/v2.1/os-keypairs", "/v2.1/os-keypairs", [Is(401), Own, Own, Own]),
        c(Compute, "GET", "/v2.1/os-keypairs/{name}", "/v2.1/os-keypairs/authz-key",
          [Is(401), Is(404), Is(404), Is(404)]),
        c(Compute, "DELETE", "/v2.1/os-keypairs/{name}", "/v2.1/os-keypairs/authz-key",
          [Is(401), Is(404), Is(404), Is(404)]),
        // The caller's own project's limits.
        c(Compute, "GET", "/v2.1/limits", "/v2.1/limits", LIST),
        c(Compute, "GET", "/v2.1/os-quota-sets/{project}", "/v2.1/os-quota-sets/{project_a}",
          KS_READ),
        c(Compute, "PUT", "/v2.1/os-quota-sets/{project}", "/v2.1/os-quota-sets/{project_a}",
          ADMIN)
            .body(r#"{"quota_set": {"instances": 20}}"#),
        c(Compute, "DELETE", "/v2.1/os-quota-sets/{project}", "/v2.1/os-quota-sets/{project_a}",
          ADMIN),
        c(Compute, "GET", "/v2.1/os-quota-sets/{project}/defaults",
          "/v2.1/os-quota-sets/{project_a}/defaults", ANY_TOKEN),
        c(Compute, "GET", "/v2.1/os-quota-sets/{project}/detail",
          "/v2.1/os-quota-sets/{project_a}/detail", KS_READ),
        c(Compute, "GET", "/v2.1/os-hypervisors", "/v2.1/os-hypervisors", ADMIN),
        c(Compute, "GET", "/v2.1/os-hypervisors/detail", "/v2.1/os-hypervisors/detail", ADMIN),
        c(Compute, "GET", "/v2.1/os-hypervisors/statistics", "/v2.1/os-hypervisors/statistics",
          ADMIN),
        c(Compute, "GET", "/v2.1/os-hypervisors/{id}", "/v2.1/os-hypervisors/{hypervisor}",
          ADMIN),
        c(Compute, "GET", "/v2.1/os-services", "/v2.1/os-services", ADMIN),
        c(Compute, "PUT", "/v2.1/os-services/{id}", "/v2.1/os-services/{compute_service}", ADMIN)
            .body(r#"{"status": "disabled"}"#)
            .headers(NOVA_2_53),
        c(Compute, "DELETE", "/v2.1/os-services/{id}", "/v2.1/os-services/{compute_service}",
          ADMIN)
            .headers(NOVA_2_53),
        c(Compute, "GET", "/v2.1/os-availability-zone", "/v2.1/os-availability-zone",
          ANY_TOKEN),
        c(Compute, "GET", "/v2.1/os-availability-zone/detail",
          "/v2.1/os-availability-zone/detail", ADMIN),
        c(Compute, "GET", "/v2.1/os-server-groups", "/v2.1/os-server-groups", LIST),
        c(Compute, "POST", "/v2.1/os-server-groups", "/v2.1/os-server-groups", CREATE)
            .body(r#"{"server_group": {"name": "authz-x", "policies": ["affinity"]}}"#),
        c(Compute, "GET", "/v2.1/os-server-groups/{id}", "/v2.1/os-server-groups/{group_c}",
          READ),
        c(Compute, "DELETE", "/v2.1/os-server-groups/{id}", "/v2.1/os-server-groups/{group_c}",
          WRITE),
        // ---- issue 12 (cmp-misc): aggregates (admin), tenant usage, floating IP pools
        c(Compute, "GET", "/v2.1/os-aggregates", "/v2.1/os-aggregates", ADMIN),
        c(Compute, "POST", "/v2.1/os-aggregates", "/v2.1/os-aggregates", ADMIN)
            .body(r#"{"aggregate": {"name": "authz-agg", "availability_zone": "authz-az"}}"#),
        c(Compute, "GET", "/v2.1/os-aggregates/{id}", "/v2.1/os-aggregates/1", ADMIN),
        c(Compute, "PUT", "/v2.1/os-aggregates/{id}", "/v2.1/os-aggregates/1", ADMIN)
            .body(r#"{"aggregate": {"name": "authz-agg2"}}"#),
        c(Compute, "DELETE", "/v2.1/os-aggregates/{id}", "/v2.1/os-aggregates/1", ADMIN),
        c(Compute, "POST", "/v2.1/os-aggregates/{id}/action", "/v2.1/os-aggregates/1/action",
          ADMIN)
            .body(r#"{"set_metadata": {"metadata": {"k": "v"}}}"#),
        c(Compute, "GET", "/v2.1/os-simple-tenant-usage", "/v2.1/os-simple-tenant-usage",
          ADMIN),
        // A project's readers read its usage; others are refused (Nova's policy: 403).
        c(Compute, "GET", "/v2.1/os-simple-tenant-usage/{tenant}",
          "/v2.1/os-simple-tenant-usage/{project_a}", KS_READ),
        // Nova's RULE_ANY, scoped to a project (a deprecated proxy, < 2.36).
        c(Compute, "GET", "/v2.1/os-floating-ip-pools", "/v2.1/os-floating-ip-pools", SCOPED),
        // ---- issue 13 (trace-compute): compute's trace events, cloud admins only
        c(Compute, "GET", "/stratus/events", "/stratus/events?request_id=req-authz", ADMIN),
        // ---- image (Glance's default policy; admins see every image)
        c(Image, "GET", "/", "/", OPEN),
        c(Image, "GET", "/versions", "/versions", OPEN),
        c(Image, "GET", "/v2", "/v2", OPEN),
        c(Image, "GET", "/v2/", "/v2/", OPEN),
        c(Image, "GET", "/v2/images", "/v2/images", LIST),
        c(Image, "POST", "/v2/images", "/v2/images", CREATE)
            .body(r#"{"name": "authz-x", "disk_format": "raw", "container_format": "bare"}"#),
        c(Image, "GET", "/v2/images/{id}", "/v2/images/{image}", READ),
        c(Image, "PATCH", "/v2/images/{id}", "/v2/images/{image}", WRITE)
            .body(r#"[{"op": "replace", "path": "/name", "value": "authz-y"}]"#)
            .headers(PATCH_JSON),
        c(Image, "DELETE", "/v2/images/{id}", "/v2/images/{image}", WRITE),
        c(Image, "PUT", "/v2/images/{id}/file", "/v2/images/{image}/file", WRITE)
            .body("\"bits\"")
            .headers(OCTETS),
        c(Image, "GET", "/v2/images/{id}/file", "/v2/images/{image}/file", READ),
        c(Image, "PUT", "/v2/images/{id}/stage", "/v2/images/{image}/stage", WRITE)
            .body("\"bits\"")
            .headers(OCTETS),
        // Glance checks the image's status before the policy: a reader
        // learns that its own project's image is active.
        c(Image, "POST", "/v2/images/{id}/import", "/v2/images/{image}/import",
          [Is(401), Is(404), Is(409), Is(403)])
            .body(r#"{"method": {"name": "glance-direct"}}"#),
        // Discovery: Glance has no policy on it.
        c(Image, "GET", "/v2/info/import", "/v2/info/import", ANY_TOKEN),
        c(Image, "GET", "/v2/info/stores", "/v2/info/stores", ANY_TOKEN),
        c(Image, "POST", "/v2/images/{id}/actions/deactivate",
          "/v2/images/{image}/actions/deactivate", WRITE),
        c(Image, "POST", "/v2/images/{id}/actions/reactivate",
          "/v2/images/{image}/actions/reactivate", WRITE),
        c(Image, "PUT", "/v2/images/{id}/tags/{tag}", "/v2/images/{image}/tags/authz-new", WRITE),
        c(Image, "DELETE", "/v2/images/{id}/tags/{tag}", "/v2/images/{image}/tags/authz-tag",
          WRITE),
        c(Image, "GET", "/v2/images/{id}/members", "/v2/images/{image}/members", READ),
        c(Image, "POST", "/v2/images/{id}/members", "/v2/images/{image}/members", WRITE)
            .body(r#"{"member": "{project_b}"}"#),
        c(Image, "GET", "/v2/images/{id}/members/{member}",
          "/v2/images/{image}/members/{project_c}", READ),
        c(Image, "PUT", "/v2/images/{id}/members/{member}",
          "/v2/images/{image}/members/{project_c}", WRITE)
            .body(r#"{"status": "accepted"}"#),
        c(Image, "DELETE", "/v2/images/{id}/members/{member}",
          "/v2/images/{image}/members/{project_c}", WRITE),
        c(Image, "GET", "/v2/schemas/image", "/v2/schemas/image", ANY_TOKEN),
        c(Image, "GET", "/v2/schemas/images", "/v2/schemas/images", ANY_TOKEN),
        c(Image, "GET", "/v2/schemas/member", "/v2/schemas/member", ANY_TOKEN),
        c(Image, "GET", "/v2/schemas/members", "/v2/schemas/members", ANY_TOKEN),
        // ---- image metadefs and tasks (issue 12): Zed's defaults, reads by
        // any project of what it may see, writes by `metadef_admin`, tasks
        // by `tasks_api_access` (admin). {metadef_ns}: A's private namespace.
        c(Image, "GET", "/v2/metadefs/namespaces", "/v2/metadefs/namespaces", LIST),
        c(Image, "POST", "/v2/metadefs/namespaces", "/v2/metadefs/namespaces", ADMIN)
            .body(r#"{"namespace": "authz-x"}"#),
        c(Image, "GET", "/v2/metadefs/namespaces/{namespace}",
          "/v2/metadefs/namespaces/{metadef_ns}", READ),
        c(Image, "PUT", "/v2/metadefs/namespaces/{namespace}",
          "/v2/metadefs/namespaces/{metadef_ns}", WRITE)
            .body(r#"{"namespace": "authz-y"}"#),
        c(Image, "DELETE", "/v2/metadefs/namespaces/{namespace}",
          "/v2/metadefs/namespaces/{metadef_ns}", WRITE),
        c(Image, "GET", "/v2/metadefs/namespaces/{namespace}/objects",
          "/v2/metadefs/namespaces/{metadef_ns}/objects", READ),
        c(Image, "POST", "/v2/metadefs/namespaces/{namespace}/objects",
          "/v2/metadefs/namespaces/{metadef_ns}/objects", WRITE)
            .body(r#"{"name": "authz-x"}"#),
        c(Image, "DELETE", "/v2/metadefs/namespaces/{namespace}/objects",
          "/v2/metadefs/namespaces/{metadef_ns}/objects", WRITE),
        c(Image, "GET", "/v2/metadefs/namespaces/{namespace}/objects/{object_name}",
          "/v2/metadefs/namespaces/{metadef_ns}/objects/authz-obj", READ),
        c(Image, "PUT", "/v2/metadefs/namespaces/{namespace}/objects/{object_name}",
          "/v2/metadefs/namespaces/{metadef_ns}/objects/authz-obj", WRITE)
            .body(r#"{"name": "authz-y"}"#),
        c(Image, "DELETE", "/v2/metadefs/namespaces/{namespace}/objects/{object_name}",
          "/v2/metadefs/namespaces/{metadef_ns}/objects/authz-obj", WRITE),
        c(Image, "GET", "/v2/metadefs/namespaces/{namespace}/properties",
          "/v2/metadefs/namespaces/{metadef_ns}/properties", READ),
        c(Image, "POST", "/v2/metadefs/namespaces/{namespace}/properties",
          "/v2/metadefs/namespaces/{metadef_ns}/properties", WRITE)
            .body(r#"{"name": "authz-x", "title": "X", "type": "string"}"#),
        c(Image, "DELETE", "/v2/metadefs/namespaces/{namespace}/properties",
          "/v2/metadefs/namespaces/{metadef_ns}/properties", WRITE),
        c(Image, "GET", "/v2/metadefs/namespaces/{namespace}/properties/{property_name}",
          "/v2/metadefs/namespaces/{metadef_ns}/properties/authz-prop", READ),
        c(Image, "PUT", "/v2/metadefs/namespaces/{namespace}/properties/{property_name}",
          "/v2/metadefs/namespaces/{metadef_ns}/properties/authz-prop", WRITE)
            .body(r#"{"name": "authz-y", "title": "Y", "type": "string"}"#),
        c(Image, "DELETE", "/v2/metadefs/namespaces/{namespace}/properties/{property_name}",
          "/v2/metadefs/namespaces/{metadef_ns}/properties/authz-prop", WRITE),
        c(Image, "GET", "/v2/metadefs/namespaces/{namespace}/tags",
          "/v2/metadefs/namespaces/{metadef_ns}/tags", READ),
        c(Image, "POST", "/v2/metadefs/namespaces/{namespace}/tags",
          "/v2/metadefs/namespaces/{metadef_ns}/tags", WRITE)
            .body(r#"{"tags": [{"name": "authz-x"}]}"#),
        c(Image, "DELETE", "/v2/metadefs/namespaces/{namespace}/tags",
          "/v2/metadefs/namespaces/{metadef_ns}/tags", WRITE),
        c(Image, "GET", "/v2/metadefs/namespaces/{namespace}/tags/{tag_name}",
          "/v2/metadefs/namespaces/{metadef_ns}/tags/authz-tag", READ),
        c(Image, "POST", "/v2/metadefs/namespaces/{namespace}/tags/{tag_name}",
          "/v2/metadefs/namespaces/{metadef_ns}/tags/authz-new", WRITE),
        c(Image, "PUT", "/v2/metadefs/namespaces/{namespace}/tags/{tag_name}",
          "/v2/metadefs/namespaces/{metadef_ns}/tags/authz-tag", WRITE)
            .body(r#"{"name": "authz-y"}"#),
        c(Image, "DELETE", "/v2/metadefs/namespaces/{namespace}/tags/{tag_name}",
          "/v2/metadefs/namespaces/{metadef_ns}/tags/authz-tag", WRITE),
        c(Image, "GET", "/v2/metadefs/resource_types", "/v2/metadefs/resource_types", SCOPED),
        c(Image, "GET", "/v2/metadefs/namespaces/{namespace}/resource_types",
          "/v2/metadefs/namespaces/{metadef_ns}/resource_types", READ),
        c(Image, "POST", "/v2/metadefs/namespaces/{namespace}/resource_types",
          "/v2/metadefs/namespaces/{metadef_ns}/resource_types", WRITE)
            .body(r#"{"name": "OS::Nova::Flavor"}"#),
        c(Image, "DELETE", "/v2/metadefs/namespaces/{namespace}/resource_types/{resource_type}",
          "/v2/metadefs/namespaces/{metadef_ns}/resource_types/OS::Glance::Image", WRITE),
        c(Image, "GET", "/v2/schemas/metadefs/namespace", "/v2/schemas/metadefs/namespace",
          ANY_TOKEN),
        c(Image, "GET", "/v2/schemas/metadefs/namespaces", "/v2/schemas/metadefs/namespaces",
          ANY_TOKEN),
        c(Image, "GET", "/v2/schemas/metadefs/object", "/v2/schemas/metadefs/object", ANY_TOKEN),
        c(Image, "GET", "/v2/schemas/metadefs/objects", "/v2/schemas/metadefs/objects",
          ANY_TOKEN),
        c(Image, "GET", "/v2/schemas/metadefs/property", "/v2/schemas/metadefs/property",
          ANY_TOKEN),
        c(Image, "GET", "/v2/schemas/metadefs/properties", "/v2/schemas/metadefs/properties",
          ANY_TOKEN),
        c(Image, "GET", "/v2/schemas/metadefs/resource_type",
          "/v2/schemas/metadefs/resource_type", ANY_TOKEN),
        c(Image, "GET", "/v2/schemas/metadefs/resource_types",
          "/v2/schemas/metadefs/resource_types", ANY_TOKEN),
        c(Image, "GET", "/v2/schemas/metadefs/tag", "/v2/schemas/metadefs/tag", ANY_TOKEN),
        c(Image, "GET", "/v2/schemas/metadefs/tags", "/v2/schemas/metadefs/tags", ANY_TOKEN),
        c(Image, "GET", "/v2/tasks", "/v2/tasks", ADMIN),
        c(Image, "POST", "/v2/tasks", "/v2/tasks", ADMIN).body(
            r#"{"type": "import", "input": {"import_from": "http://127.0.0.1:9/x",
                "import_from_format": "raw", "image_properties": {}}}"#,
        ),
        c(Image, "GET", "/v2/tasks/{task_id}", "/v2/tasks/{task}", ADMIN),
        c(Image, "DELETE", "/v2/tasks/{task_id}", "/v2/tasks/{task}", ADMIN),
        c(Image, "GET", "/v2/schemas/task", "/v2/schemas/task", ANY_TOKEN),
        c(Image, "GET", "/v2/schemas/tasks", "/v2/schemas/tasks", ANY_TOKEN),
        // ---- network (Neutron's default policy; admins see every project)
        c(Network, "GET", "/", "/", OPEN),
        c(Network, "GET", "/v2.0", "/v2.0", ANY_TOKEN),
        c(Network, "GET", "/v2.0/", "/v2.0/", ANY_TOKEN),
        c(Network, "GET", "/v2.0/extensions", "/v2.0/extensions", ANY_TOKEN),
        c(Network, "GET", "/v2.0/extensions/{alias}", "/v2.0/extensions/project-id", ANY_TOKEN),
        c(Network, "GET", "/v2.0/networks", "/v2.0/networks", LIST),
        c(Network, "POST", "/v2.0/networks", "/v2.0/networks", CREATE)
            .body(r#"{"network": {"name": "authz-x"}}"#),
        c(Network, "GET", "/v2.0/networks/{id}", "/v2.0/networks/{net}", READ),
        c(Network, "PUT", "/v2.0/networks/{id}", "/v2.0/networks/{net}", WRITE)
            .body(r#"{"network": {"name": "authz-y"}}"#),
        c(Network, "DELETE", "/v2.0/networks/{id}", "/v2.0/networks/{net}", WRITE),
        c(Network, "GET", "/v2.0/subnets", "/v2.0/subnets", LIST),
        // Into another project's network: that network is not found.
        c(Network, "POST", "/v2.0/subnets", "/v2.0/subnets", WRITE).body(
            r#"{"subnet": {"network_id": "{net}", "cidr": "10.78.0.0/24", "ip_version": 4}}"#,
        ),
        c(Network, "GET", "/v2.0/subnets/{id}", "/v2.0/subnets/{subnet}", READ),
        c(Network, "PUT", "/v2.0/subnets/{id}", "/v2.0/subnets/{subnet}", WRITE)
            .body(r#"{"subnet": {"name": "authz-y"}}"#),
        c(Network, "DELETE", "/v2.0/subnets/{id}", "/v2.0/subnets/{subnet}", WRITE),
        c(Network, "GET", "/v2.0/ports", "/v2.0/ports", LIST),
        c(Network, "POST", "/v2.0/ports", "/v2.0/ports", WRITE)
            .body(r#"{"port": {"network_id": "{net}"}}"#),
        c(Network, "GET", "/v2.0/ports/{id}", "/v2.0/ports/{port}", READ),
        c(Network, "PUT", "/v2.0/ports/{id}", "/v2.0/ports/{port}", WRITE)
            .body(r#"{"port": {"name": "authz-y"}}"#),
        c(Network, "DELETE", "/v2.0/ports/{id}", "/v2.0/ports/{port}", WRITE),
        c(Network, "GET", "/v2.0/security-groups", "/v2.0/security-groups", LIST),
        c(Network, "POST", "/v2.0/security-groups", "/v2.0/security-groups", CREATE)
            .body(r#"{"security_group": {"name": "authz-x"}}"#),
        c(Network, "GET", "/v2.0/security-groups/{id}", "/v2.0/security-groups/{sg}", READ),
        c(Network, "PUT", "/v2.0/security-groups/{id}", "/v2.0/security-groups/{sg}", WRITE)
            .body(r#"{"security_group": {"name": "authz-y"}}"#),
        c(Network, "DELETE", "/v2.0/security-groups/{id}", "/v2.0/security-groups/{sg}", WRITE),
        c(Network, "GET", "/v2.0/security-group-rules", "/v2.0/security-group-rules", LIST),
        c(Network, "POST", "/v2.0/security-group-rules", "/v2.0/security-group-rules", WRITE)
            .body(
                r#"{"security_group_rule": {"security_group_id": "{sg}", "direction": "ingress",
                    "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
                    "port_range_max": 22}}"#,
            ),
        c(Network, "GET", "/v2.0/security-group-rules/{id}", "/v2.0/security-group-rules/{rule}",
          READ),
        c(Network, "DELETE", "/v2.0/security-group-rules/{id}",
          "/v2.0/security-group-rules/{rule}", WRITE),
        // Tags (standard-attr-tag) follow their resource's scoping; each
        // resource of A carries the tag `authz`.
        c(Network, "GET", "/v2.0/networks/{id}/tags", "/v2.0/networks/{net}/tags", READ),
        c(Network, "PUT", "/v2.0/networks/{id}/tags", "/v2.0/networks/{net}/tags", WRITE)
            .body(r#"{"tags": ["authz", "authz-y"]}"#),
        c(Network, "DELETE", "/v2.0/networks/{id}/tags", "/v2.0/networks/{net}/tags", WRITE),
        c(Network, "GET", "/v2.0/networks/{id}/tags/{tag}", "/v2.0/networks/{net}/tags/authz",
          TAG_CHECK),
        c(Network, "PUT", "/v2.0/networks/{id}/tags/{tag}", "/v2.0/networks/{net}/tags/authz-y",
          WRITE),
        c(Network, "DELETE", "/v2.0/networks/{id}/tags/{tag}", "/v2.0/networks/{net}/tags/authz",
          WRITE),
        c(Network, "GET", "/v2.0/subnets/{id}/tags", "/v2.0/subnets/{subnet}/tags", READ),
        c(Network, "PUT", "/v2.0/subnets/{id}/tags", "/v2.0/subnets/{subnet}/tags", WRITE)
            .body(r#"{"tags": ["authz", "authz-y"]}"#),
        c(Network, "DELETE", "/v2.0/subnets/{id}/tags", "/v2.0/subnets/{subnet}/tags", WRITE),
        c(Network, "GET", "/v2.0/subnets/{id}/tags/{tag}", "/v2.0/subnets/{subnet}/tags/authz",
          TAG_CHECK),
        c(Network, "PUT", "/v2.0/subnets/{id}/tags/{tag}", "/v2.0/subnets/{subnet}/tags/authz-y",
          WRITE),
        c(Network, "DELETE", "/v2.0/subnets/{id}/tags/{tag}", "/v2.0/subnets/{subnet}/tags/authz",
          WRITE),
        c(Network, "GET", "/v2.0/ports/{id}/tags", "/v2.0/ports/{port}/tags", READ),
        c(Network, "PUT", "/v2.0/ports/{id}/tags", "/v2.0/ports/{port}/tags", WRITE)
            .body(r#"{"tags": ["authz", "authz-y"]}"#),
        c(Network, "DELETE", "/v2.0/ports/{id}/tags", "/v2.0/ports/{port}/tags", WRITE),
        c(Network, "GET", "/v2.0/ports/{id}/tags/{tag}", "/v2.0/ports/{port}/tags/authz",
          TAG_CHECK),
        c(Network, "PUT", "/v2.0/ports/{id}/tags/{tag}", "/v2.0/ports/{port}/tags/authz-y",
          WRITE),
        c(Network, "DELETE", "/v2.0/ports/{id}/tags/{tag}", "/v2.0/ports/{port}/tags/authz",
          WRITE),
        c(Network, "GET", "/v2.0/security-groups/{id}/tags", "/v2.0/security-groups/{sg}/tags", READ),
        c(Network, "PUT", "/v2.0/security-groups/{id}/tags", "/v2.0/security-groups/{sg}/tags", WRITE)
            .body(r#"{"tags": ["authz", "authz-y"]}"#),
        c(Network, "DELETE", "/v2.0/security-groups/{id}/tags", "/v2.0/security-groups/{sg}/tags", WRITE),
        c(Network, "GET", "/v2.0/security-groups/{id}/tags/{tag}", "/v2.0/security-groups/{sg}/tags/authz",
          TAG_CHECK),
        c(Network, "PUT", "/v2.0/security-groups/{id}/tags/{tag}", "/v2.0/security-groups/{sg}/tags/authz-y",
          WRITE),
        c(Network, "DELETE", "/v2.0/security-groups/{id}/tags/{tag}", "/v2.0/security-groups/{sg}/tags/authz",
          WRITE),
        c(Network, "GET", "/v2.0/quotas", "/v2.0/quotas", ADMIN),
        c(Network, "GET", "/v2.0/quotas/{project}", "/v2.0/quotas/{project_a}", KS_READ),
        c(Network, "PUT", "/v2.0/quotas/{project}", "/v2.0/quotas/{project_a}", ADMIN)
            .body(r#"{"quota": {"network": 20}}"#),
        c(Network, "DELETE", "/v2.0/quotas/{project}", "/v2.0/quotas/{project_a}", ADMIN),
        c(Network, "GET", "/v2.0/quotas/{project}/default", "/v2.0/quotas/{project_a}/default",
          KS_READ),
        c(Network, "GET", "/v2.0/quotas/{project}/details", "/v2.0/quotas/{project_a}/details",
          KS_READ),
        // Agents are admin-only: Neutron filters them out of others' lists
        // and hides them as not found (`up` with the noop driver has none).
        c(Network, "GET", "/v2.0/agents", "/v2.0/agents", [Is(401), Hidden, Hidden, Hidden]),
        c(Network, "GET", "/v2.0/agents/{id}", "/v2.0/agents/{agent}", HIDDEN_ADMIN),
        c(Network, "PUT", "/v2.0/agents/{id}", "/v2.0/agents/{agent}", HIDDEN_ADMIN)
            .body(r#"{"agent": {"admin_state_up": false}}"#),
        c(Network, "DELETE", "/v2.0/agents/{id}", "/v2.0/agents/{agent}", HIDDEN_ADMIN),
        // ---- network, issue 12 (net-a): RBAC policies (A's network shared
        // with project C) and availability zones.
        c(Network, "GET", "/v2.0/rbac-policies", "/v2.0/rbac-policies", LIST),
        c(Network, "POST", "/v2.0/rbac-policies", "/v2.0/rbac-policies", WRITE).body(
            r#"{"rbac_policy": {"object_type": "network", "object_id": "{net}",
                "action": "access_as_shared", "target_tenant": "{project_b}"}}"#,
        ),
        c(Network, "GET", "/v2.0/rbac-policies/{id}", "/v2.0/rbac-policies/{rbac}", READ),
        c(Network, "PUT", "/v2.0/rbac-policies/{id}", "/v2.0/rbac-policies/{rbac}", WRITE)
            .body(r#"{"rbac_policy": {"target_tenant": "{project_b}"}}"#),
        c(Network, "DELETE", "/v2.0/rbac-policies/{id}", "/v2.0/rbac-policies/{rbac}", WRITE),
        c(Network, "GET", "/v2.0/availability_zones", "/v2.0/availability_zones", SCOPED),
        // Subnet pools and address scopes of A (Neutron's owner-or-shared
        // policy), IP availability (admin-only, hidden), service providers
        // (any project reader).
        c(Network, "GET", "/v2.0/subnetpools", "/v2.0/subnetpools", LIST),
        c(Network, "POST", "/v2.0/subnetpools", "/v2.0/subnetpools", CREATE)
            .body(r#"{"subnetpool": {"name": "authz-x", "prefixes": ["10.81.0.0/16"]}}"#),
        c(Network, "GET", "/v2.0/subnetpools/{id}", "/v2.0/subnetpools/{subnetpool}", READ),
        c(Network, "PUT", "/v2.0/subnetpools/{id}", "/v2.0/subnetpools/{subnetpool}", WRITE)
            .body(r#"{"subnetpool": {"name": "authz-y"}}"#),
        c(Network, "DELETE", "/v2.0/subnetpools/{id}", "/v2.0/subnetpools/{subnetpool}", WRITE),
        c(Network, "PUT", "/v2.0/subnetpools/{id}/add_prefixes",
          "/v2.0/subnetpools/{subnetpool}/add_prefixes", WRITE)
            .body(r#"{"prefixes": ["10.82.0.0/16"]}"#),
        c(Network, "PUT", "/v2.0/subnetpools/{id}/remove_prefixes",
          "/v2.0/subnetpools/{subnetpool}/remove_prefixes", WRITE)
            .body(r#"{"prefixes": ["10.80.0.0/24"]}"#),
        c(Network, "GET", "/v2.0/address-scopes", "/v2.0/address-scopes", LIST),
        c(Network, "POST", "/v2.0/address-scopes", "/v2.0/address-scopes", CREATE)
            .body(r#"{"address_scope": {"name": "authz-x", "ip_version": 4}}"#),
        c(Network, "GET", "/v2.0/address-scopes/{id}", "/v2.0/address-scopes/{address_scope}",
          READ),
        c(Network, "PUT", "/v2.0/address-scopes/{id}", "/v2.0/address-scopes/{address_scope}",
          WRITE)
            .body(r#"{"address_scope": {"name": "authz-y"}}"#),
        c(Network, "DELETE", "/v2.0/address-scopes/{id}",
          "/v2.0/address-scopes/{address_scope}", WRITE),
        c(Network, "GET", "/v2.0/network-ip-availabilities", "/v2.0/network-ip-availabilities",
          [Is(401), Hidden, Hidden, Hidden]),
        c(Network, "GET", "/v2.0/network-ip-availabilities/{id}",
          "/v2.0/network-ip-availabilities/{net}", HIDDEN_ADMIN),
        c(Network, "GET", "/v2.0/service-providers", "/v2.0/service-providers", SCOPED),
        // ---- metadata: the proxy's signed headers, never a token.
        c(Metadata, "ANY", "/", "/", OPEN),
        // Without the proxy's headers 400 (whatever token); another
        // project's X-Tenant-ID for the instance 404 (Nova's handler).
        c(Metadata, "ANY", "/{*path}", "/openstack/latest/meta_data.json",
          [Is(400), Is(404), Is(400), Is(400)]),
        // ---- the seed-step events `stratus trace` reads: cloud admins only.
        c(Identity, "GET", "/stratus/events", "/stratus/events?request_id=req-x", ADMIN),
        c(Image, "GET", "/stratus/events", "/stratus/events?request_id=req-x", ADMIN),
        c(Network, "GET", "/stratus/events", "/stratus/events?request_id=req-x", ADMIN),
        c(Volume, "GET", "/stratus/events", "/stratus/events?request_id=req-x", ADMIN),
    ]
    .into_iter()
    .chain(volume_cases())
    .collect()
}

/// The fixtures: ids of what project A owns, and the callers' tokens.
struct World {
    cloud: Cloud,
    vars: BTreeMap<&'static str, String>,
    /// Ids only project A (or its users) may know.
    secrets: Vec<String>,
    alice: String,
    bob: String,
    rita: String,
    nora: String,
    metadata_secret: String,
}

struct Resp {
    status: u16,
    text: String,
}

fn send(
    cloud: &Cloud,
    svc: Svc,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> Resp {
    let url = format!("http://127.0.0.1:{}{path}", cloud.port(svc.port_key()));
    let method = if method == "ANY" { "GET" } else { method };
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut req = reqwest::Client::new().request(method, url);
        if let Some(t) = token {
            req = req.header("x-auth-token", t);
        }
        let mut typed = false;
        for (k, v) in headers {
            typed |= k.eq_ignore_ascii_case("content-type");
            req = req.header(*k, v.as_str());
        }
        if let Some(b) = body {
            if !typed {
                req = req.header("content-type", "application/json");
            }
            req = req.body(b);
        }
        let resp = req.send().await.expect("the cloud answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Resp { status, text }
    })
}

impl World {
    /// `s` with the fixtures filled in, `{own_project}` as the project of
    /// `caller`'s token (project A for callers without a project).
    fn fill_as(&self, s: &str, caller: usize) -> String {
        let own = if caller == OTHER {
            &self.vars["project_b"]
        } else {
            &self.vars["project_a"]
        };
        self.fill(&s.replace("{own_project}", own))
    }

    fn fill(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (k, v) in &self.vars {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }

    /// A JSON call that must succeed; its body.
    fn ok(&self, svc: Svc, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let r = send(
            &self.cloud,
            svc,
            method,
            path,
            Some(token),
            &[],
            body.map(|b| b.to_string().into_bytes()),
        );
        assert!(
            (200..300).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.text
        );
        serde_json::from_str(&r.text).unwrap_or(Value::Null)
    }

    /// A Cinder call (at 3.70, project-less URLs) that must succeed.
    fn cinder(&self, method: &str, path: &str, token: &str, body: Value) -> Value {
        let r = send(
            &self.cloud,
            Svc::Volume,
            method,
            path,
            Some(token),
            &[("openstack-api-version", "volume 3.70".to_owned())],
            Some(body.to_string().into_bytes()),
        );
        assert!(
            (200..300).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.text
        );
        serde_json::from_str(&r.text).unwrap_or(Value::Null)
    }

    /// Waits until alice's `what` at `path` is available.
    fn cinder_wait(&self, path: &str, what: &str) {
        let deadline = std::time::Instant::now() + super::harness::STATE_TIMEOUT;
        loop {
            let r = send(
                &self.cloud,
                Svc::Volume,
                "GET",
                path,
                Some(&self.alice),
                &[("openstack-api-version", "volume 3.70".to_owned())],
                None,
            );
            let b: Value = serde_json::from_str(&r.text).unwrap_or(Value::Null);
            match b[what]["status"].as_str() {
                Some("available") => return,
                Some(s) if s.starts_with("error") => panic!("the fixture {what} failed: {b}"),
                _ => {}
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} not available: {} {}",
                r.status,
                r.text
            );
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }

    /// Cinder's admin-only actions and routes, refused to project A's own
    /// member on its own URLs.
    fn member_refusals(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for (method, path, body) in MEMBER_REFUSED {
            let path = self.fill(path);
            let r = send(
                &self.cloud,
                Svc::Volume,
                method,
                &path,
                Some(&self.alice),
                &[("openstack-api-version", "volume 3.70".to_owned())],
                Some(self.fill(body).into_bytes()),
            );
            let bad = if r.status != 403 {
                Some("wanted 403".to_owned())
            } else {
                wrong_body(Svc::Volume, 403, &r.text)
            };
            failures.extend(bad.map(|b| {
                format!(
                    "Volume {method} {path} (project A's member): {b}, got {} {}",
                    r.status,
                    snippet(&r.text)
                )
            }));
        }
        failures
    }

    /// Project A's URLs with project B's token: Cinder's 400 "Malformed
    /// request url", before anything is looked up.
    fn malformed_urls(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for (method, path) in [
            ("GET", "/v3/{project_a}/volumes"),
            ("GET", "/v3/{project_a}/volumes/{volume}"),
            ("DELETE", "/v3/{project_a}/volumes/{volume}"),
        ] {
            let path = self.fill(path);
            let r = send(
                &self.cloud,
                Svc::Volume,
                method,
                &path,
                Some(&self.bob),
                &[],
                None,
            );
            let ok = r.status == 400
                && wrong_body(Svc::Volume, 400, &r.text).is_none()
                && r.text.contains("Malformed request url");
            if !ok {
                failures.push(format!(
                    "Volume {method} {path} (another project): wanted 400 Malformed request url, \
                     got {} {}",
                    r.status,
                    snippet(&r.text)
                ));
            }
        }
        failures
    }

    fn token(&self, user: &str, password: &str, project: Option<&str>) -> String {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}}});
        if let Some(p) = project {
            auth["scope"] = json!({"project": {"id": p}});
        }
        let url = format!("{}/auth/tokens", self.cloud.identity_url());
        let (status, headers, body) =
            self.cloud
                .http(Method::POST, &url, &[], Some(&json!({ "auth": auth })));
        assert_eq!(status, 201, "token of {user}: {body}");
        headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .expect("X-Subject-Token")
            .to_owned()
    }

    /// `stratus up` (with `env` besides the metadata secret) and project
    /// A's things in it.
    fn build(env: &[(&str, &str)]) -> World {
        let secret = "authz-metadata-secret";
        let mut env = env.to_vec();
        env.push(("STRATUS_NETWORK__METADATA_SECRET", secret));
        let cloud = Cloud::start_http_only(&env);
        let admin = cloud.admin_token();
        let mut w = World {
            cloud,
            vars: BTreeMap::new(),
            secrets: Vec::new(),
            alice: String::new(),
            bob: String::new(),
            rita: String::new(),
            nora: String::new(),
            metadata_secret: secret.to_owned(),
        };
        use Svc::*;
        // Identity: projects A, B, C; alice member of A, rita reader of A,
        // bob member of B, nora with no role at all.
        let project = |w: &World, name: &str| -> String {
            let b = w.ok(
                Identity,
                "POST",
                "/v3/projects",
                &admin,
                Some(json!({"project": {"name": name, "domain_id": "default"}})),
            );
            b["project"]["id"].as_str().expect("id").to_owned()
        };
        let pa = project(&w, "authz-a");
        let pb = project(&w, "authz-b");
        let pc = project(&w, "authz-c");
        let role = |w: &World, name: &str| -> String {
            let b = w.ok(
                Identity,
                "GET",
                &format!("/v3/roles?name={name}"),
                &admin,
                None,
            );
            b["roles"][0]["id"].as_str().expect("role").to_owned()
        };
        let member = role(&w, "member");
        let reader = role(&w, "reader");
        let user = |w: &World, name: &str, grant: Option<(&str, &str)>| -> String {
            let b = w.ok(
                Identity,
                "POST",
                "/v3/users",
                &admin,
                Some(json!({"user": {"name": name, "domain_id": "default",
                    "password": format!("authz-{name}-pw")}})),
            );
            let id = b["user"]["id"].as_str().expect("id").to_owned();
            if let Some((p, r)) = grant {
                w.ok(
                    Identity,
                    "PUT",
                    &format!("/v3/projects/{p}/users/{id}/roles/{r}"),
                    &admin,
                    None,
                );
            }
            id
        };
        let alice = user(&w, "alice", Some((&pa, &member)));
        let bob = user(&w, "bob", Some((&pb, &member)));
        let _rita = user(&w, "rita", Some((&pa, &reader)));
        let nora = user(&w, "nora", None);
        w.alice = w.token("alice", "authz-alice-pw", Some(&pa));
        w.bob = w.token("bob", "authz-bob-pw", Some(&pb));
        w.rita = w.token("rita", "authz-rita-pw", Some(&pa));
        w.nora = w.token("nora", "authz-nora-pw", None);
        let group = w.ok(
            Identity,
            "POST",
            "/v3/groups",
            &admin,
            Some(json!({"group": {"name": "authz-g", "domain_id": "default"}})),
        )["group"]["id"]
            .as_str()
            .expect("group")
            .to_owned();
        w.ok(
            Identity,
            "PUT",
            &format!("/v3/groups/{group}/users/{alice}"),
            &admin,
            None,
        );
        let cred = w.ok(
            Identity,
            "POST",
            &format!("/v3/users/{alice}/application_credentials"),
            &w.alice,
            Some(json!({"application_credential": {"name": "authz-cred"}})),
        )["application_credential"]["id"]
            .as_str()
            .expect("cred")
            .to_owned();
        let services = w.ok(Identity, "GET", "/v3/services", &admin, None);
        let service = services["services"][0]["id"]
            .as_str()
            .expect("service")
            .to_owned();
        let endpoints = w.ok(Identity, "GET", "/v3/endpoints", &admin, None);
        let endpoint = endpoints["endpoints"][0]["id"]
            .as_str()
            .expect("endpoint")
            .to_owned();

        // Compute: a flavor with an extra spec (admin).
        let flavor = w.ok(
            Compute,
            "POST",
            "/v2.1/flavors",
            &admin,
            Some(json!({"flavor": {"name": "authz.tiny", "ram": 64, "vcpus": 1, "disk": 0}})),
        )["flavor"]["id"]
            .as_str()
            .expect("flavor")
            .to_owned();
        w.ok(
            Compute,
            "POST",
            &format!("/v2.1/flavors/{flavor}/os-extra_specs"),
            &admin,
            Some(json!({"extra_specs": {"authz:k": "v"}})),
        );
        // Image of A: shared (members only), with data, a tag and a member.
        let image = w.ok(
            Image,
            "POST",
            "/v2/images",
            &w.alice,
            Some(
                json!({"name": "authz-img", "disk_format": "raw", "container_format": "bare",
                "visibility": "shared", "tags": ["authz-tag"]}),
            ),
        )["id"]
            .as_str()
            .expect("image")
            .to_owned();
        let r = send(
            &w.cloud,
            Image,
            "PUT",
            &format!("/v2/images/{image}/file"),
            Some(&w.alice),
            &[("content-type", "application/octet-stream".to_owned())],
            Some(vec![0u8; 4096]),
        );
        assert_eq!(r.status, 204, "image upload: {}", r.text);
        w.ok(
            Image,
            "POST",
            &format!("/v2/images/{image}/members"),
            &w.alice,
            Some(json!({ "member": pc })),
        );
        // Network of A: network, subnet, port, security group and rule.
        let net = w.ok(
            Network,
            "POST",
            "/v2.0/networks",
            &w.alice,
            Some(json!({"network": {"name": "authz-net"}})),
        )["network"]["id"]
            .as_str()
            .expect("net")
            .to_owned();
        let subnet = w.ok(
            Network,
            "POST",
            "/v2.0/subnets",
            &w.alice,
            Some(json!({"subnet": {"network_id": net, "cidr": "10.77.0.0/24", "ip_version": 4}})),
        )["subnet"]["id"]
            .as_str()
            .expect("subnet")
            .to_owned();
        let port = w.ok(
            Network,
            "POST",
            "/v2.0/ports",
            &w.alice,
            Some(json!({"port": {"network_id": net, "name": "authz-port"}})),
        )["port"]["id"]
            .as_str()
            .expect("port")
            .to_owned();
        let sg = w.ok(
            Network,
            "POST",
            "/v2.0/security-groups",
            &w.alice,
            Some(json!({"security_group": {"name": "authz-sg"}})),
        )["security_group"]["id"]
            .as_str()
            .expect("sg")
            .to_owned();
        let rule = w.ok(
            Network,
            "POST",
            "/v2.0/security-group-rules",
            &w.alice,
            Some(json!({"security_group_rule": {"security_group_id": sg,
                "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                "port_range_min": 80, "port_range_max": 80}})),
        )["security_group_rule"]["id"]
            .as_str()
            .expect("rule")
            .to_owned();
        for path in [
            format!("/v2.0/networks/{net}/tags"),
            format!("/v2.0/subnets/{subnet}/tags"),
            format!("/v2.0/ports/{port}/tags"),
            format!("/v2.0/security-groups/{sg}/tags"),
        ] {
            w.ok(
                Network,
                "PUT",
                &path,
                &w.alice,
                Some(json!({"tags": ["authz"]})),
            );
        }
        // Subnet pools and address scopes: a scope of A with a pool of A.
        let address_scope = w.ok(
            Network,
            "POST",
            "/v2.0/address-scopes",
            &w.alice,
            Some(json!({"address_scope": {"name": "authz-scope", "ip_version": 4}})),
        )["address_scope"]["id"]
            .as_str()
            .expect("address scope")
            .to_owned();
        let subnetpool = w.ok(
            Network,
            "POST",
            "/v2.0/subnetpools",
            &w.alice,
            Some(
                json!({"subnetpool": {"name": "authz-pool", "prefixes": ["10.80.0.0/16"],
                "address_scope_id": address_scope}}),
            ),
        )["subnetpool"]["id"]
            .as_str()
            .expect("subnet pool")
            .to_owned();
        // A server of A, ACTIVE on the fake driver, with a metadata key.
        let server = w.ok(
            Compute,
            "POST",
            "/v2.1/servers",
            &w.alice,
            Some(json!({"server": {"name": "authz-vm", "flavorRef": flavor,
                "imageRef": image, "networks": [{"uuid": net}], "metadata": {"k": "v"}}})),
        )["server"]["id"]
            .as_str()
            .expect("server")
            .to_owned();
        let deadline = std::time::Instant::now() + super::harness::STATE_TIMEOUT;
        loop {
            let b = w.ok(
                Compute,
                "GET",
                &format!("/v2.1/servers/{server}"),
                &w.alice,
                None,
            );
            match b["server"]["status"].as_str() {
                Some("ACTIVE") => break,
                Some("ERROR") => panic!("the fixture server went to ERROR: {b}"),
                _ => {}
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server not ACTIVE: {b}"
            );
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        // A tag on it, for the tag routes' owner reads (2.26).
        let tagged = send(
            &w.cloud,
            Compute,
            "PUT",
            &format!("/v2.1/servers/{server}/tags/authz"),
            Some(w.alice.as_str()),
            &[("OpenStack-API-Version", "compute 2.26".to_owned())],
            None,
        );
        assert_eq!(tagged.status, 201, "{}", tagged.text);
        let actions = w.ok(
            Compute,
            "GET",
            &format!("/v2.1/servers/{server}/os-instance-actions"),
            &w.alice,
            None,
        );
        let action_req = actions["instanceActions"][0]["request_id"]
            .as_str()
            .expect("an instance action")
            .to_owned();
        let group_c = w.ok(
            Compute,
            "POST",
            "/v2.1/os-server-groups",
            &w.alice,
            Some(json!({"server_group": {"name": "authz-group", "policies": ["affinity"]}})),
        )["server_group"]["id"]
            .as_str()
            .expect("server group")
            .to_owned();
        w.ok(
            Compute,
            "POST",
            "/v2.1/os-keypairs",
            &w.alice,
            Some(json!({"keypair": {"name": "authz-key", "public_key":
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f authz"}})),
        );
        let hypervisors = w.ok(Compute, "GET", "/v2.1/os-hypervisors", &admin, None);
        let hypervisor = hypervisors["hypervisors"][0]["id"]
            .to_string()
            .replace('"', "");
        let services = w.ok(Compute, "GET", "/v2.1/os-services", &admin, None);
        let compute_service = services["services"][0]["id"].to_string().replace('"', "");
        // Issue 12 (net-a): A's network shared with project C.
        let rbac = w.ok(
            Network,
            "POST",
            "/v2.0/rbac-policies",
            &w.alice,
            Some(
                json!({"rbac_policy": {"object_type": "network", "object_id": net,
                "action": "access_as_shared", "target_tenant": pc}}),
            ),
        )["rbac_policy"]["id"]
            .as_str()
            .expect("rbac policy")
            .to_owned();
        let agents = w.ok(Network, "GET", "/v2.0/agents", &admin, None);
        let agent = agents["agents"][0]["id"]
            .as_str()
            .unwrap_or("00000000-0000-4000-8000-000000000000")
            .to_owned();

        // Volume of A: a volume with metadata, its snapshot, a second
        // volume reserved by an attachment; a public type with a
        // user-visible extra spec (admin).
        let volume = w.cinder(
            "POST",
            "/v3/volumes",
            &w.alice,
            json!({"volume":
            {"size": 1, "name": "authz-vol", "metadata": {"k": "v"}}}),
        )["volume"]["id"]
            .as_str()
            .expect("volume")
            .to_owned();
        w.cinder_wait(&format!("/v3/volumes/{volume}"), "volume");
        let snapshot = w.cinder(
            "POST",
            "/v3/snapshots",
            &w.alice,
            json!({"snapshot":
            {"volume_id": volume, "name": "authz-snap"}}),
        )["snapshot"]["id"]
            .as_str()
            .expect("snapshot")
            .to_owned();
        w.cinder_wait(&format!("/v3/snapshots/{snapshot}"), "snapshot");
        let volume2 = w.cinder(
            "POST",
            "/v3/volumes",
            &w.alice,
            json!({"volume":
            {"size": 1, "name": "authz-vol2"}}),
        )["volume"]["id"]
            .as_str()
            .expect("volume")
            .to_owned();
        w.cinder_wait(&format!("/v3/volumes/{volume2}"), "volume");
        let attachment = w.cinder(
            "POST",
            "/v3/attachments",
            &w.alice,
            json!({"attachment":
            {"volume_uuid": volume2, "instance_uuid": server}}),
        )["attachment"]["id"]
            .as_str()
            .expect("attachment")
            .to_owned();
        // A third volume, attached to the server through compute.
        let attached_volume = w.cinder(
            "POST",
            "/v3/volumes",
            &w.alice,
            json!({"volume": {"size": 1, "name": "authz-vol3"}}),
        )["volume"]["id"]
            .as_str()
            .expect("volume")
            .to_owned();
        w.cinder_wait(&format!("/v3/volumes/{attached_volume}"), "volume");
        w.ok(
            Compute,
            "POST",
            &format!("/v2.1/servers/{server}/os-volume_attachments"),
            &w.alice,
            Some(json!({"volumeAttachment": {"volumeId": attached_volume}})),
        );
        let vtype = w.cinder(
            "POST",
            "/v3/types",
            &admin,
            json!({"volume_type":
            {"name": "authz-type", "extra_specs": {"multiattach": "<is> False"}}}),
        )["volume_type"]["id"]
            .as_str()
            .expect("type")
            .to_owned();

        let extras = identity_extras_fixtures(&w, &admin, &pa, &alice, &service);
        let alice_token = w.alice.clone();
        for (k, v) in [
            ("project_a", pa.clone()),
            ("project_b", pb),
            ("project_c", pc),
            ("alice", alice),
            ("bob", bob),
            ("nora", nora),
            ("member_role", member),
            ("reader_role", reader),
            ("group", group.clone()),
            ("cred", cred.clone()),
            ("service", service),
            ("endpoint", endpoint),
            ("alice_token", alice_token),
            ("flavor", flavor),
            ("image", image.clone()),
            ("net", net.clone()),
            ("subnet", subnet.clone()),
            ("port", port.clone()),
            ("sg", sg.clone()),
            ("rule", rule.clone()),
            ("subnetpool", subnetpool.clone()),
            ("address_scope", address_scope.clone()),
            ("server", server.clone()),
            ("action_req", action_req),
            ("group_c", group_c.clone()),
            ("hypervisor", hypervisor),
            ("compute_service", compute_service),
            ("agent", agent),
            ("rbac", rbac.clone()),
            ("volume", volume.clone()),
            ("snapshot", snapshot.clone()),
            ("attachment", attachment.clone()),
            ("attached_volume", attached_volume.clone()),
            ("vtype", vtype),
        ] {
            w.vars.insert(k, v);
        }
        for (k, v) in &extras {
            w.vars.insert(k, v.clone());
        }
        let metadefs = w.metadef_fixtures(&admin, &pa);
        w.secrets.extend(metadefs.iter().map(|(_, v)| v.clone()));
        w.vars.extend(metadefs);
        w.secrets.extend([
            rbac,
            pa,
            cred,
            image,
            net,
            subnet,
            port,
            sg,
            rule,
            subnetpool,
            address_scope,
            server,
            group_c,
            "authz-key".to_owned(),
            volume,
            volume2,
            attached_volume,
            snapshot,
            attachment,
        ]);
        // Project A's limit must not show in another project's list.
        w.secrets.extend(
            extras
                .iter()
                .filter(|(k, _)| *k == "limit")
                .map(|(_, v)| v.clone()),
        );
        w
    }

    /// The token and extra headers of `caller` for `case`.
    fn caller(&self, case: &Case, caller: usize) -> (Option<String>, Vec<(&'static str, String)>) {
        let mut headers: Vec<(&'static str, String)> = case
            .headers
            .iter()
            .map(|(k, v)| (*k, self.fill_as(v, caller)))
            .collect();
        if case.svc == Svc::Metadata {
            // The metadata API trusts the proxy's signed headers only.
            if caller == OTHER {
                let server = &self.vars["server"];
                headers.push(("x-instance-id", server.clone()));
                headers.push(("x-tenant-id", self.vars["project_b"].clone()));
                headers.push((
                    "x-instance-id-signature",
                    stratus_metadata::sign_instance_id(&self.metadata_secret, server),
                ));
                return (None, headers);
            }
        }
        let token = match caller {
            NONE => None,
            OTHER => Some(self.bob.clone()),
            READER => Some(self.rita.clone()),
            _ => Some(self.nora.clone()),
        };
        (token, headers)
    }

    /// Sends `case` as `caller`; a description of what is wrong, if anything.
    fn check(&self, case: &Case, caller: usize) -> Option<String> {
        let want = case.want[caller];
        if want == Own {
            return None;
        }
        let path = self.fill_as(case.path, caller);
        let body = case.body.map(|b| self.fill_as(b, caller).into_bytes());
        let (token, headers) = self.caller(case, caller);
        let r = send(
            &self.cloud,
            case.svc,
            case.method,
            &path,
            token.as_deref(),
            &headers,
            body,
        );
        let who = CALLERS[caller];
        let what = format!("{:?} {} {path} ({who})", case.svc, case.method);
        let bad = match want {
            Is(s) if r.status != s => Some(format!("wanted {s}")),
            Is(s) => wrong_body(case.svc, s, &r.text),
            Open if !(200..400).contains(&r.status) => Some("wanted an open route".into()),
            Hidden if r.status != 200 => Some("wanted 200".into()),
            Hidden => self.leak(&path, &r.text),
            _ => None,
        };
        // An unscoped token must never see A's things either.
        let bad = bad.or_else(|| {
            (caller == UNSCOPED && (200..300).contains(&r.status))
                .then(|| self.leak(&path, &r.text))
                .flatten()
        });
        bad.map(|b| format!("{what}: {b}, got {} {}", r.status, snippet(&r.text)))
    }

    /// An id of project A in `text` that the caller did not send itself.
    fn leak(&self, path: &str, text: &str) -> Option<String> {
        self.secrets
            .iter()
            .find(|id| text.contains(id.as_str()) && !path.contains(id.as_str()))
            .map(|id| format!("leaks {id} of project A"))
    }

    /// A 404 for another project means something only if the owner reads
    /// the same path.
    fn owner_reads(&self, case: &Case) -> Option<String> {
        // Admin-only ones have no owner to ask (and `up` runs no agent).
        if case.method != "GET"
            || case.want[OTHER] != Is(404)
            || case.want == HIDDEN_ADMIN
            || case.svc == Svc::Metadata
        {
            return None;
        }
        let path = self.fill_as(case.path, READER);
        let headers: Vec<(&str, String)> = case
            .headers
            .iter()
            .map(|(k, v)| (*k, self.fill(v)))
            .collect();
        let r = send(
            &self.cloud,
            case.svc,
            "GET",
            &path,
            Some(&self.alice),
            &headers,
            None,
        );
        (!(200..300).contains(&r.status)).then(|| {
            format!(
                "{:?} GET {path}: the owner gets {} {} (a bad fixture?)",
                case.svc,
                r.status,
                snippet(&r.text)
            )
        })
    }
}

/// Identity extras (issue 12): a registered limit, project A's limit of
/// it, an endpoint group, and an access rule of alice's.
fn identity_extras_fixtures(
    w: &World,
    admin: &str,
    project_a: &str,
    alice: &str,
    service: &str,
) -> Vec<(&'static str, String)> {
    use Svc::Identity;
    let reg = w.ok(
        Identity,
        "POST",
        "/v3/registered_limits",
        admin,
        Some(json!({"registered_limits": [
            {"service_id": service, "resource_name": "authz-volumes", "default_limit": 10}]})),
    )["registered_limits"][0]["id"]
        .as_str()
        .expect("registered limit")
        .to_owned();
    let limit = w.ok(
        Identity,
        "POST",
        "/v3/limits",
        admin,
        Some(
            json!({"limits": [{"project_id": project_a, "service_id": service,
            "resource_name": "authz-volumes", "resource_limit": 5}]}),
        ),
    )["limits"][0]["id"]
        .as_str()
        .expect("limit")
        .to_owned();
    let group = w.ok(
        Identity,
        "POST",
        "/v3/OS-EP-FILTER/endpoint_groups",
        admin,
        Some(json!({"endpoint_group": {"name": "authz-eg", "filters": {"interface": "admin"}}})),
    )["endpoint_group"]["id"]
        .as_str()
        .expect("endpoint group")
        .to_owned();
    let rule = w.ok(
        Identity,
        "POST",
        &format!("/v3/users/{alice}/application_credentials"),
        &w.alice,
        Some(
            json!({"application_credential": {"name": "authz-cred-rules", "access_rules": [
            {"service": "compute", "method": "GET", "path": "/v2.1/servers"}]}}),
        ),
    )["application_credential"]["access_rules"][0]["id"]
        .as_str()
        .expect("access rule")
        .to_owned();
    vec![
        ("registered_limit", reg),
        ("limit", limit),
        ("endpoint_group", group),
        ("access_rule", rule),
    ]
}

impl World {
    /// Issue 12's fixtures: A's private namespace (made by an admin, as
    /// only admins write metadefs) with an object, a property, a tag and an
    /// association, and a task (which fails: nothing is allowed to import).
    fn metadef_fixtures(&self, admin: &str, pa: &str) -> Vec<(&'static str, String)> {
        self.ok(
            Svc::Image,
            "POST",
            "/v2/metadefs/namespaces",
            admin,
            Some(
                json!({"namespace": "authz-ns-a", "owner": pa, "visibility": "private",
                "objects": [{"name": "authz-obj"}],
                "properties": {"authz-prop": {"title": "P", "type": "string"}},
                "tags": [{"name": "authz-tag"}],
                "resource_type_associations": [{"name": "OS::Glance::Image"}]}),
            ),
        );
        let task = self.ok(
            Svc::Image,
            "POST",
            "/v2/tasks",
            admin,
            Some(
                json!({"type": "import", "input": {"import_from": "http://127.0.0.1:9/x",
                "import_from_format": "raw", "image_properties": {}}}),
            ),
        )["id"]
            .as_str()
            .expect("task")
            .to_owned();
        vec![("metadef_ns", "authz-ns-a".to_owned()), ("task", task)]
    }
}

fn snippet(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Each service answers errors with its own body.
fn wrong_body(svc: Svc, status: u16, text: &str) -> Option<String> {
    if text.is_empty() || !(400..500).contains(&status) || (status == 400 && svc != Svc::Volume) {
        return None;
    }
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    // Cinder's fault body: `{"<fault>": {"code": N, "message": "..."}}`.
    let cinder = |fault: &str| v[fault]["code"] == status && v[fault]["message"].is_string();
    let ok = match (svc, status) {
        (_, 401) => v["error"]["code"] == 401,
        (Svc::Volume, 400) => cinder("badRequest"),
        (Svc::Volume, 403) => cinder("forbidden"),
        (Svc::Volume, 404) => cinder("itemNotFound"),
        (Svc::Compute, 403) => v["forbidden"]["code"] == 403,
        (Svc::Compute, 404) => v["itemNotFound"]["code"] == 404,
        (Svc::Network, 403 | 404) => v["NeutronError"]["type"].is_string(),
        (Svc::Identity | Svc::Image, _) => v["error"]["code"] == status,
        _ => true,
    };
    (!ok).then(|| format!("not {svc:?}'s error body"))
}

fn key(svc: Svc, method: &str, path: &str) -> (Svc, String, String) {
    (svc, method.to_owned(), path.to_owned())
}

/// The expectations name exactly the routes the services mount: a new
/// route needs an entry above, a removed one loses its entry.
#[test]
fn every_route_has_an_expectation() {
    let cases = expectations();
    let mut listed = BTreeSet::new();
    for c in &cases {
        assert!(
            listed.insert(key(c.svc, c.method, c.template)),
            "{:?} {} {} is listed twice",
            c.svc,
            c.method,
            c.template
        );
    }
    let mut mounted = BTreeSet::new();
    for svc in Svc::ALL {
        for r in svc.table() {
            mounted.insert(key(svc, &r.method, &r.path));
        }
    }
    let missing: Vec<_> = mounted.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&mounted).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "routes without an authorisation expectation in tests/e2e/authz.rs: {missing:#?}\n\
         expectations for routes no service mounts: {stale:#?}"
    );
}

/// Every route, four callers that must not get project A's things.
#[test]
fn every_route_refuses_what_it_must() {
    walk(&[]);
}

/// The same walk with every service on PostgreSQL.
#[test]
fn every_route_refuses_what_it_must_on_postgresql() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (url, name) = match rt.block_on(stratus_db::testing::create_postgres_database()) {
        Ok(Some(db)) => db,
        Ok(None) => {
            eprintln!("PostgreSQL testing is off (STRATUS_TEST_POSTGRES=off); skipping");
            return;
        }
        Err(e) if std::env::var("STRATUS_TEST_REQUIRE_POSTGRES").is_err() => {
            eprintln!("PostgreSQL not reachable ({e}); skipping");
            return;
        }
        Err(e) => panic!("PostgreSQL is required but not reachable: {e}"),
    };
    let result = std::panic::catch_unwind(|| walk(&[("STRATUS_DATABASE__URL", &url)]));
    rt.block_on(stratus_db::testing::drop_postgres_database(&name));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn walk(env: &[(&str, &str)]) {
    let w = World::build(env);
    let mut failures = Vec::new();
    for case in &expectations() {
        failures.extend(w.owner_reads(case));
    }
    // Reads first, then the writes (a write wrongly allowed must not hide
    // a read's failure).
    let cases = expectations();
    let (reads, writes): (Vec<&Case>, Vec<&Case>) = cases
        .iter()
        .partition(|c| matches!(c.method, "GET" | "HEAD" | "ANY"));
    for case in reads.into_iter().chain(writes) {
        for caller in [NONE, OTHER, READER, UNSCOPED] {
            failures.extend(w.check(case, caller));
        }
    }
    failures.extend(w.member_refusals());
    failures.extend(w.malformed_urls());
    assert!(
        failures.is_empty(),
        "{} authorisation failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Issue 9: a user with no role takes an unscoped token and lists servers.
#[test]
fn an_unscoped_token_lists_no_servers() {
    let w = World::build(&[]);
    for path in [
        "/v2.1/servers",
        "/v2.1/servers/detail",
        "/v2.1/servers/detail?all_tenants=1",
    ] {
        let r = send(
            &w.cloud,
            Svc::Compute,
            "GET",
            path,
            Some(&w.nora),
            &[],
            None,
        );
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        let v: Value = serde_json::from_str(&r.text).expect("JSON");
        assert_eq!(v["forbidden"]["code"], 403, "{}", r.text);
        assert!(!r.text.contains(&w.vars["server"]));
    }
    // What Keystone lets an unscoped token do still works.
    let nora = w.vars["nora"].clone();
    for path in [
        "/v3/auth/projects".to_owned(),
        format!("/v3/users/{nora}/projects"),
    ] {
        let r = send(
            &w.cloud,
            Svc::Identity,
            "GET",
            &path,
            Some(&w.nora),
            &[],
            None,
        );
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
    // The owner and an admin (with all_tenants) still see the server.
    let server = w.vars["server"].clone();
    let r = send(
        &w.cloud,
        Svc::Compute,
        "GET",
        "/v2.1/servers",
        Some(&w.alice),
        &[],
        None,
    );
    assert!(r.text.contains(&server), "{}", r.text);
    let admin = w.cloud.admin_token();
    let r = send(
        &w.cloud,
        Svc::Compute,
        "GET",
        "/v2.1/servers",
        Some(&admin),
        &[],
        None,
    );
    assert!(
        !r.text.contains(&server),
        "an admin without all_tenants: {}",
        r.text
    );
    let r = send(
        &w.cloud,
        Svc::Compute,
        "GET",
        "/v2.1/servers?all_tenants=1",
        Some(&admin),
        &[],
        None,
    );
    assert!(r.text.contains(&server), "{}", r.text);
}
