//! The metadata API through its router, with an in-memory instance source:
//! the proxy checks (signature, headers, project), every path cloud-init
//! reads, and the shapes Nova's `api/metadata` produces.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use stratus_common::ids::{ImageId, InstanceId, NetworkId, ProjectId};
use stratus_metadata::{
    router, sign_instance_id, InstanceMetadata, InstanceSource, MetadataConfig, SourceError, Vif,
    VifFixedIp, VifSubnet,
};
use tower::ServiceExt;

const SECRET: &str = "s3cr3t-shared";
const IID: &str = "7c016dcb-8a5e-4c8e-9a1d-1f2e3d4c5b6a";
const PROJECT: &str = "9f0e1d2c3b4a59687766554433221100";
const IMAGE: &str = "0a1b2c3d-1111-4222-8333-444455556666";
const PORT1: &str = "cd9f6d46-4a12-4d0e-8c3b-5f3c2a1b0e9d";
const PORT2: &str = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9";
const NET1: &str = "11111111-2222-4333-8444-555555555555";
const NET2: &str = "66666666-7777-4888-9999-aaaaaaaaaaaa";
const PUBKEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0ZXN0a2V5 user@host";

// ---------------------------------------------------------------- fixtures

#[derive(Default)]
struct MemSource {
    instances: Mutex<HashMap<InstanceId, InstanceMetadata>>,
    lookups: AtomicUsize,
    fail: bool,
}

#[async_trait]
impl InstanceSource for MemSource {
    async fn instance(&self, id: InstanceId) -> Result<Option<InstanceMetadata>, SourceError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return Err(SourceError::new("database is down"));
        }
        Ok(self.instances.lock().expect("lock").get(&id).cloned())
    }

    async fn set_password(&self, id: InstanceId, password: String) -> Result<bool, SourceError> {
        let mut all = self.instances.lock().expect("lock");
        let Some(inst) = all.get_mut(&id) else {
            return Err(SourceError::new("gone"));
        };
        if inst.password.as_deref().is_some_and(|p| !p.is_empty()) {
            return Ok(false);
        }
        inst.password = Some(password);
        Ok(true)
    }
}

fn instance() -> InstanceMetadata {
    InstanceMetadata {
        uuid: IID.parse().expect("uuid"),
        project_id: ProjectId::from(PROJECT),
        name: "web 1".into(),
        hostname: "web-1".into(),
        launch_index: 0,
        availability_zone: Some("nova".into()),
        reservation_id: "r-3fhpjulh".into(),
        flavor_name: "m1.small".into(),
        image_id: Some(IMAGE.parse::<ImageId>().expect("image")),
        metadata: BTreeMap::from([("role".to_owned(), "web".to_owned())]),
        user_data: Some(b"#cloud-config\nhostname: web-1\n".to_vec()),
        key: Some(("mykey".into(), PUBKEY.into())),
        security_groups: vec!["default".into(), "web".into()],
        created_at: chrono::Utc::now(),
        vifs: vec![
            Vif {
                port_id: PORT1.into(),
                network_id: NET1.into(),
                network_name: "net1".into(),
                mac_address: "fa:16:3e:9c:bf:3d".into(),
                mtu: Some(1450),
                vif_type: "bridge".into(),
                fixed_ips: vec![
                    VifFixedIp {
                        subnet_id: "s1".into(),
                        address: "10.0.0.5".into(),
                        floating_ips: vec!["203.0.113.7".into()],
                    },
                    VifFixedIp {
                        subnet_id: "s2".into(),
                        address: "fd00::5".into(),
                        floating_ips: vec![],
                    },
                ],
                subnets: vec![
                    VifSubnet {
                        id: "s1".into(),
                        cidr: "10.0.0.0/24".into(),
                        gateway_ip: Some("10.0.0.1".into()),
                        dns_nameservers: vec!["8.8.8.8".into()],
                        host_routes: vec![],
                        enable_dhcp: true,
                        dhcp_server: Some("10.0.0.2".into()),
                        ipv6_address_mode: None,
                    },
                    VifSubnet {
                        id: "s2".into(),
                        cidr: "fd00::/64".into(),
                        gateway_ip: Some("fd00::1".into()),
                        dns_nameservers: vec!["8.8.8.8".into(), "2001:4860:4860::8888".into()],
                        host_routes: vec![],
                        enable_dhcp: true,
                        dhcp_server: None,
                        ipv6_address_mode: Some("slaac".into()),
                    },
                ],
                ..Vif::default()
            },
            Vif {
                port_id: PORT2.into(),
                network_id: NET2.into(),
                network_name: "net2".into(),
                mac_address: "fa:16:3e:00:00:02".into(),
                mtu: Some(1500),
                vif_type: "unbound".into(),
                fixed_ips: vec![VifFixedIp {
                    subnet_id: "s3".into(),
                    address: "192.168.5.10".into(),
                    floating_ips: vec![],
                }],
                subnets: vec![VifSubnet {
                    id: "s3".into(),
                    cidr: "192.168.5.0/24".into(),
                    gateway_ip: Some("192.168.5.1".into()),
                    dns_nameservers: vec!["8.8.8.8".into()],
                    host_routes: vec![("172.16.0.0/16".into(), "192.168.5.254".into())],
                    enable_dhcp: false,
                    dhcp_server: None,
                    ipv6_address_mode: None,
                }],
                ..Vif::default()
            },
        ],
        password: None,
        root_device_name: Some("/dev/vda".into()),
        volume_device_names: vec!["/dev/vdc".into(), "/dev/vdb".into()],
    }
}

