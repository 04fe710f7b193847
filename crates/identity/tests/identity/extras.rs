//! Keystone's extensions of issue 12: unified limits, endpoint filters and
//! their effect on the catalog, domain-specific configuration, and access
//! rules of application credentials.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::common::Cloud;

async fn service_id(c: &Cloud, ty: &str) -> String {
    let r = c.get(&format!("/v3/services?type={ty}"), &c.admin).await;
    r.body["services"][0]["id"]
        .as_str()
        .expect("service")
        .to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("list")
        .iter()
        .filter_map(|x| x["id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn registered_limits_and_limits() {
    for c in super::common::clouds().await {
        let a = &c.admin;
        let nova = service_id(&c, "compute").await;
        let cinder = service_id(&c, "block-storage").await;

        // Create two at once; the answer has no links member.
        let r = c
            .post(
                "/v3/registered_limits",
                a,
                json!({"registered_limits": [
                    {"service_id": nova, "region_id": "RegionOne", "resource_name": "cores",
                     "default_limit": 10, "description": "cores"},
                    {"service_id": cinder, "resource_name": "volumes", "default_limit": -1}]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", c.name, r.body);
        assert!(r.body.get("links").is_none());
        let regs = r.body["registered_limits"]
            .as_array()
            .expect("list")
            .clone();
        assert_eq!(regs.len(), 2);
        assert_eq!(regs[0]["region_id"], "RegionOne");
        assert_eq!(regs[1]["region_id"], Value::Null);
        assert_eq!(regs[1]["default_limit"], -1);
        let cores = regs[0]["id"].as_str().expect("id").to_owned();

        // Duplicates (also without a region), unknown service or region,
        // bad bodies; nothing half-written.
        for (body, status) in [
            (
                json!({"registered_limits": [{"service_id": cinder, "resource_name": "volumes", "default_limit": 1}]}),
                StatusCode::CONFLICT,
            ),
            (
                json!({"registered_limits": [
                    {"service_id": nova, "resource_name": "ram", "default_limit": 1},
                    {"service_id": "nope", "resource_name": "x", "default_limit": 1}]}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"registered_limits": [{"service_id": nova, "region_id": "Nowhere", "resource_name": "x", "default_limit": 1}]}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"registered_limits": [{"service_id": nova, "resource_name": "x", "default_limit": -2}]}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"registered_limits": [{"service_id": nova, "resource_name": "x", "default_limit": 1, "bogus": 1}]}),
                StatusCode::BAD_REQUEST,
            ),
            (json!({"registered_limits": []}), StatusCode::BAD_REQUEST),
            (
                json!({"registered_limits": [{"service_id": nova, "default_limit": 1}]}),
                StatusCode::BAD_REQUEST,
            ),
        ] {
            c.post("/v3/registered_limits", a, body.clone())
                .await
                .assert_error(status);
        }
        let r = c.get("/v3/registered_limits?resource_name=ram", a).await;
        assert_eq!(r.body["registered_limits"], json!([]), "{}", c.name);

        // Filters, show, update.
        let r = c
            .get(&format!("/v3/registered_limits?service_id={nova}"), a)
            .await;
        assert_eq!(ids(&r.body["registered_limits"]), vec![cores.clone()]);
        let r = c.get("/v3/registered_limits?region_id=RegionOne", a).await;
        assert_eq!(ids(&r.body["registered_limits"]), vec![cores.clone()]);
        let r = c
            .patch(
                &format!("/v3/registered_limits/{cores}"),
                a,
                json!({"registered_limit": {"default_limit": 20, "description": null}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["registered_limit"]["default_limit"], 20);
        assert_eq!(r.body["registered_limit"]["description"], Value::Null);
        let r = c.get("/v3/registered_limits/nope", a).await;
        r.assert_error(StatusCode::NOT_FOUND);
        assert_eq!(
            r.body["error"]["message"],
            "Could not find registered limit for nope."
        );

        // Limits: a project's and a domain's.
        let (_, pid, member) = c.project_member("lim-user", "pw", "lim-proj").await;
        let r = c
            .post(
                "/v3/limits",
                a,
                json!({"limits": [
                    {"project_id": pid, "service_id": nova, "region_id": "RegionOne",
                     "resource_name": "cores", "resource_limit": 5},
                    {"domain_id": "default", "service_id": cinder, "resource_name": "volumes",
                     "resource_limit": 100, "description": "d"}]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", c.name, r.body);
        let lims = r.body["limits"].as_array().expect("list").clone();
        assert_eq!(lims[0]["project_id"], pid.as_str());
        assert_eq!(lims[0]["domain_id"], Value::Null);
        assert_eq!(lims[0]["resource_name"], "cores");
        assert_eq!(lims[1]["domain_id"], "default");
        let plimit = lims[0]["id"].as_str().expect("id").to_owned();
        let dlimit = lims[1]["id"].as_str().expect("id").to_owned();

        // No registered limit: 403; duplicate: 409; unknown project: 400;
        // both or neither of project and domain: 400.
        c.post(
            "/v3/limits",
            a,
            json!({"limits": [{"project_id": pid, "service_id": nova, "resource_name": "cores", "resource_limit": 1}]}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        c.post(
            "/v3/limits",
            a,
            json!({"limits": [{"project_id": pid, "service_id": nova, "region_id": "RegionOne", "resource_name": "cores", "resource_limit": 1}]}),
        )
        .await
        .assert_error(StatusCode::CONFLICT);
        c.post(
            "/v3/limits",
            a,
            json!({"limits": [{"project_id": "nope", "service_id": cinder, "resource_name": "volumes", "resource_limit": 1}]}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        c.post(
            "/v3/limits",
            a,
            json!({"limits": [{"project_id": pid, "domain_id": "default", "service_id": cinder, "resource_name": "volumes", "resource_limit": 1}]}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);

        // The admin lists all, with filters; a member only its project's.
        let r = c.get("/v3/limits", a).await;
        assert_eq!(r.body["limits"].as_array().map(Vec::len), Some(2));
        let r = c.get(&format!("/v3/limits?project_id={pid}"), a).await;
        assert_eq!(ids(&r.body["limits"]), vec![plimit.clone()]);
        let r = c.get("/v3/limits?domain_id=default", a).await;
        assert_eq!(ids(&r.body["limits"]), vec![dlimit.clone()]);
        let r = c.get("/v3/limits?resource_name=volumes", a).await;
        assert_eq!(ids(&r.body["limits"]), vec![dlimit.clone()]);
        let r = c.get("/v3/limits", &member).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(ids(&r.body["limits"]), vec![plimit.clone()]);
        assert_eq!(
            c.get(&format!("/v3/limits/{plimit}"), &member).await.status,
            StatusCode::OK
        );
        c.get(&format!("/v3/limits/{dlimit}"), &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // Members read registered limits and the model, and write nothing.
        assert_eq!(
            c.get("/v3/registered_limits", &member).await.status,
            StatusCode::OK
        );
        let r = c.get("/v3/limits/model", &member).await;
        assert_eq!(r.body["model"]["name"], "flat");
        c.patch(
            &format!("/v3/limits/{plimit}"),
            &member,
            json!({"limit": {"resource_limit": 9}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);

        // Update a limit: only its value and description.
        let r = c
            .patch(
                &format!("/v3/limits/{plimit}"),
                a,
                json!({"limit": {"resource_limit": 0, "description": "none"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["limit"]["resource_limit"], 0);
        assert_eq!(r.body["limit"]["description"], "none");
        c.patch(
            &format!("/v3/limits/{plimit}"),
            a,
            json!({"limit": {"resource_name": "x"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);

        // A registered limit in use is neither changed nor deleted (403).
        c.patch(
            &format!("/v3/registered_limits/{cores}"),
            a,
            json!({"registered_limit": {"default_limit": 3}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        c.delete(&format!("/v3/registered_limits/{cores}"), a)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        assert_eq!(
            c.delete(&format!("/v3/limits/{plimit}"), a).await.status,
            StatusCode::NO_CONTENT
        );
        c.get(&format!("/v3/limits/{plimit}"), a)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert_eq!(
            c.delete(&format!("/v3/registered_limits/{cores}"), a)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        // Deleting a project deletes its limits.
        let p2 = c.project("lim-proj-2").await;
        c.post(
            "/v3/limits",
            a,
            json!({"limits": [{"project_id": p2, "service_id": cinder, "resource_name": "volumes", "resource_limit": 1}]}),
        )
        .await;
        c.delete(&format!("/v3/projects/{p2}"), a).await;
        let r = c.get(&format!("/v3/limits?project_id={p2}"), a).await;
        assert_eq!(r.body["limits"], json!([]));
        c.cleanup().await;
    }
}

#[tokio::test]
async fn endpoint_groups_project_endpoints_and_the_catalog() {
    for c in super::common::clouds().await {
        let a = &c.admin;
        let nova = service_id(&c, "compute").await;
        let r = c
            .post(
                "/v3/OS-EP-FILTER/endpoint_groups",
                a,
                json!({"endpoint_group": {"name": "compute-public", "description": "d",
                   "filters": {"service_id": nova, "interface": "public"}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", c.name, r.body);
        let gid = r.id("endpoint_group");
        assert_eq!(r.body["endpoint_group"]["filters"]["interface"], "public");
        for bad in [
            json!({"endpoint_group": {"name": "x", "filters": {}}}),
            json!({"endpoint_group": {"name": "x", "filters": {"url": "x"}}}),
            json!({"endpoint_group": {"filters": {"interface": "public"}}}),
        ] {
            c.post("/v3/OS-EP-FILTER/endpoint_groups", a, bad)
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
        let r = c
            .get("/v3/OS-EP-FILTER/endpoint_groups?name=compute-public", a)
            .await;
        assert_eq!(ids(&r.body["endpoint_groups"]), vec![gid.clone()]);
        let r = c
            .patch(
                &format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}"),
                a,
                json!({"endpoint_group": {"description": "new"}}),
            )
            .await;
        assert_eq!(r.body["endpoint_group"]["description"], "new");
        let r = c
            .get(
                &format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}/endpoints"),
                a,
            )
            .await;
        let group_eps = ids(&r.body["endpoints"]);
        assert_eq!(group_eps.len(), 1, "{}", r.body);

        // A project with a direct endpoint and the group.
        let (_, pid, token) = c.project_member("ep-user", "pw", "ep-proj").await;
        let r = c.get("/v3/endpoints?interface=internal", a).await;
        let internal = r.body["endpoints"][0]["id"]
            .as_str()
            .expect("ep")
            .to_owned();
        let assoc = format!("/v3/OS-EP-FILTER/projects/{pid}/endpoints/{internal}");
        assert_eq!(c.put(&assoc, a).await.status, StatusCode::NO_CONTENT);
        c.put(&assoc, a).await.assert_error(StatusCode::CONFLICT);
        assert_eq!(c.head(&assoc, a).await.status, StatusCode::NO_CONTENT);
        assert_eq!(c.get(&assoc, a).await.status, StatusCode::NO_CONTENT);
        c.put(
            &format!("/v3/OS-EP-FILTER/projects/{pid}/endpoints/nope"),
            a,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        c.put(
            &format!("/v3/OS-EP-FILTER/projects/nope/endpoints/{internal}"),
            a,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        let gp = format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}/projects/{pid}");
        c.get(&gp, a).await.assert_error(StatusCode::NOT_FOUND);
        assert_eq!(c.put(&gp, a).await.status, StatusCode::NO_CONTENT);
        let r = c.get(&gp, a).await;
        assert_eq!(r.body["project_endpoint_group"]["project_id"], pid.as_str());

        let r = c
            .get(&format!("/v3/OS-EP-FILTER/projects/{pid}/endpoints"), a)
            .await;
        let mut got = ids(&r.body["endpoints"]);
        got.sort();
        let mut want = vec![internal.clone(), group_eps[0].clone()];
        want.sort();
        assert_eq!(got, want);
        let r = c
            .get(
                &format!("/v3/OS-EP-FILTER/projects/{pid}/endpoint_groups"),
                a,
            )
            .await;
        assert_eq!(ids(&r.body["endpoint_groups"]), vec![gid.clone()]);
        let r = c
            .get(
                &format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}/projects"),
                a,
            )
            .await;
        assert_eq!(ids(&r.body["projects"]), vec![pid.clone()]);
        let r = c
            .get(
                &format!("/v3/OS-EP-FILTER/endpoints/{internal}/projects"),
                a,
            )
            .await;
        assert_eq!(ids(&r.body["projects"]), vec![pid.clone()]);

        // The project's catalog has only those endpoints, and only the
        // services that have one left; other projects see everything.
        let r = c.get("/v3/auth/catalog", &token).await;
        let catalog = r.body["catalog"].as_array().expect("catalog").clone();
        let mut seen: Vec<String> = catalog.iter().flat_map(|s| ids(&s["endpoints"])).collect();
        seen.sort();
        assert_eq!(seen, want, "{}", r.body);
        assert!(catalog
            .iter()
            .all(|s| !s["endpoints"].as_array().expect("eps").is_empty()));
        let r = c.get("/v3/auth/catalog", a).await;
        let all: usize = r.body["catalog"]
            .as_array()
            .expect("catalog")
            .iter()
            .map(|s| s["endpoints"].as_array().map_or(0, Vec::len))
            .sum();
        assert!(all > 2, "{}", r.body);
        // The member may not manage filters.
        c.get("/v3/OS-EP-FILTER/endpoint_groups", &token)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Removing the associations restores the whole catalog.
        assert_eq!(c.delete(&assoc, a).await.status, StatusCode::NO_CONTENT);
        let r = c.delete(&assoc, a).await;
        r.assert_error(StatusCode::NOT_FOUND);
        assert_eq!(
            r.body["error"]["message"],
            format!("Endpoint {internal} not found in project {pid}")
        );
        assert_eq!(
            c.delete(&format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}"), a)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        c.get(&gp, a).await.assert_error(StatusCode::NOT_FOUND);
        let r = c
            .get(&format!("/v3/OS-EP-FILTER/projects/{pid}/endpoints"), a)
            .await;
        assert_eq!(r.body["endpoints"], json!([]));
        let r = c.get("/v3/auth/catalog", &token).await;
        let n: usize = r.body["catalog"]
            .as_array()
            .expect("catalog")
            .iter()
            .map(|s| s["endpoints"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(n, all);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn domain_specific_configuration() {
    for c in super::common::clouds().await {
        let a = &c.admin;
        let base = "/v3/domains/default/config";
        c.get(base, a).await.assert_error(StatusCode::NOT_FOUND);
        let config = json!({"config": {"identity": {"driver": "ldap"},
            "ldap": {"url": "ldap://example.org", "user_tree_dn": "ou=Users", "password": "s3cret"}}});
        let r = c
            .call(Method::PUT, base, Some(a), Some(config.clone()))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", c.name, r.body);
        // The password is stored, never shown.
        assert_eq!(
            r.body["config"],
            json!({"identity": {"driver": "ldap"},
                   "ldap": {"url": "ldap://example.org", "user_tree_dn": "ou=Users"}})
        );
        let r = c.call(Method::PUT, base, Some(a), Some(config)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = c.get(&format!("{base}/ldap"), a).await;
        assert_eq!(r.body["config"]["ldap"]["url"], "ldap://example.org");
        let r = c.get(&format!("{base}/ldap/url"), a).await;
        assert_eq!(r.body["config"], json!({"url": "ldap://example.org"}));
        c.get(&format!("{base}/ldap/password"), a)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = c.get(&format!("{base}/ldap/suffix"), a).await;
        r.assert_error(StatusCode::NOT_FOUND);
        assert_eq!(
            r.body["error"]["message"],
            "Could not find option suffix in group ldap in domain configuration for domain default."
        );
        // Groups and options Keystone does not allow: 403.
        c.get(&format!("{base}/cache"), a)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        c.get(&format!("{base}/ldap/nope"), a)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        c.call(
            Method::PUT,
            base,
            Some(a),
            Some(json!({"config": {"ldap": {"bogus": 1}}})),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        c.call(Method::PUT, base, Some(a), Some(json!({"config": {}})))
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Updates: the whole config, a group, an option.
        let r = c
            .patch(
                base,
                a,
                json!({"config": {"ldap": {"suffix": "dc=example,dc=org"}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["config"]["ldap"]["suffix"], "dc=example,dc=org");
        assert_eq!(r.body["config"]["identity"]["driver"], "ldap");
        let r = c
            .patch(
                &format!("{base}/ldap/url"),
                a,
                json!({"config": {"url": "ldap://other"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["config"]["ldap"]["url"], "ldap://other");
        c.patch(
            &format!("{base}/ldap"),
            a,
            json!({"config": {"identity": {"driver": "sql"}}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        c.patch(
            &format!("{base}/ldap/use_tls"),
            a,
            json!({"config": {"use_tls": true}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);

        // Deletes: an option, a group, everything.
        let r = c.delete(&format!("{base}/ldap/url"), a).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        c.delete(&format!("{base}/ldap/url"), a)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert_eq!(
            c.delete(&format!("{base}/identity"), a).await.status,
            StatusCode::NO_CONTENT
        );
        let r = c.get(base, a).await;
        assert!(r.body["config"].get("identity").is_none(), "{}", r.body);
        assert_eq!(c.delete(base, a).await.status, StatusCode::NO_CONTENT);
        c.get(base, a).await.assert_error(StatusCode::NOT_FOUND);
        c.get("/v3/domains/nope/config", a)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        // Defaults.
        let r = c.get("/v3/domains/config/default", a).await;
        assert_eq!(r.body["config"]["identity"]["driver"], "sql");
        assert_eq!(r.body["config"]["ldap"]["url"], "ldap://localhost");
        assert!(r.body["config"]["ldap"].get("password").is_none());
        let r = c.get("/v3/domains/config/ldap/default", a).await;
        assert_eq!(
            r.body["config"]["ldap"]["user_objectclass"],
            "inetOrgPerson"
        );
        let r = c.get("/v3/domains/config/ldap/url/default", a).await;
        assert_eq!(r.body["config"], json!({"url": "ldap://localhost"}));
        c.get("/v3/domains/config/ldap/password/default", a)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Admin only.
        let (_, _, member) = c.project_member("cfg-user", "pw", "cfg-proj").await;
        c.get("/v3/domains/config/default", &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        c.call(
            Method::PUT,
            base,
            Some(&member),
            Some(json!({"config": {"identity": {"driver": "ldap"}}})),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);

        // A deleted domain takes its configuration, its limits and its
        // projects' limits with it.
        let did = c.create("domain", json!({"name": "gone"})).await;
        let pid = c
            .create("project", json!({"name": "gone-p", "domain_id": did}))
            .await;
        let r = c
            .call(
                Method::PUT,
                &format!("/v3/domains/{did}/config"),
                Some(a),
                Some(json!({"config": {"identity": {"driver": "ldap"}}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let svc = service_id(&c, "compute").await;
        c.post(
            "/v3/registered_limits",
            a,
            json!({"registered_limits": [{"service_id": svc, "resource_name": "cores", "default_limit": 1}]}),
        )
        .await;
        let r = c
            .post(
                "/v3/limits",
                a,
                json!({"limits": [
                    {"domain_id": did, "service_id": svc, "resource_name": "cores", "resource_limit": 2},
                    {"project_id": pid, "service_id": svc, "resource_name": "cores", "resource_limit": 3}]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        c.patch(
            &format!("/v3/domains/{did}"),
            a,
            json!({"domain": {"enabled": false}}),
        )
        .await;
        assert_eq!(
            c.delete(&format!("/v3/domains/{did}"), a).await.status,
            StatusCode::NO_CONTENT
        );
        let r = c.get("/v3/limits", a).await;
        assert_eq!(r.body["limits"], json!([]), "{}", r.body);
        let mut conn = c.db().conn().await.expect("conn");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM domain_configs WHERE domain_id = $1")
            .bind(&did)
            .fetch_one(&mut *conn)
            .await
            .expect("count");
        assert_eq!(n, 0);
        drop(conn);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn access_rules_of_application_credentials() {
    for c in super::common::clouds().await {
        let (uid, _, token) = c.project_member("ar-user", "pw", "ar-proj").await;
        let creds = format!("/v3/users/{uid}/application_credentials");
        let rules = json!([
            {"service": "compute", "method": "GET", "path": "/v2.1/servers"},
            {"service": "image", "method": "POST", "path": "/v2/images"}]);
        let r = c
            .post(
                &creds,
                &token,
                json!({"application_credential": {"name": "ci", "access_rules": rules}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", c.name, r.body);
        let cred = r.id("application_credential");
        let shown = r.body["application_credential"]["access_rules"]
            .as_array()
            .expect("rules")
            .clone();
        assert_eq!(shown.len(), 2);
        let rule = shown
            .iter()
            .find(|x| x["service"] == "compute")
            .expect("compute rule")
            .clone();
        assert_eq!(rule["path"], "/v2.1/servers");
        let rule_id = rule["id"].as_str().expect("id").to_owned();
        // A second credential with the same triple shares the rule; one
        // naming the rule by id uses it.
        let r = c
            .post(
                &creds,
                &token,
                json!({"application_credential": {"name": "ci2", "access_rules": [
                    {"service": "compute", "method": "GET", "path": "/v2.1/servers"},
                    {"id": rule_id}]}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let cred2 = r.id("application_credential");
        assert_eq!(
            ids(&r.body["application_credential"]["access_rules"]),
            vec![rule_id.clone()]
        );
        // Bad rules: 400, and no credential made.
        for bad in [
            json!([{"service": "compute", "method": "FETCH", "path": "/x"}]),
            json!([{"service": "compute", "method": "GET", "path": "x"}]),
            json!([{"service": "compute", "method": "GET", "path": "/x", "extra": 1}]),
            json!([{"service": "compute"}]),
            json!("all"),
        ] {
            c.post(
                &creds,
                &token,
                json!({"application_credential": {"name": "bad", "access_rules": bad}}),
            )
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        }
        let r = c.get(&format!("{creds}?name=bad"), &token).await;
        assert_eq!(r.body["application_credentials"], json!([]));

        let r = c.get(&format!("{creds}/{cred}"), &token).await;
        assert_eq!(
            r.body["application_credential"]["access_rules"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        let list = format!("/v3/users/{uid}/access_rules");
        let r = c.get(&list, &token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["access_rules"].as_array().map(Vec::len), Some(2));
        let r = c.get(&format!("{list}?service=image"), &token).await;
        assert_eq!(r.body["access_rules"].as_array().map(Vec::len), Some(1));
        let one = format!("{list}/{rule_id}");
        let r = c.get(&one, &token).await;
        assert_eq!(r.body["access_rule"]["method"], "GET");
        // Another user may not look; the admin may.
        let (_, _, other) = c.project_member("ar-other", "pw", "ar-other").await;
        c.get(&list, &other)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        assert_eq!(c.get(&one, &c.admin).await.status, StatusCode::OK);

        // In use: 403 until no credential names it.
        c.delete(&one, &token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        for id in [&cred, &cred2] {
            assert_eq!(
                c.delete(&format!("{creds}/{id}"), &token).await.status,
                StatusCode::NO_CONTENT
            );
        }
        assert_eq!(c.delete(&one, &token).await.status, StatusCode::NO_CONTENT);
        c.get(&one, &token)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        c.delete(&one, &token)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        c.cleanup().await;
    }
}
