//! The image list query: who sees what (Glance's visibility rules for
//! listing) and the column, tag and property filters, all in SQL. Sorting and
//! paging are done by the caller over the result, so that NULL ordering is
//! the same on both engines.

use stratus_db::b2i;
use stratus_db::sqlx;

use super::{bind_all, image_from_row, Arg, Conn, IMAGE_COLUMNS};
use crate::domain::{Image, MemberStatus};
use crate::error::ImageError;

/// The `visibility` list filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VisibilityFilter {
    Public,
    Private,
    Shared,
    Community,
    All,
}

#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// The caller's project; `None` sees only public/community images.
    pub project: Option<String>,
    pub admin: bool,
    /// `None`: Glance's default (own, public, and shared-with-me images).
    pub visibility: Option<VisibilityFilter>,
    /// Membership status a shared image must have to be listed; `None`: any.
    pub member_status: Option<MemberStatus>,
    pub ids: Vec<String>,
    pub names: Vec<String>,
    pub statuses: Vec<String>,
    pub owners: Vec<String>,
    pub disk_formats: Vec<String>,
    pub container_formats: Vec<String>,
    /// Every tag must be on the image.
    pub tags: Vec<String>,
    /// Every `name = value` must be a property of the image.
    pub properties: Vec<(String, String)>,
    pub protected: Option<bool>,
    /// `Some(false)` by default: hidden images are left out.
    pub os_hidden: Option<bool>,
    pub size_min: Option<i64>,
    pub size_max: Option<i64>,
    /// `(column, SQL operator, stored time)` for created_at/updated_at filters.
    pub times: Vec<(&'static str, &'static str, String)>,
}

struct Where {
    clauses: Vec<String>,
    args: Vec<Arg>,
}

impl Where {
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    fn text(&mut self, s: &str) -> String {
        self.arg(Arg::Text(s.to_owned()))
    }

    fn any_of(&mut self, column: &str, values: &[String]) {
        if values.is_empty() {
            return;
        }
        let ps: Vec<String> = values.iter().map(|v| self.text(v)).collect();
        self.clauses
            .push(format!("{column} IN ({})", ps.join(", ")));
    }
}

/// Images matching `f`, unsorted, without properties, tags or locations.
pub async fn image_list(conn: &mut Conn, f: &ListFilter) -> Result<Vec<Image>, ImageError> {
    let mut w = Where {
        clauses: vec!["deleted = 0".to_owned()],
        args: Vec::new(),
    };
    visibility_clause(&mut w, f);
    w.any_of("id", &f.ids);
    w.any_of("name", &f.names);
    w.any_of("status", &f.statuses);
    w.any_of("owner", &f.owners);
    w.any_of("disk_format", &f.disk_formats);
    w.any_of("container_format", &f.container_formats);
    for t in &f.tags {
        let p = w.text(t);
        w.clauses.push(format!(
            "EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.value = {p})"
        ));
    }
    for (k, v) in &f.properties {
        let pk = w.text(k);
        let pv = w.text(v);
        w.clauses.push(format!(
            "EXISTS (SELECT 1 FROM image_properties p WHERE p.image_id = images.id \
             AND p.name = {pk} AND p.value = {pv})"
        ));
    }
    if let Some(b) = f.protected {
        let p = w.arg(Arg::Int(b2i(b)));
        w.clauses.push(format!("protected = {p}"));
    }
    if let Some(b) = f.os_hidden {
        let p = w.arg(Arg::Int(b2i(b)));
        w.clauses.push(format!("os_hidden = {p}"));
    }
    if let Some(n) = f.size_min {
        let p = w.arg(Arg::Int(n));
        w.clauses.push(format!("size >= {p}"));
    }
    if let Some(n) = f.size_max {
        let p = w.arg(Arg::Int(n));
        w.clauses.push(format!("size <= {p}"));
    }
    for (col, op, t) in &f.times {
        let p = w.text(t);
        w.clauses.push(format!("{col} {op} {p}"));
    }
    let sql = format!(
        "SELECT {IMAGE_COLUMNS} FROM images WHERE {}",
        w.clauses.join(" AND ")
    );
    let rows = bind_all(sqlx::query(&sql), &w.args)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(image_from_row).collect()
}

fn visibility_clause(w: &mut Where, f: &ListFilter) {
    use VisibilityFilter as V;
    if f.admin {
        let v = match f.visibility {
            None | Some(V::All) => return,
            Some(V::Public) => "public",
            Some(V::Private) => "private",
            Some(V::Shared) => "shared",
            Some(V::Community) => "community",
        };
        let p = w.text(v);
        w.clauses.push(format!("visibility = {p}"));
        return;
    }
    let project = f.project.clone().unwrap_or_default();
    let me = w.text(&project);
    let member = match f.member_status {
        Some(s) => {
            let ps = w.text(s.as_str());
            format!(
                "EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = images.id \
                 AND m.member = {me} AND m.status = {ps})"
            )
        }
        None => format!(
            "EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = images.id AND m.member = {me})"
        ),
    };
    let clause = match f.visibility {
        None => format!(
            "(owner = {me} OR visibility = 'public' OR (visibility = 'shared' AND {member}))"
        ),
        Some(V::All) => format!(
            "(owner = {me} OR visibility IN ('public', 'community') \
             OR (visibility = 'shared' AND {member}))"
        ),
        Some(V::Public) => "visibility = 'public'".to_owned(),
        Some(V::Community) => "visibility = 'community'".to_owned(),
        Some(V::Private) => format!("(visibility = 'private' AND owner = {me})"),
        Some(V::Shared) => format!("(visibility = 'shared' AND (owner = {me} OR {member}))"),
    };
    w.clauses.push(clause);
}
