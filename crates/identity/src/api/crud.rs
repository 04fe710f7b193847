//! The steps that the handlers of Keystone's plain resources (domains,
//! projects, users, groups, roles, regions, services, endpoints) share,
//! written once: show one, load one inside a write transaction for a change,
//! save it and answer with its view, and the `{"<kind>": ...}` and
//! `{"<kinds>": [...], "links": ...}` bodies.
//!
//! Each handler keeps what is its own: the policy action, validation, the
//! fields it changes and any side effect (revocations, cascades).

use std::future::Future;

use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::extract::{BaseUrl, Caller};
use super::{check_id, list_body};
use crate::db::Conn;
use crate::error::Result;
use crate::policy::{enforce, Action};
use crate::Inner;

/// A write transaction (see [`crate::db::begin`]).
pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// A stored resource with an id, a row to load and save, and a view.
pub(crate) trait Resource: Sized + Send + Sync {
    /// The singular name: the member of a one-resource body and the kind
    /// in a 404 (`"group"`).
    const KIND: &'static str;
    /// The collection: the member of a list body and its path (`"groups"`).
    const COLLECTION: &'static str;

    /// The row, or the resource's 404.
    fn get(conn: &mut Conn, id: &str) -> impl Future<Output = Result<Self>> + Send;

    /// Writes the changed row back.
    fn save(&self, conn: &mut Conn) -> impl Future<Output = Result<()>> + Send;

    /// Keystone's JSON shape.
    fn view(&self, base: &BaseUrl) -> Value;
}

/// `{"<kind>": view}`.
pub(crate) fn one<R: Resource>(r: &R, base: &BaseUrl) -> Json<Value> {
    Json(json!({ R::KIND: r.view(base) }))
}

/// 201 with `{"<kind>": view}`.
pub(crate) fn created<R: Resource>(r: &R, base: &BaseUrl) -> (StatusCode, Json<Value>) {
    (StatusCode::CREATED, one(r, base))
}

/// The list body of the collection (`GET /v3/<kinds>`).
pub(crate) fn many<R: Resource>(rows: &[R], base: &BaseUrl) -> Json<Value> {
    let items = rows.iter().map(|r| r.view(base)).collect();
    Json(list_body(R::COLLECTION, items, base, R::COLLECTION))
}

/// `GET /v3/<kinds>/{id}`: the id, the policy, then the row or its 404.
pub(crate) async fn show<R: Resource>(
    inner: &Inner,
    caller: &Caller,
    action: Action<'_>,
    id: &str,
    base: &BaseUrl,
) -> Result<Json<Value>> {
    check_id(R::KIND, id)?;
    enforce(&caller.ctx(), action)?;
    let mut conn = inner.db.conn().await?;
    Ok(one(&R::get(&mut conn, id).await?, base))
}

/// The start of a change (update or delete): the id, the policy, a write
/// transaction, and the row in it (404 when it is missing).
pub(crate) async fn load_for_change<R: Resource>(
    inner: &Inner,
    caller: &Caller,
    action: Action<'_>,
    id: &str,
) -> Result<(Tx, R)> {
    check_id(R::KIND, id)?;
    enforce(&caller.ctx(), action)?;
    let mut tx = crate::db::begin(&inner.db).await?;
    let r = R::get(&mut tx, id).await?;
    Ok((tx, r))
}

/// The end of an update: the row written, the transaction committed, the
/// new view.
pub(crate) async fn save<R: Resource>(mut tx: Tx, r: &R, base: &BaseUrl) -> Result<Json<Value>> {
    r.save(&mut tx).await?;
    tx.commit().await?;
    Ok(one(r, base))
}

/// `PATCH /v3/<kinds>/{id}` whose changes need nothing but the row:
/// [`load_for_change`], `apply`, [`save`]. An error from `apply` writes
/// nothing.
pub(crate) async fn update<R: Resource>(
    inner: &Inner,
    caller: &Caller,
    action: Action<'_>,
    id: &str,
    base: &BaseUrl,
    apply: impl FnOnce(&mut R) -> Result<()> + Send,
) -> Result<Json<Value>> {
    let (tx, mut r) = load_for_change::<R>(inner, caller, action, id).await?;
    apply(&mut r)?;
    save(tx, &r, base).await
}

/// The end of a write with nothing to show: commit, then 204.
pub(crate) async fn no_content(tx: Tx) -> Result<StatusCode> {
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