/// A bare instance: no key, no user data, no networks, no AZ.
fn bare_instance() -> InstanceMetadata {
    InstanceMetadata {
        uuid: "0000002a-0000-4000-8000-000000000000"
            .parse()
            .expect("uuid"),
        name: "bare".into(),
        hostname: "bare".into(),
        availability_zone: None,
        image_id: None,
        metadata: BTreeMap::new(),
        user_data: None,
        key: None,
        security_groups: vec![],
        vifs: vec![],
        root_device_name: None,
        volume_device_names: vec![],
        ..instance()
    }
}

fn config() -> MetadataConfig {
    MetadataConfig {
        shared_secret: SECRET.into(),
        ..MetadataConfig::default()
    }
}

struct Env {
    app: axum::Router,
    source: Arc<MemSource>,
}

fn env_with(cfg: MetadataConfig, source: MemSource) -> Env {
    for i in [instance(), bare_instance()] {
        source.instances.lock().expect("lock").insert(i.uuid, i);
    }
    let source = Arc::new(source);
    Env {
        app: router(cfg, source.clone()),
        source,
    }
}

fn env() -> Env {
    env_with(config(), MemSource::default())
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn send(app: &axum::Router, req: Request<Body>) -> Resp {
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

/// A request as the Neutron proxy sends it for `iid`.
fn proxied(method: Method, path: &str, iid: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("X-Instance-ID", iid)
        .header("X-Tenant-ID", PROJECT)
        .header("X-Instance-ID-Signature", sign_instance_id(SECRET, iid))
        .header("X-Forwarded-For", "10.0.0.5")
        .body(Body::from(body))
        .expect("request")
}

async fn get(e: &Env, path: &str) -> Resp {
    send(&e.app, proxied(Method::GET, path, IID, vec![])).await
}

async fn get_bare(e: &Env, path: &str) -> Resp {
    let iid = bare_instance().uuid.to_string();
    send(&e.app, proxied(Method::GET, path, &iid, vec![])).await
}

// ---------------------------------------------------------------- signature

#[test]
fn signature_matches_openssl_reference() {
    // printf %s "$IID" | openssl dgst -sha256 -hmac "$SECRET"
    assert_eq!(
        sign_instance_id(SECRET, IID),
        "892c4a5dfc86b464ad679813d85bf4c9ac1f6344b85b4495b5327d085669e787"
    );
    // printf %s iid | openssl dgst -sha256 -hmac secret (the proxy's own test vector)
    assert_eq!(
        sign_instance_id("secret", "iid"),
        "7dfe533db92026b0b4cf22af45c61022efce7d00eee29af49b229830ea8036db"
    );
    // An empty secret is allowed, as in Nova.
    assert_eq!(
        sign_instance_id("", IID),
        "2cc8bbe71ffc2800fcbc3182d748ecd77f2f595b5bc96cdfb83f3a7a5d8e96ab"
    );
}

#[tokio::test]
async fn signed_request_is_served() {
    let e = env();
    let r = get(&e, "/openstack/latest/meta_data.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.contains_key("x-openstack-request-id"));
}

#[tokio::test]
async fn forged_signature_is_403() {
    let e = env();
    for sig in [
        sign_instance_id("wrong-secret", IID),
        sign_instance_id(SECRET, "0000002a-0000-4000-8000-000000000000"),
        sign_instance_id(SECRET, IID).to_uppercase(),
        "not hex".to_owned(),
        String::new(),
    ] {
        let req = Request::builder()
            .uri("/openstack/latest/meta_data.json")
            .header("X-Instance-ID", IID)
            .header("X-Tenant-ID", PROJECT)
            .header("X-Instance-ID-Signature", sig)
            .body(Body::empty())
            .expect("request");
        let r = send(&e.app, req).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(
            r.text(),
            "403 Forbidden\n\nInvalid proxy request signature.\n"
        );
        assert_eq!(r.content_type(), "text/plain; charset=UTF-8");
    }
    // A 403 is decided before any instance lookup.
    assert_eq!(e.source.lookups.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn missing_or_repeated_headers_are_400() {
    let e = env();
    let sig = sign_instance_id(SECRET, IID);
    let all = [
        ("X-Instance-ID", IID.to_owned()),
        ("X-Tenant-ID", PROJECT.to_owned()),
        ("X-Instance-ID-Signature", sig.clone()),
    ];
    for skip in 0..all.len() {
        let mut b = Request::builder().uri("/openstack");
        for (i, (k, v)) in all.iter().enumerate() {
            if i != skip {
                b = b.header(*k, v);
            }
        }
        let r = send(&e.app, b.body(Body::empty()).expect("request")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "without {}", all[skip].0);
        assert_eq!(
            r.text(),
            format!(
                "400 Bad Request\n\n{} header is missing from request.\n",
                all[skip].0
            )
        );
    }
    for dup in 0..all.len() {
        let mut b = Request::builder().uri("/openstack");
        for (k, v) in &all {
            b = b.header(*k, v);
        }
        b = b.header(all[dup].0, &all[dup].1);
        let r = send(&e.app, b.body(Body::empty()).expect("request")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "twice {}", all[dup].0);
        assert!(r
            .text()
            .contains(&format!("Multiple {} headers", all[dup].0)));
    }
    // Even a listing needs the headers; only `/` does not.
    let r = send(
        &e.app,
        Request::builder()
            .uri("/latest/meta-data/")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn project_mismatch_and_unknown_instance_are_404() {
    let e = env();
    let req = Request::builder()
        .uri("/openstack/latest/meta_data.json")
        .header("X-Instance-ID", IID)
        .header("X-Tenant-ID", "someoneelse")
        .header("X-Instance-ID-Signature", sign_instance_id(SECRET, IID))
        .body(Body::empty())
        .expect("request");
    let r = send(&e.app, req).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.text(),
        "404 Not Found\n\nThe resource could not be found.\n"
    );

    let unknown = InstanceId::new().to_string();
    let r = send(&e.app, proxied(Method::GET, "/openstack", &unknown, vec![])).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A correctly signed id that is not a UUID cannot name an instance.
    let r = send(&e.app, proxied(Method::GET, "/openstack", "i-123", vec![])).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn source_failure_is_500_with_novas_message() {
    let e = env_with(
        config(),
        MemSource {
            fail: true,
            ..MemSource::default()
        },
    );
    let r = get(&e, "/openstack/latest/meta_data.json").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r
        .text()
        .contains("An unknown error has occurred. Please try your request again."));
    assert!(!r.text().contains("database"));
}

// ---------------------------------------------------------------- listings

#[tokio::test]
async fn root_lists_ec2_versions_without_an_instance() {
    let e = env();
    for path in ["/", "//", "/./"] {
        let req = Request::builder()
            .uri(path)
            .body(Body::empty())
            .expect("request");
        let r = send(&e.app, req).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.content_type(), "text/plain; charset=UTF-8");
        assert_eq!(
            r.text(),
            "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n\
             2008-02-01\n2008-09-01\n2009-04-04\nlatest"
        );
    }
    assert_eq!(e.source.lookups.load(Ordering::SeqCst), 0);
    // `/ec2` is the same list but goes through the proxy checks.
    assert_eq!(get(&e, "/ec2").await.text(), get(&e, "/ec2/").await.text());
    assert!(get(&e, "/ec2").await.text().ends_with("2009-04-04\nlatest"));
}

#[tokio::test]
async fn openstack_lists_dated_versions_then_latest() {
    let e = env();
    let r = get(&e, "/openstack").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "text/plain; charset=UTF-8");
    // Today (2026) is after every dated version.
    assert_eq!(
        r.text(),
        "2012-08-10\n2013-04-04\n2013-10-17\n2015-10-15\n2016-06-30\n2016-10-06\n\
         2017-02-22\n2018-08-27\n2020-10-14\n2025-04-04\nlatest"
    );
    assert_eq!(get(&e, "/openstack/").await.text(), r.text());
}

#[tokio::test]
async fn version_directory_listings_follow_version_and_instance() {
    let e = env();
    let full = "meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json";
    assert_eq!(get(&e, "/openstack/latest").await.text(), full);
    assert_eq!(get(&e, "/openstack/latest/").await.text(), full);
    assert_eq!(get(&e, "/openstack/2018-08-27/").await.text(), full);
    assert_eq!(
        get(&e, "/openstack/2012-08-10").await.text(),
        "meta_data.json\nuser_data"
    );
    assert_eq!(
        get(&e, "/openstack/2013-10-17").await.text(),
        "meta_data.json\nuser_data\npassword\nvendor_data.json"
    );
    assert_eq!(
        get_bare(&e, "/openstack/latest").await.text(),
        "meta_data.json\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json"
    );
}

#[tokio::test]
async fn unknown_paths_and_versions_are_404() {
    let e = env();
    for path in [
        "/openstack/2019-01-01/meta_data.json",
        "/openstack/latest/nope",
        "/openstack/latest/meta_data.json/extra",
        "/openstack/content/0000",
        "/openstack/content",
        "/openstack/2012-08-10/password",
        "/openstack/2013-04-04/vendor_data.json",
        "/openstack/2016-06-30/vendor_data2.json",
        "/2010-01-01/meta-data/",
        "/latest/meta-data/nope",
        "/latest/meta-data/hostname/deeper",
        "/latest/meta-data/security-groups/default",
        "/latest/nope",
        "/foo",
    ] {
        let r = get(&e, path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.content_type(), "text/plain; charset=UTF-8", "{path}");
    }
}

// ---------------------------------------------------------------- meta_data.json

/// The top-level keys of a JSON object in the order they were written
/// (serde_json's `Value` sorts them).
struct KeysInOrder(Vec<String>);

impl<'de> serde::Deserialize<'de> for KeysInOrder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KeysInOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<KeysInOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(KeysInOrder(keys))
            }
        }
        d.deserialize_map(V)
    }
}

