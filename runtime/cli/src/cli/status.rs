//! `millrace status`: the console's figures as a terminal summary, read from a running host's
//! admin API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;

use millrace::config::Config;

/// Where the host's admin API is and how to get in.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The host configuration: its `admin.listen` says where the API is.
    #[arg(long, short, conflicts_with = "admin")]
    config: Option<PathBuf>,
    /// The admin API's base URL, e.g. http://127.0.0.1:9470.
    #[arg(long, env = "MILLRACE_ADMIN")]
    admin: Option<String>,
    /// A file holding a token with the read (or admin) scope.
    #[arg(long, conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// A token with the read (or admin) scope.
    #[arg(long, env = "MILLRACE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the API's JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// Runs `millrace status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let base = match (&args.admin, &args.config) {
        (Some(url), _) => url.trim_end_matches('/').to_owned(),
        (None, Some(path)) => {
            let config = Config::load(path)?;
            let admin = config.admin.with_context(|| {
                format!(
                    "{} has no [admin] section: the host serves no admin API to read the status from",
                    path.display()
                )
            })?;
            format!("http://{}", admin.listen)
        }
        (None, None) => bail!("say where the host is: --config <its config> or --admin <URL>"),
    };
    let token = match (&args.token_file, &args.token) {
        (Some(file), _) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the token file {}", file.display()))?
                .trim()
                .to_owned(),
        ),
        (None, token) => token.clone(),
    };
    let mut body = read(&base, "/api/v1/status", token.as_deref()).await?;
    // A host from before the outbound half answers 404: it has none to show.
    let outbound = read(&base, "/api/v1/outbound", token.as_deref())
        .await
        .unwrap_or(Value::Null);
    // The projection's posting figures; none when no projection has run (or an older host),
    // and not asked for without outbound routes: nothing posts, and the read would only wait
    // on the buckets (a node of a cluster down made `status` take 10 s).
    let has_routes = outbound["routes"]
        .as_array()
        .is_some_and(|routes| !routes.is_empty());
    let postings = if !has_routes {
        Value::Null
    } else {
        read(
            &base,
            "/api/v1/visibility/postings?limit=0",
            token.as_deref(),
        )
        .await
        .unwrap_or(Value::Null)
    };
    if args.json {
        if !outbound.is_null() {
            body["outbound"] = outbound;
        }
        if !postings.is_null() {
            body["postings"] = postings;
        }
        outln!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        out!("{}", render(&body));
        out!("{}", render_outbound(&outbound, &postings));
    }
    Ok(ExitCode::SUCCESS)
}

