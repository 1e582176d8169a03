//! The web console: static pages and their scripts, served by the host itself (no build step,
//! no CDN), reading the JSON API every two seconds. `/` is the operations view, `/visibility`
//! the plant picture of the projection, `/postings` the postings to the systems of record.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;

const STYLE: &str = include_str!("console/console.css");
const COMMON: &str = include_str!("console/common.js");
const SCRIPT: &str = include_str!("console/console.js");
const VISIBILITY_SCRIPT: &str = include_str!("console/visibility.js");
const POSTINGS_SCRIPT: &str = include_str!("console/postings.js");

/// The pages, in the order of the navigation: path and link text.
const NAVIGATION: [(&str, &str); 3] = [
    ("/", "operations"),
    ("/visibility", "plant visibility"),
    ("/postings", "postings"),
];

/// What sets one page apart inside the layout every page shares (head, navigation, error
/// line, scripts): `console/<page>.html` holds its `<main>` sections.
struct Page {
    title: &'static str,
    /// Its path in [`NAVIGATION`], shown in bold there.
    path: &'static str,
    /// Header figures before the shared `updated`.
    stats: &'static str,
    main: &'static str,
    script: &'static str,
}

impl Page {
    fn render(&self) -> String {
        let navigation: String = NAVIGATION
            .iter()
            .map(|&(path, text)| {
                if path == self.path {
                    format!("<a href=\"{path}\"><b>{text}</b></a>")
                } else {
                    format!("<a href=\"{path}\">{text}</a>")
                }
            })
            .collect();
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title}</title>\n<link rel=\"stylesheet\" href=\"console.css\">\n</head>\n\
             <body>\n<header>\n  <h1>millrace</h1>\n  <nav>{navigation}</nav>\n{stats}  \
             <span class=\"stat\">updated <b id=\"updated\">never</b></span>\n</header>\n\
             <div id=\"error\"></div>\n<main>\n{main}</main>\n\
             <script src=\"common.js\"></script>\n<script src=\"{script}\"></script>\n\
             </body>\n</html>\n",
            title = self.title,
            stats = self.stats,
            main = self.main,
            script = self.script,
        )
    }
}

static PAGE: LazyLock<String> = LazyLock::new(|| {
    Page {
        title: "millrace console",
        path: "/",
        stats: concat!(
            "  <span class=\"stat\">host <b id=\"host-version\">–</b></span>\n",
            "  <span class=\"stat\">NATS <b id=\"nats\">–</b></span>\n",
            "  <span class=\"stat\">up <b id=\"uptime\">–</b></span>\n",
        ),
        main: include_str!("console/index.html"),
        script: "console.js",
    }
    .render()
});

static VISIBILITY_PAGE: LazyLock<String> = LazyLock::new(|| {
    Page {
        title: "millrace — plant visibility",
        path: "/visibility",
        stats: "",
        main: include_str!("console/visibility.html"),
        script: "visibility.js",
    }
    .render()
});

static POSTINGS_PAGE: LazyLock<String> = LazyLock::new(|| {
    Page {
        title: "millrace — postings",
        path: "/postings",
        stats: "",
        main: include_str!("console/postings.html"),
        script: "postings.js",
    }
    .render()
});

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
    html(PAGE.as_str())
}

pub async fn script() -> impl IntoResponse {
    javascript(SCRIPT)
}

/// The plant picture: stock with holds, work-order progress, source freshness.
pub async fn visibility_page() -> impl IntoResponse {
    html(VISIBILITY_PAGE.as_str())
}

pub async fn visibility_script() -> impl IntoResponse {
    javascript(VISIBILITY_SCRIPT)
}

/// The postings: backlog, delay and rejections per target, failed postings, held events.
pub async fn postings_page() -> impl IntoResponse {
    html(POSTINGS_PAGE.as_str())
}

pub async fn postings_script() -> impl IntoResponse {
    javascript(POSTINGS_SCRIPT)
}