fn key_order(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<KeysInOrder>(body)
        .expect("JSON object")
        .0
}

#[tokio::test]
async fn meta_data_json_has_novas_keys_in_novas_order() {
    let e = env();
    let r = get(&e, "/openstack/latest/meta_data.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(
        key_order(&r.body),
        [
            "uuid",
            "meta",
            "public_keys",
            "keys",
            "hostname",
            "name",
            "launch_index",
            "availability_zone",
            "random_seed",
            "project_id",
            "devices",
            "dedicated_cpus",
        ]
    );

    let mut v = r.json();
    let seed = v
        .get("random_seed")
        .and_then(|s| s.as_str())
        .map(|s| base64::engine::general_purpose::STANDARD.decode(s));
    assert_eq!(seed.map(|s| s.map(|b| b.len()).ok()), Some(Some(512)));
    v.as_object_mut().map(|o| o.remove("random_seed"));
    assert_eq!(
        v,
        serde_json::json!({
            "uuid": IID,
            "meta": {"role": "web"},
            "public_keys": {"mykey": PUBKEY},
            "keys": [{"name": "mykey", "type": "ssh", "data": PUBKEY}],
            "hostname": "web-1.novalocal",
            "name": "web 1",
            "launch_index": 0,
            "availability_zone": "nova",
            "project_id": PROJECT,
            "devices": [],
            "dedicated_cpus": []
        })
    );
    // The seed is fresh on every request.
    let again = get(&e, "/openstack/latest/meta_data.json").await.json();
    assert_ne!(again.get("random_seed"), r.json().get("random_seed"));
}