/// One JSON answer of the admin API at `base`.
async fn read(base: &str, path: &str, token: Option<&str>) -> anyhow::Result<Value> {
    let url = format!("{base}{path}");
    let mut request = reqwest::Client::new().get(&url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.with_context(|| {
        format!(
            "cannot reach the admin API at {base}: is the host running with an [admin] section?"
        )
    })?;
    let code = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("{url} did not answer JSON"))?;
    if !code.is_success() {
        bail!(
            "{url} answered {code}: {}",
            body["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(body)
}

/// The outbound routes, targets (with the projection's posting figures, when there are any)
/// and held events as text tables; nothing without outbound routes.
fn render_outbound(outbound: &Value, postings: &Value) -> String {
    let routes: Vec<Vec<String>> = outbound["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|route| {
            let targets: Vec<&str> = route["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            vec![
                route["name"].as_str().unwrap_or("?").to_owned(),
                serving(route),
                targets.join(", "),
                route["gate"].as_str().unwrap_or("-").to_owned(),
            ]
        })
        .collect();
    if routes.is_empty() {
        return String::new();
    }
    let mut out = "\n".to_owned();
    out += &super::table(&["OUTBOUND", "SERVING", "TARGETS", "GATE"], routes);
    let targets: Vec<Vec<String>> = outbound["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let figures = postings["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["target"] == t["name"])
                .unwrap_or(&Value::Null);
            // Without figures (no projection runs, or it has read nothing of the target), `-`:
            // a 0 would say nothing was posted.
            let count = |key: &str| {
                figures[key]
                    .as_u64()
                    .map_or("-".to_owned(), |n| n.to_string())
            };
            let seconds = |s: &Value| s.as_f64().map_or("-".to_owned(), |s| format!("{s:.1}s"));
            vec![
                t["name"].as_str().unwrap_or("?").to_owned(),
                t["kind"].as_str().unwrap_or("?").to_owned(),
                if t["down"] == true {
                    "DOWN"
                } else if t["retrying"].is_object() {
                    "RETRYING"
                } else {
                    "up"
                }
                .to_owned(),
                t["backlog"].to_string(),
                count("posted"),
                count("rejected"),
                count("pending"),
                seconds(&figures["oldest_pending_seconds"]),
                seconds(&figures["delay"]["mean_seconds"]),
            ]
        })
        .collect();
    out.push('\n');
    out += &super::table(
        &[
            "TARGET",
            "KIND",
            "STATE",
            "IN HAND",
            "POSTED",
            "REJECTED",
            "PENDING",
            "OLDEST PENDING",
            "MEAN DELAY",
        ],
        targets,
    );
    // Why a target's requests are tried again (an expired credential, a wrong URL), which
    // would otherwise show only as a backlog.
    for t in outbound["targets"].as_array().into_iter().flatten() {
        let retrying = &t["retrying"];
        if retrying.is_object() {
            out += &format!(
                "{} retrying since {}: {}\n",
                t["name"].as_str().unwrap_or("?"),
                retrying["since"].as_str().unwrap_or("?"),
                retrying["reason"].as_str().unwrap_or("?")
            );
        }
    }
    let held: Vec<Vec<String>> = outbound["held"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            vec![
                h["route"].as_str().unwrap_or("?").to_owned(),
                h["event_id"].as_str().unwrap_or("?").to_owned(),
                h["since"].as_str().unwrap_or("?").to_owned(),
                h["why"].as_str().unwrap_or("?").to_owned(),
            ]
        })
        .collect();
    out.push('\n');
    out += &if held.is_empty() {
        "no events held at a gate\n".to_owned()
    } else {
        super::table(&["HELD ON", "EVENT", "SINCE", "WHY"], held)
    };
    out
}

