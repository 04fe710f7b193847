//! Route tables: a service builds its router through [`Routes`], which
//! records every `(method, path)` it mounts beside the axum router it
//! builds. The service exposes that table (`route_table()`), and the
//! authorisation test of the whole cloud (`crates/stratus/tests/e2e/authz.rs`)
//! checks that it has an expectation for every entry: a route cannot be
//! added without the test noticing.
//!
//! [`get`], [`post`], ... and the chained [`Methods::get`], ... mirror
//! `axum::routing`, so a router reads as it would with axum alone:
//!
//! ```
//! use stratus_auth::routes::{get, Routes};
//! async fn list() -> &'static str { "[]" }
//! async fn create() -> &'static str { "{}" }
//! let routes: Routes<()> = Routes::new().route("/things", get(list).post(create));
//! assert_eq!(routes.table()[1].to_string(), "POST /things");
//! let _router: axum::Router = routes.into_router();
//! ```

use std::fmt;

use axum::handler::Handler;
use axum::routing::{self, MethodRouter};
use axum::Router;
use http::Method;

/// One mounted route: a method (`GET`, ..., or [`ANY`]) on a path, as the
/// router matches it (`/v2.1/servers/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub method: String,
    pub path: String,
}

/// The method of a route that answers every method ([`any`]).
pub const ANY: &str = "ANY";

impl Route {
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// A method router and the methods it answers (what `get(a).post(b)` is in
/// axum, plus the record).
pub struct Methods<S> {
    router: MethodRouter<S>,
    methods: Vec<String>,
}

macro_rules! method_fns {
    ($($name:ident => $method:ident),* $(,)?) => {
        $(
            #[doc = concat!("`", stringify!($method), "` to `handler`, as `axum::routing::", stringify!($name), "`.")]
            pub fn $name<H, T, S>(handler: H) -> Methods<S>
            where
                H: Handler<T, S>,
                T: 'static,
                S: Clone + Send + Sync + 'static,
            {
                Methods {
                    router: routing::$name(handler),
                    methods: vec![Method::$method.to_string()],
                }
            }
        )*

        impl<S: Clone + Send + Sync + 'static> Methods<S> {
            $(
                #[doc = concat!("Also `", stringify!($method), "` to `handler`.")]
                pub fn $name<H, T>(mut self, handler: H) -> Self
                where
                    H: Handler<T, S>,
                    T: 'static,
                {
                    self.router = self.router.$name(handler);
                    self.methods.push(Method::$method.to_string());
                    self
                }
            )*
        }
    };
}

method_fns! {
    get => GET,
    post => POST,
    put => PUT,
    patch => PATCH,
    delete => DELETE,
    head => HEAD,
}

/// Every method to `handler`, as `axum::routing::any`.
pub fn any<H, T, S>(handler: H) -> Methods<S>
where
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    Methods {
        router: routing::any(handler),
        methods: vec![ANY.to_owned()],
    }
}

/// An axum router under construction and the table of what it mounts.
pub struct Routes<S = ()> {
    router: Router<S>,
    table: Vec<Route>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// `Router::route`, recorded.
    pub fn route(mut self, path: &str, methods: Methods<S>) -> Self {
        self.router = self.router.route(path, methods.router);
        self.table.extend(
            methods
                .methods
                .into_iter()
                .map(|m| Route::new(m, path.to_owned())),
        );
        self
    }

    /// `Router::merge`, recorded.
    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// What has been mounted, in mounting order.
    pub fn table(&self) -> &[Route] {
        &self.table
    }

    /// The table with `prefix` before every path (for a router that is
    /// nested under `prefix`).
    pub fn table_under(&self, prefix: &str) -> Vec<Route> {
        self.table
            .iter()
            .map(|r| Route::new(r.method.clone(), format!("{prefix}{}", r.path)))
            .collect()
    }

    /// The router, to finish with axum (fallback, state, layers).
    pub fn into_router(self) -> Router<S> {
        self.router
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ok() -> &'static str {
        "ok"
    }

    #[test]
    fn records_every_method_of_every_path() {
        let a: Routes<()> = Routes::new()
            .route("/a", get(ok).post(ok))
            .route("/a/{id}", put(ok).delete(ok).patch(ok).head(ok));
        let b = Routes::new().route("/b", get(ok));
        let all = a.merge(b);
        let got: Vec<String> = all.table().iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "GET /a",
                "POST /a",
                "PUT /a/{id}",
                "DELETE /a/{id}",
                "PATCH /a/{id}",
                "HEAD /a/{id}",
                "GET /b"
            ]
        );
        assert_eq!(all.table_under("/v1")[0].path, "/v1/a");
    }

    #[tokio::test]
    async fn the_router_serves_what_the_table_says() {
        use tower::ServiceExt;
        let r: Router = Routes::new()
            .route("/a", get(ok))
            .route("/a", post(ok))
            .into_router();
        for (m, want) in [("GET", 200), ("POST", 200), ("DELETE", 405)] {
            let req = axum::http::Request::builder()
                .method(m)
                .uri("/a")
                .body(axum::body::Body::empty())
                .expect("request");
            let resp = r.clone().oneshot(req).await.expect("infallible");
            assert_eq!(resp.status().as_u16(), want, "{m}");
        }
    }
}