#[tokio::test]
async fn meta_data_json_by_version_and_for_a_bare_instance() {
    let e = env();
    let folsom = get(&e, "/openstack/2012-08-10/meta_data.json").await.json();
    for absent in ["random_seed", "project_id", "devices", "dedicated_cpus"] {
        assert!(folsom.get(absent).is_none(), "{absent} in 2012-08-10");
    }
    let liberty = get(&e, "/openstack/2015-10-15/meta_data.json").await.json();
    assert!(liberty.get("project_id").is_some());
    assert!(liberty.get("random_seed").is_some());
    assert!(liberty.get("devices").is_none());
    let newton = get(&e, "/openstack/2016-06-30/meta_data.json").await.json();
    assert!(newton.get("devices").is_some());
    assert!(newton.get("dedicated_cpus").is_none());

    let mut bare = get_bare(&e, "/openstack/latest/meta_data.json")
        .await
        .json();
    bare.as_object_mut().map(|o| o.remove("random_seed"));
    assert_eq!(
        bare,
        serde_json::json!({
            "uuid": "0000002a-0000-4000-8000-000000000000",
            "hostname": "bare.novalocal",
            "name": "bare",
            "launch_index": 0,
            "availability_zone": null,
            "project_id": PROJECT,
            "devices": [],
            "dedicated_cpus": []
        })
    );
}

#[tokio::test]
async fn empty_dhcp_domain_gives_the_bare_hostname() {
    let e = env_with(
        MetadataConfig {
            dhcp_domain: String::new(),
            ..config()
        },
        MemSource::default(),
    );
    let v = get(&e, "/openstack/latest/meta_data.json").await.json();
    assert_eq!(v.get("hostname"), Some(&serde_json::json!("web-1")));
    assert_eq!(get(&e, "/latest/meta-data/hostname").await.text(), "web-1");
}

// ---------------------------------------------------------------- network_data.json

