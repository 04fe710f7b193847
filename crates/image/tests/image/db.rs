//! The db functions in a caller's transaction: one that opens its own
//! transaction on the connection it is given nests as a savepoint, so the
//! caller's rollback undoes it and a failure inside leaves the caller's
//! transaction usable (PostgreSQL aborts a transaction on any error unless
//! it is rolled back to a savepoint).

use stratus_common::ids::ImageId;
use stratus_common::time;
use stratus_image::db;
use stratus_image::domain::{Image, Member, MemberStatus};
use stratus_image::ImageError;

use crate::harness::each_engine;

fn member(image: ImageId, project: &str) -> Member {
    let now = time::now();
    Member {
        image_id: image,
        member_id: project.to_owned(),
        status: MemberStatus::Pending,
        created_at: now,
        updated_at: now,
    }
}

#[tokio::test]
async fn db_functions_nest_in_a_callers_transaction() {
    each_engine(|env| async move {
        let db = &env.db;
        let mut image = Image::new(ImageId::new(), Some("p1".to_owned()), time::now());
        image.tags = vec!["t".to_owned()];

        // Rolled back by the caller: nothing stays, also what the nested
        // transactions of image_insert and member_insert committed.
        let mut tx = db.begin().await.expect("begin");
        db::image_insert(&mut tx, &image).await.expect("insert");
        db::member_insert(&mut tx, &member(image.id, "p2"), 10)
            .await
            .expect("member");
        let seen = db::image_get(&mut tx, &image.id).await.expect("get");
        assert_eq!(seen.map(|i| i.tags), Some(vec!["t".to_owned()]));
        tx.rollback().await.expect("rollback");
        let conn = &mut *db.conn().await.expect("conn");
        assert!(db::image_get(conn, &image.id).await.expect("get").is_none());

        // Failures inside leave the caller's transaction usable, and what
        // it did before them is committed with it.
        let mut tx = db.begin().await.expect("begin");
        db::image_insert(&mut tx, &image).await.expect("insert");
        let dup = db::image_insert(&mut tx, &image).await.expect_err("dup");
        assert!(matches!(dup, ImageError::Conflict(_)), "{dup:?}");
        // No such image: the member row's foreign key fails the statement.
        let orphan = db::member_insert(&mut tx, &member(ImageId::new(), "p2"), 10).await;
        assert!(orphan.is_err(), "{orphan:?}");
        db::member_insert(&mut tx, &member(image.id, "p2"), 10)
            .await
            .expect("member after a failure");
        tx.commit().await.expect("commit");
        let got = db::image_get(conn, &image.id).await.expect("get");
        assert_eq!(got.map(|i| i.tags), Some(vec!["t".to_owned()]));
        let members = db::member_list(conn, &image.id).await.expect("members");
        assert_eq!(members.len(), 1);

        // On its own connection a function is still atomic.
        let dup = db::member_insert(conn, &member(image.id, "p2"), 10)
            .await
            .expect_err("dup member");
        assert!(matches!(dup, ImageError::Conflict(_)), "{dup:?}");
    })
    .await;
}
