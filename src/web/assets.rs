//! The embedded assets (see `build.rs`): served under `/static/` by their
//! content-hashed names, gzipped when the browser accepts it, cached for a year.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its logical name, e.g. `htmx.min.js`.
    pub name: &'static str,
    /// Its served name, with the content hash, e.g. `htmx.min.0123456789abcdef.js`.
    pub path: &'static str,
    /// Media type.
    pub content_type: &'static str,
    /// The bytes.
    pub body: &'static [u8],
    /// The bytes gzipped, for compressible types.
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The path of asset `name` under `/static/` (its hashed name).
pub fn url(name: &str) -> String {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map(|a| format!("/static/{}", a.path))
        .unwrap_or_default()
}

/// axe-core's script from the npm package, for the browser tests (never served).
pub const AXE_JS: &str = env!("TRAGUARDO_AXE_JS");

/// `GET /static/{path}`.
pub async fn serve(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return (StatusCode::NOT_FOUND, "risorsa inesistente").into_response();
    };
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let (body, encoded) = match asset.gzip {
        Some(gz) if gzip_ok => (gz, true),
        _ => (asset.body, false),
    };
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if encoded {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}