#[tokio::test]
async fn network_data_json_golden() {
    let e = env();
    let r = get(&e, "/openstack/latest/network_data.json").await;
    assert_eq!(r.status, StatusCode::OK);
    // Nova serves this one without setting a JSON content type.
    assert_eq!(r.content_type(), "text/plain; charset=UTF-8");
    let link1 = "tapcd9f6d46-4a";
    let link2 = "tap5e6f7a8b-9c";
    let expected = format!(
        concat!(
            r#"{{"links":["#,
            r#"{{"id":"{l1}","vif_id":"{p1}","type":"bridge","mtu":null,"ethernet_mac_address":"fa:16:3e:9c:bf:3d"}},"#,
            r#"{{"id":"{l2}","vif_id":"{p2}","type":"phy","mtu":1500,"ethernet_mac_address":"fa:16:3e:00:00:02"}}],"#,
            r#""networks":["#,
            r#"{{"id":"network0","type":"ipv4_dhcp","link":"{l1}","network_id":"{n1}"}},"#,
            r#"{{"id":"network1","type":"ipv6_slaac","link":"{l1}","ip_address":"fd00::5","netmask":"ffff:ffff:ffff:ffff::","#,
            r#""routes":[{{"network":"::","netmask":"::","gateway":"fd00::1"}}],"network_id":"{n1}","#,
            r#""services":[{{"type":"dns","address":"8.8.8.8"}},{{"type":"dns","address":"2001:4860:4860::8888"}}]}},"#,
            r#"{{"id":"network2","type":"ipv4","link":"{l2}","ip_address":"192.168.5.10","netmask":"255.255.255.0","#,
            r#""routes":[{{"network":"0.0.0.0","netmask":"0.0.0.0","gateway":"192.168.5.1"}},"#,
            r#"{{"network":"172.16.0.0","netmask":"255.255.0.0","gateway":"192.168.5.254"}}],"network_id":"{n2}","#,
            r#""services":[{{"type":"dns","address":"8.8.8.8"}}]}}],"#,
            r#""services":[{{"type":"dns","address":"8.8.8.8"}},{{"type":"dns","address":"2001:4860:4860::8888"}}]}}"#
        ),
        l1 = link1,
        l2 = link2,
        p1 = PORT1,
        p2 = PORT2,
        n1 = NET1,
        n2 = NET2,
    );
    assert_eq!(r.text(), expected);
    // Nova serves it for every version (only the listing starts at 2015-10-15).
    assert_eq!(
        get(&e, "/openstack/2012-08-10/network_data.json")
            .await
            .text(),
        expected
    );
}