/// The status as text tables.
fn render(status: &Value) -> String {
    let mut out = format!(
        "millrace {} at up {}s, NATS {}, {}\n\n",
        status["version"].as_str().unwrap_or("?"),
        status["uptime_seconds"],
        if status["nats_connected"] == true {
            "connected"
        } else {
            "DISCONNECTED"
        },
        if status["ready"] == true {
            "ready"
        } else {
            "NOT READY"
        }
    );
    let mut routes = Vec::new();
    for route in status["routes"].as_array().into_iter().flatten() {
        let f = &route["figures"];
        routes.push(vec![
            route["name"].as_str().unwrap_or("?").to_owned(),
            serving(route),
            f["messages_last_minute"].to_string(),
            f["dead_letters_last_minute"].to_string(),
            f["messages"].to_string(),
            f["events"].to_string(),
            f["dead_letters"].to_string(),
            f["late_events"].to_string(),
            f["retries"].to_string(),
            f["pending"].to_string(),
        ]);
    }
    out += &super::table(
        &[
            "ROUTE", "SERVING", "MSG/MIN", "DLQ/MIN", "MESSAGES", "EVENTS", "DEAD", "LATE",
            "RETRIES", "PENDING",
        ],
        routes,
    );
    let mut sites = Vec::new();
    for (site, f) in status["sites"].as_object().into_iter().flatten() {
        sites.push(vec![
            site.clone(),
            f["postings"].to_string(),
            seconds(&f["posting_delay_mean_seconds"]),
            seconds(&f["posting_delay_max_seconds"]),
            f["late_events"].to_string(),
            f["failures"].to_string(),
        ]);
    }
    out.push('\n');
    out += &if !sites.is_empty() {
        super::table(
            &[
                "SITE",
                "POSTINGS",
                "DELAY MEAN",
                "DELAY MAX",
                "LATE",
                "FAILURES",
            ],
            sites,
        )
    } else {
        "no postings yet\n".to_owned()
    };
    let partners: Vec<Vec<String>> = status["partners"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(partner, f)| {
            let reasons: Vec<String> = f["failures"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            vec![partner.clone(), reasons.join(", ")]
        })
        .collect();
    if !partners.is_empty() {
        out.push('\n');
        out += &super::table(&["PARTNER", "FAILURES"], partners);
    }
    out
}

fn seconds(value: &Value) -> String {
    value
        .as_f64()
        .map_or_else(|| "-".to_owned(), |s| format!("{s:.1}s"))
}

/// What a route serves, as the status tables show it: `name@version (role), …`.
fn serving(route: &Value) -> String {
    route["serving"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "{} ({})",
                s["version"].as_str().unwrap_or("?"),
                s["role"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_routes_sites_and_partners() {
        let status = serde_json::json!({
            "version": "0.1.0", "uptime_seconds": 12, "nats_connected": true, "ready": true,
            "routes": [{"name": "mes", "serving": [{"version": "p@1.0.0", "role": "active"}],
                "figures": {"messages": 5, "events": 8, "dead_letters": 1, "late_events": 2,
                    "retries": 0, "pending": 0, "messages_last_minute": 5, "dead_letters_last_minute": 1}}],
            "sites": {"PLANT1": {"postings": 8, "posting_delay_mean_seconds": 1.25,
                "posting_delay_max_seconds": 3.0, "late_events": 2, "failures": 1}},
            "partners": {"mes": {"failures": {"map-error": 1}}}
        });
        let text = render(&status);
        assert!(text.contains("NATS connected, ready"), "{text}");
        assert!(
            text.contains("mes    p@1.0.0 (active)  5        1"),
            "{text}"
        );
        assert!(
            text.contains("PLANT1  8         1.2s        3.0s       2     1"),
            "{text}"
        );
        assert!(text.contains("mes      map-error 1"), "{text}");
    }

    #[test]
    fn renders_outbound_routes_targets_and_held_events() {
        assert_eq!(render_outbound(&Value::Null, &Value::Null), "");
        let outbound = serde_json::json!({
            "routes": [{"name": "erp-postings", "serving": [{"version": "erp-postings@1.0.0", "role": "active"}],
                "targets": ["erp"], "gate": "lot-not-on-hold"}],
            "targets": [{"name": "erp", "kind": "http", "down": true, "backlog": 3}],
            "held": [{"route": "erp-postings", "event_id": "e-1", "since": "2026-11-30T03:00:00Z",
                "why": "lot L1 is under quality hold H-1"}]
        });
        let text = render_outbound(&outbound, &Value::Null);
        assert!(
            text.contains("erp-postings  erp-postings@1.0.0 (active)  erp"),
            "{text}"
        );
        assert!(text.contains("erp     http  DOWN   3"), "{text}");
        let retrying = serde_json::json!({
            "routes": outbound["routes"],
            "targets": [{"name": "erp", "kind": "http", "down": false, "backlog": 1,
                "retrying": {"reason": "status 401: the ERP refused the token", "since": "2026-11-30T03:00:00Z"}}],
            "held": []
        });
        let shown = render_outbound(&retrying, &Value::Null);
        assert!(shown.contains("erp     http  RETRYING"), "{shown}");
        assert!(
            shown.contains(
                "erp retrying since 2026-11-30T03:00:00Z: status 401: the ERP refused the token"
            ),
            "{shown}"
        );
        // No projection: no posting figures, not zeros.
        assert_eq!(
            erp_row(&text),
            ["erp", "http", "DOWN", "3", "-", "-", "-", "-", "-"]
        );
        assert!(text.contains("lot L1 is under quality hold H-1"), "{text}");
        let postings = serde_json::json!({"targets": [{"target": "erp", "posted": 7, "rejected": 1,
            "pending": 2, "oldest_pending_seconds": 65, "delay": {"count": 7, "mean_seconds": 0.42}}]});
        let text = render_outbound(&outbound, &postings);
        assert_eq!(
            erp_row(&text),
            ["erp", "http", "DOWN", "3", "7", "1", "2", "65.0s", "0.4s"]
        );
    }

    /// The cells of the target table's `erp` row.
    fn erp_row(text: &str) -> Vec<&str> {
        text.lines()
            .find(|l| l.starts_with("erp "))
            .unwrap()
            .split_whitespace()
            .collect()
    }
}
