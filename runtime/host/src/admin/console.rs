//! The web console: static pages and their scripts, served by the host itself (no build step,
//! no CDN), reading the JSON API every two seconds. `/` is the operations view, `/visibility`
//! the plant picture of the projection, `/postings` the postings to the systems of record.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("console/index.html");
const STYLE: &str = include_str!("console/console.css");
const COMMON: &str = include_str!("console/common.js");
const SCRIPT: &str = include_str!("console/console.js");
const VISIBILITY_PAGE: &str = include_str!("console/visibility.html");
const VISIBILITY_SCRIPT: &str = include_str!("console/visibility.js");
const POSTINGS_PAGE: &str = include_str!("console/postings.html");
const POSTINGS_SCRIPT: &str = include_str!("console/postings.js");

fn html(body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

fn javascript(body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// The pages' stylesheet.
pub async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLE,
    )
}

/// What the pages' scripts share.
pub async fn common() -> impl IntoResponse {
    javascript(COMMON)
}

/// The operations console.
pub async fn page() -> impl IntoResponse {
    html(PAGE)
}

pub async fn script() -> impl IntoResponse {
    javascript(SCRIPT)
}

/// The plant picture: stock with holds, work-order progress, source freshness.
pub async fn visibility_page() -> impl IntoResponse {
    html(VISIBILITY_PAGE)
}

pub async fn visibility_script() -> impl IntoResponse {
    javascript(VISIBILITY_SCRIPT)
}

/// The postings: backlog, delay and rejections per target, failed postings, held events.
pub async fn postings_page() -> impl IntoResponse {
    html(POSTINGS_PAGE)
}

pub async fn postings_script() -> impl IntoResponse {
    javascript(POSTINGS_SCRIPT)
}
