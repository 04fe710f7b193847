//! Sharing an image with other projects through members.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

fn names(v: &Value) -> Vec<String> {
    v["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| i["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn members_flow() {
    each_engine(|env| async move {
        let img = env.create(ALICE, json!({"name": "shared"})).await;
        let id = img["id"].as_str().expect("id").to_owned();
        let members = format!("/v2/images/{id}/members");
        let bob = format!("{members}/{P_BOB}");

        assert_eq!(
            env.get(&format!("/v2/images/{id}"), BOB).await.status,
            StatusCode::NOT_FOUND
        );

        let r = env
            .call(
                Method::POST,
                &members,
                Some(ALICE),
                Some(json!({"member": P_BOB})),
            )
            .await;
        r.assert_status(StatusCode::OK);
        let m = r.json();
        assert_eq!(m["member_id"], P_BOB);
        assert_eq!(m["image_id"], id.as_str());
        assert_eq!(m["status"], "pending");
        assert_eq!(m["schema"], "/v2/schemas/member");

        let r = env
            .call(
                Method::POST,
                &members,
                Some(ALICE),
                Some(json!({"member": P_BOB})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        r.error_message();
        let r = env
            .call(Method::POST, &members, Some(ALICE), Some(json!({})))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        env.call(
            Method::POST,
            &members,
            Some(ALICE),
            Some(json!({"member": P_CAROL})),
        )
        .await;

        // Pending: Bob can see the image but it is not in his default list.
        assert_eq!(
            env.get(&format!("/v2/images/{id}"), BOB).await.status,
            StatusCode::OK
        );
        assert!(names(&env.get("/v2/images", BOB).await.json()).is_empty());
        assert_eq!(
            names(
                &env.get("/v2/images?member_status=pending", BOB)
                    .await
                    .json()
            ),
            vec!["shared"]
        );
        assert_eq!(
            names(
                &env.get("/v2/images?visibility=shared&member_status=all", BOB)
                    .await
                    .json()
            ),
            vec!["shared"]
        );

        // Bob sees only his own membership; Alice sees both.
        let list = env.get(&members, BOB).await.json();
        assert_eq!(list["members"].as_array().map(Vec::len), Some(1));
        assert_eq!(list["schema"], "/v2/schemas/members");
        assert_eq!(
            env.get(&members, ALICE).await.json()["members"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        assert_eq!(
            env.get(&format!("{members}/{P_CAROL}"), BOB).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(env.get(&bob, BOB).await.json()["status"], "pending");

        // Only the member decides; only known statuses.
        let r = env
            .call(
                Method::PUT,
                &bob,
                Some(ALICE),
                Some(json!({"status": "accepted"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        r.error_message();
        let r = env
            .call(
                Method::PUT,
                &bob,
                Some(BOB),
                Some(json!({"status": "maybe"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = env
            .call(
                Method::PUT,
                &bob,
                Some(BOB),
                Some(json!({"status": "accepted"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["status"], "accepted");
        assert_eq!(
            names(&env.get("/v2/images", BOB).await.json()),
            vec!["shared"]
        );

        // A member cannot share further, change the image, or remove itself.
        let r = env
            .call(
                Method::POST,
                &members,
                Some(BOB),
                Some(json!({"member": "x"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = env
            .patch(
                &id,
                BOB,
                json!([{"op": "replace", "path": "/name", "value": "mine"}]),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = env.call(Method::DELETE, &bob, Some(BOB), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        // Rejected: still visible by id, gone from the default list.
        env.call(
            Method::PUT,
            &bob,
            Some(BOB),
            Some(json!({"status": "rejected"})),
        )
        .await;
        assert!(names(&env.get("/v2/images", BOB).await.json()).is_empty());

        let r = env.call(Method::DELETE, &bob, Some(ALICE), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            env.get(&format!("/v2/images/{id}"), BOB).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            env.call(Method::DELETE, &bob, Some(ALICE), None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            env.get(&format!("/v2/images/{id}"), CAROL).await.status,
            StatusCode::OK
        );

        // Members exist only for shared images.
        let private = env
            .create(ALICE, json!({"name": "p", "visibility": "private"}))
            .await;
        let r = env
            .call(
                Method::POST,
                &format!("/v2/images/{}/members", private["id"].as_str().expect("id")),
                Some(ALICE),
                Some(json!({"member": P_BOB})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.error_message().contains("shared"));
    })
    .await;
}
