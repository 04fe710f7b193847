//! Discovery: `GET /` (versions), `GET /v2.0/` (resources) and the
//! extensions this server really implements, described as Neutron does.

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use crate::error::{NetworkError, Result};

/// `(alias, name, description, updated)` of every extension implemented.
const EXTENSIONS: &[(&str, &str, &str, &str)] = &[
    ("agent", "agent", "The agent management extension.", "2013-02-03T10:00:00-00:00"),
    ("binding", "Port Binding",
     "Expose port bindings of a virtual port to external application", "2014-02-03T10:00:00-00:00"),
    ("security-group", "security-group", "The security groups extension.", "2012-10-05T10:00:00-00:00"),
    ("quotas", "Quota management support",
     "Expose functions for quotas management per tenant", "2012-07-29T10:00:00-00:00"),
    ("quota_details", "Quota details management support",
     "Expose functions for quotas usage statistics per project", "2017-02-10T10:00:00-00:00"),
    ("port-security", "Port Security", "Provides port security", "2012-07-23T10:00:00-00:00"),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource.", "2015-03-25T10:00:00-00:00"),
    ("project-id", "project_id field enabled",
     "Extension that indicates that project_id field is enabled.", "2016-09-09T09:09:09-09:09"),
    ("standard-attr-description", "standard-attr-description",
     "Extension to add descriptions to standard attributes", "2016-02-10T10:00:00-00:00"),
    ("standard-attr-timestamp", "Resource timestamps",
     "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.",
     "2016-09-12T10:00:00-00:00"),
    ("standard-attr-revisions", "Resource revision numbers",
     "This extension will display the revision number of neutron resources.", "2016-04-11T10:00:00-00:00"),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled.",
     "2016-06-12T00:00:00-00:00"),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled.",
     "2016-06-12T00:00:00-00:00"),
    ("standard-attr-tag", "Tag support for resources with standard attribute: subnet, network, port, security_group",
     "Enables to set tag on resources with standard attribute.", "2017-01-01T00:00:00-00:00"),
    ("tag-ports-during-bulk-creation", "Tag Ports During Bulk Creation",
     "Allow to tag ports during bulk creation", "2019-12-29T19:00:00-00:00"),
    // Issue 12 (net-a).
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks",
     "2012-09-07T10:00:00-00:00"),
    ("external-net", "Neutron external network", "Adds external network attribute to network resource.",
     "2013-01-14T10:00:00-00:00"),
    ("rbac-policies", "RBAC Policies", "Allows creation and modification of policies that control tenant access to resources.",
     "2015-06-17T12:15:12-00:00"),
    ("availability_zone", "Availability Zone", "The availability zone extension.",
     "2015-01-01T10:00:00-00:00"),
    ("network_availability_zone", "Network Availability Zone", "Availability zone support for network.",
     "2015-01-01T10:00:00-00:00"),
    // Subnet pools, address scopes, IP availability, service providers.
    ("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool",
     "2015-03-30T10:00:00-00:00"),
    ("default-subnetpools", "Default Subnetpools",
     "Provides ability to mark and use a subnetpool as the default.", "2016-02-18T18:00:00-00:00"),
    ("subnetpool-prefix-ops", "Subnet Pool Prefix Operations",
     "Provides support for adjusting the prefix list of subnet pools", "2019-02-08T10:00:00-00:00"),
    ("address-scope", "Address scope", "Address scopes extension.", "2015-07-26T10:00:00-00:00"),
    ("network-ip-availability", "Network IP Availability",
     "Provides IP availability data for each network and subnet.", "2015-09-24T00:00:00-00:00"),
    ("service-type", "Neutron Service Type Management",
     "API for retrieving service providers for Neutron advanced services", "2013-01-20T00:00:00-00:00"),
];

fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost:9696");
    format!("http://{host}")
}

pub async fn versions(headers: HeaderMap) -> Json<Value> {
    Json(json!({"versions": [{
        "id": "v2.0",
        "status": "CURRENT",
        "links": [{"href": format!("{}/v2.0/", base(&headers)), "rel": "self"}],
    }]}))
}

pub async fn resources(headers: HeaderMap) -> Json<Value> {
    let b = base(&headers);
    let res: Vec<Value> = [
        ("subnet", "subnets"),
        ("subnetpool", "subnetpools"),
        ("network", "networks"),
        ("port", "ports"),
        ("security_group", "security_groups"),
        ("security_group_rule", "security_group_rules"),
        ("quota", "quotas"),
        ("agent", "agents"),
        ("rbac_policy", "rbac_policies"),
        ("availability_zone", "availability_zones"),
    ]
    .iter()
    .map(|(name, coll)| {
        json!({"name": name, "collection": coll,
               "links": [{"href": format!("{b}/v2.0/{coll}"), "rel": "self"}]})
    })
    .collect();
    Json(json!({"resources": res}))
}

fn view(e: &(&str, &str, &str, &str)) -> Value {
    json!({"alias": e.0, "name": e.1, "description": e.2, "updated": e.3, "links": []})
}

pub async fn list() -> Json<Value> {
    Json(json!({"extensions": EXTENSIONS.iter().map(view).collect::<Vec<_>>()}))
}

pub async fn show(Path(alias): Path<String>) -> Result<Json<Value>> {
    EXTENSIONS
        .iter()
        .find(|e| e.0 == alias)
        .map(|e| Json(json!({"extension": view(e)})))
        .ok_or_else(|| {
            NetworkError::NotFound(format!("Extension with alias {alias} does not exist"))
        })
}
