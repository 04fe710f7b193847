//! The task API (`/v2/tasks`) on both engines: admin-only, body checks,
//! listing, and `import` tasks that fetch only from allowed URLs (a local
//! HTTP server here), create the image and record it, or fail with a
//! message and leave no image.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use stratus_image::ImageConfig;

use crate::harness::*;

/// Serves `data` at `/images/disk.raw` on a loopback port; its base URL.
async fn serve(data: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .route(
            "/images/disk.raw",
            axum::routing::get(move || {
                let data = data.clone();
                async move { data }
            }),
        )
        .route(
            "/elsewhere",
            axum::routing::get(|| async {
                (
                    StatusCode::FOUND,
                    [("location", "http://127.0.0.1:1/secret")],
                )
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn each_engine_with<F, Fut>(config: ImageConfig, f: F)
where
    F: Fn(Env) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for t in stratus_db::testing::test_dbs("image")
        .await
        .expect("test databases")
    {
        let env = Env::with_config(&t.db, config.clone()).await;
        eprintln!("engine: {:?}", env.engine);
        f(env).await;
        t.cleanup().await;
    }
}

fn import(from: &str, props: Value) -> Value {
    json!({"type": "import", "input": {
        "import_from": from, "import_from_format": "raw", "image_properties": props}})
}

async fn create(env: &Env, body: Value) -> Value {
    let r = env
        .call(Method::POST, "/v2/tasks", Some(ADMIN), Some(body))
        .await;
    r.assert_status(StatusCode::CREATED);
    let t = r.json();
    assert_eq!(
        r.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/v2/tasks/{}", t["id"].as_str().expect("id")).as_str())
    );
    t
}

/// Polls the task until it is finished; its JSON.
async fn finished(env: &Env, id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        last = env.get(&format!("/v2/tasks/{id}"), ADMIN).await.json();
        if last["status"] == "success" || last["status"] == "failure" {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("task {id} never finished: {last}");
}

#[tokio::test]
async fn import_tasks_fetch_only_allowed_urls() {
    let data = pseudo_random(300_000, 7);
    let base = serve(data.clone()).await;
    let config = ImageConfig {
        task_import_allowed: vec![format!("{base}/images/"), format!("{base}/elsewhere")],
        ..ImageConfig::default()
    };
    each_engine_with(config, |env| {
        let base = base.clone();
        let data = data.clone();
        async move {
            let t = create(
                &env,
                import(
                    &format!("{base}/images/disk.raw"),
                    json!({"name": "imported", "disk_format": "raw",
                           "container_format": "bare", "hw_disk_bus": "virtio"}),
                ),
            )
            .await;
            assert_eq!(t["type"], "import");
            assert_eq!(t["owner"], P_ADMIN);
            assert_eq!(t["schema"], "/v2/schemas/task");
            assert!(t["status"] == "pending" || t["status"] == "processing", "{t}");
            let id = t["id"].as_str().expect("id").to_owned();
            let done = finished(&env, &id).await;
            assert_eq!(done["status"], "success", "{done}");
            assert_eq!(done["message"], "");
            assert!(done["expires_at"].is_string(), "{done}");
            let image = done["result"]["image_id"].as_str().expect("image_id");
            let img = env.wait_status(image, "active").await;
            assert_eq!(img["name"], "imported");
            assert_eq!(img["hw_disk_bus"], "virtio");
            assert_eq!(img["size"], data.len());
            assert_eq!(img["checksum"], md5_hex(&data).as_str());
            assert_eq!(env.download(image, ADMIN).await.bytes.as_ref(), &data[..]);

            // Refused sources: the task fails and no image is left.
            let before = env.get("/v2/images", ADMIN).await.json()["images"]
                .as_array()
                .map(Vec::len);
            for (from, says) in [
                ("file:///etc/passwd".to_owned(), "File based imports are not allowed"),
                ("ftp://127.0.0.1/x".to_owned(), "The given uri is not valid"),
                (format!("{base}/elsewhere"), "302"),
                (format!("{base}/other"), "not allowed"),
                (format!("{base}/images/missing"), "404"),
            ] {
                let t = create(&env, import(&from, json!({"name": "refused"}))).await;
                let done = finished(&env, t["id"].as_str().expect("id")).await;
                assert_eq!(done["status"], "failure", "{from}: {done}");
                assert!(
                    done["message"].as_str().unwrap_or("").contains(says),
                    "{from}: {done}"
                );
                assert_eq!(done["result"], Value::Null);
            }
            let t = create(
                &env,
                json!({"type": "import", "input": {"import_from": format!("{base}/images/disk.raw")}}),
            )
            .await;
            let done = finished(&env, t["id"].as_str().expect("id")).await;
            assert_eq!(
                done["message"],
                "Input does not contain 'import_from_format' field"
            );
            let after = env.get("/v2/images", ADMIN).await.json()["images"]
                .as_array()
                .map(Vec::len);
            assert_eq!(before, after);

            // Listing: filters, sorting, paging.
            let all = env.get("/v2/tasks", ADMIN).await.json();
            assert_eq!(all["tasks"].as_array().map(Vec::len), Some(7));
            assert!(all["tasks"][0].get("input").is_none(), "{all}");
            assert_eq!(all["schema"], "/v2/schemas/tasks");
            let ok = env.get("/v2/tasks?status=success&type=import", ADMIN).await.json();
            assert_eq!(ok["tasks"].as_array().map(Vec::len), Some(1));
            assert_eq!(ok["tasks"][0]["id"], id.as_str());
            let page = env.get("/v2/tasks?limit=4&sort_dir=asc", ADMIN).await.json();
            assert_eq!(page["tasks"][0]["id"], id.as_str());
            let next = page["next"].as_str().expect("next").to_owned();
            let rest = env.get(&next, ADMIN).await.json();
            assert_eq!(rest["tasks"].as_array().map(Vec::len), Some(3));
            for bad in [
                "status=done",
                "type=export",
                "marker=nope",
                "limit=x",
                "sort_key=input",
                "sort_dir=up",
            ] {
                assert_eq!(
                    env.get(&format!("/v2/tasks?{bad}"), ADMIN).await.status,
                    StatusCode::BAD_REQUEST,
                    "{bad}"
                );
            }
        }
    })
    .await;
}

#[tokio::test]
async fn task_api_is_admin_only_and_checks_bodies() {
    each_engine(|env| async move {
        // No allow-list: nothing is fetched.
        let t = create(&env, import("http://127.0.0.1:9/x", json!({}))).await;
        let id = t["id"].as_str().expect("id").to_owned();
        let done = finished(&env, &id).await;
        assert_eq!(done["status"], "failure");
        assert!(done["message"]
            .as_str()
            .unwrap_or("")
            .contains("not allowed"));

        for token in [ALICE, READER, UNSCOPED] {
            for (method, uri) in [
                (Method::GET, "/v2/tasks".to_owned()),
                (Method::GET, format!("/v2/tasks/{id}")),
                (Method::DELETE, format!("/v2/tasks/{id}")),
            ] {
                let r = env.call(method.clone(), &uri, Some(token), None).await;
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {uri}");
                r.error_message();
            }
            let r = env
                .call(
                    Method::POST,
                    "/v2/tasks",
                    Some(token),
                    Some(import("http://x/", json!({}))),
                )
                .await;
            assert_eq!(r.status, StatusCode::FORBIDDEN);
        }
        for body in [
            json!({"input": {}}),
            json!({"type": "import"}),
            json!({"type": "export", "input": {}}),
            json!({"type": "import", "input": "x"}),
            json!({"type": "import", "input": {}, "colour": "red"}),
            json!([]),
        ] {
            let r = env
                .call(Method::POST, "/v2/tasks", Some(ADMIN), Some(body.clone()))
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
            r.error_message();
        }
        let r = env
            .call(
                Method::DELETE,
                &format!("/v2/tasks/{id}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            r.headers.get("allow").and_then(|v| v.to_str().ok()),
            Some("GET")
        );
        assert_eq!(
            env.get("/v2/tasks/no-such-task", ADMIN).await.status,
            StatusCode::NOT_FOUND
        );
        for schema in ["task", "tasks"] {
            let r = env.get(&format!("/v2/schemas/{schema}"), READER).await;
            r.assert_status(StatusCode::OK);
            assert_eq!(r.json()["name"], schema);
        }
    })
    .await;
}

#[tokio::test]
async fn tasks_abandoned_by_a_dead_service_fail() {
    use stratus_image::domain::task::{Task, TaskStatus};
    each_engine(|env| async move {
        let long_ago = stratus_common::time::now() - chrono::Duration::minutes(30);
        let task = |id: &str, status: TaskStatus, at| Task {
            id: id.to_owned(),
            task_type: "import".to_owned(),
            status,
            owner: Some(P_ADMIN.to_owned()),
            input: json!({}),
            result: None,
            message: String::new(),
            image_id: None,
            request_id: None,
            user_id: None,
            expires_at: None,
            created_at: at,
            updated_at: at,
        };
        let now = stratus_common::time::now();
        let conn = &mut *env.db.conn().await.expect("conn");
        for t in [
            task("abandoned", TaskStatus::Processing, long_ago),
            task("never-started", TaskStatus::Pending, long_ago),
            task("running", TaskStatus::Processing, now),
        ] {
            stratus_image::db::task_insert(conn, &t)
                .await
                .expect("insert");
        }
        let n = stratus_image::data::fail_stale_tasks(&env.db, 48)
            .await
            .expect("reconcile");
        assert_eq!(n, 2);
        for (id, want) in [
            ("abandoned", "failure"),
            ("never-started", "failure"),
            ("running", "processing"),
        ] {
            let t = env.get(&format!("/v2/tasks/{id}"), ADMIN).await.json();
            assert_eq!(t["status"], want, "{t}");
        }
        let t = env.get("/v2/tasks/abandoned", ADMIN).await.json();
        assert!(
            t["message"].as_str().unwrap_or("").contains("stopped"),
            "{t}"
        );
        assert!(t["expires_at"].is_string(), "{t}");
    })
    .await;
}
