//! Image members: the projects a shared image is offered to.

use stratus_common::ids::ImageId;
use stratus_common::time;
use stratus_db::sqlx::any::AnyRow;
use stratus_db::sqlx::{self, Connection, Row};

use super::Conn;
use crate::domain::{Member, MemberStatus};
use crate::error::ImageError;

fn member_from_row(r: &AnyRow) -> Result<Member, ImageError> {
    let image_id: String = r.try_get("image_id")?;
    let status: String = r.try_get("status")?;
    let created: String = r.try_get("created_at")?;
    let updated: String = r.try_get("updated_at")?;
    let bad = |w: &str| ImageError::Internal(format!("stored member {w} is invalid"));
    Ok(Member {
        image_id: image_id.parse().map_err(|_| bad("image id"))?,
        member_id: r.try_get("member")?,
        status: status.parse().map_err(|_| bad("status"))?,
        created_at: time::from_db(&created).ok_or_else(|| bad("time"))?,
        updated_at: time::from_db(&updated).ok_or_else(|| bad("time"))?,
    })
}

/// Adds a member unless the image already has `quota` members; a duplicate
/// is a conflict.
pub async fn member_insert(conn: &mut Conn, m: &Member, quota: usize) -> Result<(), ImageError> {
    let mut tx = conn.begin().await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM image_members WHERE image_id = $1")
        .bind(m.image_id.to_string())
        .fetch_one(&mut *tx)
        .await?;
    if count as usize >= quota {
        return Err(ImageError::TooLarge(format!(
            "Maximum number of image members exceeded. Attempted: {}, Maximum: {quota}",
            count + 1
        )));
    }
    let r = sqlx::query(
        "INSERT INTO image_members (image_id, member, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(m.image_id.to_string())
    .bind(&m.member_id)
    .bind(m.status.as_str())
    .bind(time::to_db(m.created_at))
    .bind(time::to_db(m.updated_at))
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Err(ImageError::Conflict(format!(
            "The target member {} is already associated with image {}.",
            m.member_id, m.image_id
        )));
    }
    tx.commit().await?;
    Ok(())
}

pub async fn member_get(
    conn: &mut Conn,
    image: &ImageId,
    member: &str,
) -> Result<Option<Member>, ImageError> {
    let row = sqlx::query(
        "SELECT image_id, member, status, created_at, updated_at FROM image_members \
         WHERE image_id = $1 AND member = $2",
    )
    .bind(image.to_string())
    .bind(member)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(member_from_row).transpose()
}

pub async fn member_list(conn: &mut Conn, image: &ImageId) -> Result<Vec<Member>, ImageError> {
    sqlx::query(
        "SELECT image_id, member, status, created_at, updated_at FROM image_members \
         WHERE image_id = $1 ORDER BY created_at, member",
    )
    .bind(image.to_string())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(member_from_row)
    .collect()
}

/// Sets a member's status; `None` when there is no such member.
pub async fn member_update(
    conn: &mut Conn,
    image: &ImageId,
    member: &str,
    status: MemberStatus,
) -> Result<Option<Member>, ImageError> {
    let r = sqlx::query(
        "UPDATE image_members SET status = $1, updated_at = $2 WHERE image_id = $3 AND member = $4",
    )
    .bind(status.as_str())
    .bind(time::to_db(time::now()))
    .bind(image.to_string())
    .bind(member)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    member_get(conn, image, member).await
}

/// True when a member was removed.
pub async fn member_delete(
    conn: &mut Conn,
    image: &ImageId,
    member: &str,
) -> Result<bool, ImageError> {
    let r = sqlx::query("DELETE FROM image_members WHERE image_id = $1 AND member = $2")
        .bind(image.to_string())
        .bind(member)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}