#[tokio::test]
async fn network_data_json_is_empty_object_without_networks() {
    let e = env();
    let r = get_bare(&e, "/openstack/latest/network_data.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "{}");
}

// ---------------------------------------------------------------- user data

#[tokio::test]
async fn user_data_is_raw_and_404_when_absent() {
    let e = env();
    let want = b"#cloud-config\nhostname: web-1\n".to_vec();
    for path in [
        "/openstack/latest/user_data",
        "/openstack/2012-08-10/user_data",
        "/latest/user-data",
        "/2009-04-04/user-data",
        "/1.0/user-data",
        "/ec2/latest/user-data",
    ] {
        let r = get(&e, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.body, want, "{path}");
    }
    for path in ["/openstack/latest/user_data", "/latest/user-data"] {
        assert_eq!(get_bare(&e, path).await.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(get(&e, "/latest").await.text(), "meta-data/\nuser-data");
    assert_eq!(get_bare(&e, "/latest/").await.text(), "meta-data/");
}

#[tokio::test]
async fn binary_user_data_passes_unchanged() {
    let e = env();
    let bytes: Vec<u8> = (0u8..=255).collect();
    {
        let mut all = e.source.instances.lock().expect("lock");
        let inst = all
            .get_mut(&IID.parse::<InstanceId>().expect("uuid"))
            .expect("fixture");
        inst.user_data = Some(bytes.clone());
    }
    assert_eq!(get(&e, "/openstack/latest/user_data").await.body, bytes);
}

// ---------------------------------------------------------------- vendor data

fn vendor_file(content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vendor.json");
    std::fs::write(&path, content).expect("write");
    (dir, path)
}

#[tokio::test]
async fn vendor_data_defaults_to_empty_objects() {
    let e = env();
    let r = get(&e, "/openstack/latest/vendor_data.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(r.text(), "{}");
    let r = get(&e, "/openstack/latest/vendor_data2.json").await;
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(r.text(), r#"{"static":{}}"#);
}

#[tokio::test]
async fn vendor_data_serves_the_static_json_file() {
    let (_dir, path) =
        vendor_file(r##"{"cloud-init": "#cloud-config\npackages: [htop]\n", "x": 1}"##);
    let e = env_with(
        MetadataConfig {
            vendordata_jsonfile_path: Some(path),
            ..config()
        },
        MemSource::default(),
    );
    let want = serde_json::json!({"cloud-init": "#cloud-config\npackages: [htop]\n", "x": 1});
    assert_eq!(
        get(&e, "/openstack/latest/vendor_data.json").await.json(),
        want
    );
    assert_eq!(
        get(&e, "/openstack/2016-10-06/vendor_data2.json")
            .await
            .json(),
        serde_json::json!({ "static": want })
    );
}

#[tokio::test]
async fn vendor_data_without_static_provider() {
    let e = env_with(
        MetadataConfig {
            vendordata_providers: vec![],
            ..config()
        },
        MemSource::default(),
    );
    assert_eq!(
        get(&e, "/openstack/latest/vendor_data.json").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&e, "/openstack/latest/vendor_data2.json").await.text(),
        "{}"
    );
}

#[tokio::test]
async fn broken_vendor_file_is_500_not_a_panic() {
    let (_dir, path) = vendor_file("{not json");
    let e = env_with(
        MetadataConfig {
            vendordata_jsonfile_path: Some(path),
            ..config()
        },
        MemSource::default(),
    );
    let r = get(&e, "/openstack/latest/meta_data.json").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
}

// ---------------------------------------------------------------- password

#[tokio::test]
async fn password_is_set_once() {
    let e = env();
    let url = "/openstack/latest/password";
    let r = get(&e, url).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "");

    let r = send(
        &e.app,
        proxied(Method::POST, url, IID, b"ciphertext==".to_vec()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "");
    assert_eq!(get(&e, url).await.text(), "ciphertext==");

    let r = send(&e.app, proxied(Method::POST, url, IID, b"again".to_vec())).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(get(&e, url).await.text(), "ciphertext==");
    assert_eq!(
        get(&e, "/openstack/2013-04-04/password").await.text(),
        "ciphertext=="
    );
}

#[tokio::test]
async fn password_limits_and_methods() {
    let e = env();
    let url = "/openstack/latest/password";
    let r = send(&e.app, proxied(Method::POST, url, IID, vec![b'a'; 1021])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.text(), "400 Bad Request\n\nRequest is too large.\n");
    // Nothing was stored by the refused request.
    assert_eq!(get(&e, url).await.text(), "");

    let r = send(&e.app, proxied(Method::PUT, url, IID, b"pw".to_vec())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("GET and POST only are supported."));

    let r = send(&e.app, proxied(Method::POST, url, IID, vec![b'a'; 1020])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(get(&e, url).await.body, vec![b'a'; 1020]);
}

// ---------------------------------------------------------------- EC2 tree

#[tokio::test]
async fn ec2_meta_data_listing_is_novas() {
    let e = env();
    let r = get(&e, "/latest/meta-data/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "text/plain; charset=UTF-8");
    assert_eq!(
        r.text(),
        "ami-id\nami-launch-index\nami-manifest-path\nblock-device-mapping/\nhostname\n\
         instance-action\ninstance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\nplacement/\n\
         public-hostname\npublic-ipv4\npublic-keys/\nreservation-id\nsecurity-groups"
    );
    assert_eq!(get(&e, "/latest/meta-data").await.text(), r.text());
    assert_eq!(get(&e, "/ec2/latest/meta-data/").await.text(), r.text());
    assert_eq!(get(&e, "/2009-04-04/meta-data/").await.text(), r.text());
    // Without a key there is no public-keys/.
    assert!(!get_bare(&e, "/latest/meta-data/")
        .await
        .text()
        .contains("public-keys"));
    // 1.0 predates host names, instance types, placement...
    assert_eq!(
        get(&e, "/1.0/meta-data/").await.text(),
        "ami-id\nami-launch-index\nami-manifest-path\nhostname\ninstance-id\nlocal-ipv4\n\
         public-keys/\nreservation-id\nsecurity-groups"
    );
}

#[tokio::test]
async fn ec2_meta_data_values() {
    let e = env();
    let cases = [
        ("instance-id", "i-7c016dcb"),
        ("ami-id", "ami-0a1b2c3d"),
        ("ami-launch-index", "0"),
        ("ami-manifest-path", "FIXME"),
        ("hostname", "web-1.novalocal"),
        ("local-hostname", "web-1.novalocal"),
        ("public-hostname", "web-1.novalocal"),
        ("local-ipv4", "10.0.0.5"),
        ("public-ipv4", "203.0.113.7"),
        ("reservation-id", "r-3fhpjulh"),
        ("security-groups", "default\nweb"),
        ("instance-type", "m1.small"),
        ("instance-action", "none"),
        ("placement", "availability-zone"),
        ("placement/availability-zone", "nova"),
        ("public-keys", "0=mykey"),
        ("public-keys/", "0=mykey"),
        ("public-keys/0", "openssh-key"),
        ("public-keys/0/", "openssh-key"),
        ("public-keys/0/openssh-key", PUBKEY),
        ("block-device-mapping", "ami\nebs0\nebs1\nroot"),
        ("block-device-mapping/ami", "vda"),
        ("block-device-mapping/root", "/dev/vda"),
        ("block-device-mapping/ebs0", "/dev/vdb"),
        ("block-device-mapping/ebs1", "/dev/vdc"),
    ];
    for (path, want) in cases {
        let r = get(&e, &format!("/latest/meta-data/{path}")).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.text(), want, "{path}");
    }
}

#[tokio::test]
async fn ec2_values_for_a_bare_instance() {
    let e = env();
    let cases = [
        ("instance-id", "i-0000002a"),
        // No image and no AZ print as Python's None, as Nova shows them.
        ("ami-id", "None"),
        ("placement/availability-zone", "None"),
        // No fixed IPv4: the requester's address.
        ("local-ipv4", "10.0.0.5"),
        ("public-ipv4", ""),
        ("security-groups", ""),
        ("block-device-mapping", "ami\nephemeral0\nroot\nswap"),
        ("block-device-mapping/root", "/dev/sda1"),
    ];
    for (path, want) in cases {
        let r = get_bare(&e, &format!("/latest/meta-data/{path}")).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.text(), want, "{path}");
    }
    assert_eq!(
        get_bare(&e, "/latest/meta-data/public-keys/").await.status,
        StatusCode::NOT_FOUND
    );
}

// ---------------------------------------------------------------- cache

#[tokio::test]
async fn cache_serves_a_burst_from_one_lookup() {
    let e = env();
    for path in [
        "/openstack",
        "/openstack/latest/meta_data.json",
        "/openstack/latest/network_data.json",
        "/latest/meta-data/",
    ] {
        assert_eq!(get(&e, path).await.status, StatusCode::OK);
    }
    assert_eq!(e.source.lookups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn cache_can_be_disabled() {
    let e = env_with(
        MetadataConfig {
            cache_ttl_secs: 0,
            ..config()
        },
        MemSource::default(),
    );
    get(&e, "/openstack").await;
    get(&e, "/openstack").await;
    assert_eq!(e.source.lookups.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_stored_password_is_visible_despite_the_cache() {
    let e = env();
    let url = "/openstack/latest/password";
    assert_eq!(get(&e, url).await.text(), "");
    let r = send(&e.app, proxied(Method::POST, url, IID, b"pw".to_vec())).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(get(&e, url).await.text(), "pw");
}

// ---------------------------------------------------------------- config

#[test]
fn config_defaults_are_novas() {
    let c = MetadataConfig::default();
    assert_eq!(c.dhcp_domain, "novalocal");
    assert_eq!(c.cache_ttl_secs, 15);
    assert_eq!(c.vendordata_providers, vec!["StaticJSON".to_owned()]);
    assert!(c.vendordata_jsonfile_path.is_none());
    let parsed: MetadataConfig =
        toml::from_str("shared_secret = \"x\"\ndhcp_domain = \"\"").expect("toml");
    assert_eq!(parsed.shared_secret, "x");
    assert_eq!(parsed.dhcp_domain, "");
    assert_eq!(parsed.cache_ttl_secs, 15);
}

// ---------------------------------------------------------------- with the real proxy

struct OneInstance {
    instance_id: String,
}

#[async_trait]
impl stratus_network_agent::metadata_proxy::PortLookup for OneInstance {
    async fn lookup_instance(
        &self,
        _network_id: NetworkId,
        _ip: IpAddr,
    ) -> stratus_network_agent::error::Result<Option<stratus_network_agent::rpc::InstanceLookup>>
    {
        Ok(Some(stratus_network_agent::rpc::InstanceLookup {
            instance_id: self.instance_id.clone(),
            project_id: PROJECT.to_owned(),
        }))
    }
}

/// The network agent's metadata proxy in front of this API, both on
/// loopback: the headers and signature one side writes, the other accepts.
#[tokio::test]
async fn neutron_proxy_round_trip_over_loopback() {
    let e = env();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind api");
    let api_addr = api.local_addr().expect("api addr");
    let app = e.app.clone();
    let server = tokio::spawn(async move {
        let _ = axum::serve(api, app).await;
    });

    let start_proxy = |secret: &str, iid: String| {
        let secret = secret.to_owned();
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind proxy");
            stratus_network_agent::metadata_proxy::MetadataProxy::serve(
                listener,
                stratus_network_agent::metadata_proxy::ProxyConfig {
                    network_id: NET1.parse().expect("net"),
                    lookup: Arc::new(OneInstance { instance_id: iid }),
                    upstream: format!("http://{api_addr}"),
                    secret,
                    recorder: stratus_network_agent::events::Recorder::disabled(),
                },
            )
            .expect("proxy")
        }
    };
    let client = reqwest::Client::new();

    let proxy = start_proxy(SECRET, IID.to_owned()).await;
    let base = format!("http://{}", proxy.local_addr);
    let r = client
        .get(format!("{base}/openstack/latest/meta_data.json"))
        .send()
        .await
        .expect("GET via proxy");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v.get("uuid"), Some(&serde_json::json!(IID)));
    let r = client
        .post(format!("{base}/openstack/latest/password"))
        .body("via-proxy")
        .send()
        .await
        .expect("POST via proxy");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let r = client
        .get(format!("{base}/openstack/latest/password"))
        .send()
        .await
        .expect("GET via proxy");
    assert_eq!(r.text().await.expect("text"), "via-proxy");
    proxy.stop().await;

    // The bare instance has no fixed IPv4: local-ipv4 is the address the
    // proxy forwarded (the guest's, here loopback).
    let bare = start_proxy(SECRET, bare_instance().uuid.to_string()).await;
    let r = client
        .get(format!(
            "http://{}/latest/meta-data/local-ipv4",
            bare.local_addr
        ))
        .send()
        .await
        .expect("GET via proxy");
    assert_eq!(r.text().await.expect("text"), "127.0.0.1");
    bare.stop().await;

    // A proxy with another secret is refused, and its 403 reaches the guest.
    let wrong = start_proxy("not-the-secret", IID.to_owned()).await;
    let r = client
        .get(format!("http://{}/openstack", wrong.local_addr))
        .send()
        .await
        .expect("GET via proxy");
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    wrong.stop().await;

    server.abort();
}

// ---------------------------------------------------------------- cloud-init's reads

/// Reads as cloud-init's OpenStack datasource does: pick the newest version
/// it knows from `/openstack`, read the files (meta_data.json mandatory,
/// the rest 200 or 404), then crawl the EC2 tree, following `name/` and
/// `0=keyname` entries. Every listed entry must resolve.
#[tokio::test]
async fn cloud_init_style_crawl_resolves_every_listed_entry() {
    let e = env();
    const KNOWN: [&str; 5] = [
        "2012-08-10",
        "2013-04-04",
        "2013-10-17",
        "2015-10-15",
        "2018-08-27",
    ];
    let listing = get(&e, "/openstack").await.text();
    let version = KNOWN
        .iter()
        .rev()
        .find(|v| listing.lines().any(|l| l == **v))
        .copied()
        .unwrap_or("latest");
    assert_eq!(version, "2018-08-27");
    let md = get(&e, &format!("/openstack/{version}/meta_data.json")).await;
    assert_eq!(md.status, StatusCode::OK);
    assert!(md.json().get("uuid").is_some());
    for f in [
        "user_data",
        "vendor_data.json",
        "vendor_data2.json",
        "network_data.json",
    ] {
        let r = get(&e, &format!("/openstack/{version}/{f}")).await;
        assert_eq!(r.status, StatusCode::OK, "{f}");
    }

    let mut dirs = vec!["/latest/meta-data/".to_owned()];
    let mut leaves = 0;
    while let Some(dir) = dirs.pop() {
        let r = get(&e, &dir).await;
        assert_eq!(r.status, StatusCode::OK, "{dir}");
        for entry in r.text().lines() {
            if let Some(sub) = entry.strip_suffix('/') {
                dirs.push(format!("{dir}{sub}/"));
            } else if let Some((key, _)) = entry.split_once('=') {
                dirs.push(format!("{dir}{key}/"));
            } else {
                let r = get(&e, &format!("{dir}{entry}")).await;
                assert_eq!(r.status, StatusCode::OK, "{dir}{entry}");
                leaves += 1;
            }
        }
    }
    assert_eq!(leaves, 19);
}

// ---------------------------------------------------------------- DynamicJSON vendor data

/// A vendordata service on loopback: `/vd` records what it was sent and
/// answers JSON; `/fail` answers 500.
async fn vendordata_service() -> (
    std::net::SocketAddr,
    Arc<Mutex<Vec<serde_json::Value>>>,
    tokio::task::JoinHandle<()>,
) {
    use axum::routing::post;
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let seen2 = seen.clone();
    let app = axum::Router::new()
        .route(
            "/vd",
            post(move |body: axum::Json<serde_json::Value>| {
                let seen = seen2.clone();
                async move {
                    seen.lock().expect("lock").push(body.0);
                    axum::Json(serde_json::json!({"cloud-init": "#cloud-config\n", "n": 1}))
                }
            }),
        )
        .route(
            "/fail",
            post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen, task)
}

#[tokio::test]
async fn vendor_data2_calls_dynamic_targets() {
    let (addr, seen, task) = vendordata_service().await;
    let e = env_with(
        MetadataConfig {
            vendordata_providers: vec!["StaticJSON".into(), "DynamicJSON".into()],
            vendordata_dynamic_targets: vec![
                format!("app@http://{addr}/vd"),
                format!("broken@http://{addr}/fail"),
                "no-name-here".into(),
                format!("static@http://{addr}/vd"),
            ],
            ..config()
        },
        MemSource::default(),
    );
    let r = get(&e, "/openstack/latest/vendor_data2.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(key_order(&r.body), ["static", "app", "broken"]);
    assert_eq!(
        r.json(),
        serde_json::json!({
            "static": {},
            "app": {"cloud-init": "#cloud-config\n", "n": 1},
            "broken": {}
        })
    );
    let sent = seen.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1, "the duplicate `static` target is not called");
    assert_eq!(
        sent[0],
        serde_json::json!({
            "project-id": PROJECT,
            "instance-id": IID,
            "image-id": IMAGE,
            "user-data": base64::engine::general_purpose::STANDARD
                .encode(b"#cloud-config\nhostname: web-1\n"),
            "hostname": "web-1",
            "metadata": {"role": "web"},
            "boot-roles": ""
        })
    );
    // vendor_data.json stays the static file only.
    assert_eq!(
        get(&e, "/openstack/latest/vendor_data.json").await.text(),
        "{}"
    );
    task.abort();
}

#[tokio::test]
async fn failing_dynamic_target_can_be_fatal() {
    let (addr, _seen, task) = vendordata_service().await;
    let e = env_with(
        MetadataConfig {
            vendordata_providers: vec!["DynamicJSON".into()],
            vendordata_dynamic_targets: vec![format!("broken@http://{addr}/fail")],
            vendordata_dynamic_failure_fatal: true,
            ..config()
        },
        MemSource::default(),
    );
    let r = get(&e, "/openstack/latest/vendor_data2.json").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    // Other documents do not depend on the targets.
    assert_eq!(
        get(&e, "/openstack/latest/meta_data.json").await.status,
        StatusCode::OK
    );
    task.abort();
}
