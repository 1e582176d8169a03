//! Tests of whole files: each error names the file, the key and what is accepted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("conf/millrace.toml"))
}

#[test]
fn minimal_route_gets_safe_defaults() {
    let c = parse(
        r#"
        [routes.mes-plant1]
        subjects = ["raw.mes.plant1.shift-report"]
        plugin = "../plugins/mes-shift-report"
        "#,
    )
    .unwrap();
    let r = &c.routes["mes-plant1"];
    assert_eq!(r.calls.limits, Limits::default());
    assert_eq!(r.calls.retry.attempts, 3);
    assert_eq!(c.streams.raw, "RAW");
    assert_eq!(
        c.resolve(&r.plugin),
        PathBuf::from("conf/../plugins/mes-shift-report")
    );
}

#[test]
fn unknown_key_names_file_and_key() {
    let err = parse("[routes.a]\nsubjects=[\"raw.a\"]\nplugin=\"p\"\ncolour=\"red\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("conf/millrace.toml"), "{err}");
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn bad_values_name_the_key() {
    let err = parse("[routes.a]\nsubjects=[\"raw..a\"]\nplugin=\"p\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("routes.a.subjects"), "{err}");
    let err = parse("[routes.a]\nsubjects=[\"raw.a\"]\nplugin=\"p\"\nlimits={deadline=\"soon\"}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a duration"), "{err}");
    let err = parse("[routes.\"a.b\"]\nsubjects=[\"raw.a\"]\nplugin=\"p\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("route names"), "{err}");
    let err = parse("[nats]\nuser=\"u\"\n").unwrap_err().to_string();
    assert!(err.contains("nats.password"), "{err}");
}

#[test]
fn stream_replicas_are_one_or_three_and_placement_tags_are_named() {
    let config = parse("[streams]\nreplicas = 3\nplacement_tags = [\"az:1\", \"ssd\"]\n").unwrap();
    assert_eq!(config.streams.replicas, Some(3));
    assert_eq!(
        config.streams.placement_tags,
        Some(vec!["az:1".to_owned(), "ssd".to_owned()])
    );
    let defaults = parse("").unwrap();
    assert_eq!(defaults.streams.replicas, None);
    assert_eq!(defaults.streams.placement_tags, None);
    for replicas in [0, 2, 5] {
        let err = parse(&format!("[streams]\nreplicas = {replicas}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("conf/millrace.toml"), "{err}");
        assert!(err.contains("streams.replicas"), "{err}");
        assert!(err.contains("1 (one server) or 3"), "{err}");
    }
    let err = parse("[streams]\nplacement_tags = [\"\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("streams.placement_tags"), "{err}");
}

#[test]
fn admin_tokens_are_unique_and_ingest_tokens_bound() {
    let token = |name: &str, scope: &str, file: &str, extra: &str| {
        format!(
            "[[admin.tokens]]\nname = \"{name}\"\nscope = \"{scope}\"\nsecret_file = \"{file}\"\n{extra}"
        )
    };
    let ok = format!(
        "[admin]\n{}{}",
        token("ops", "admin", "ops.token", ""),
        token(
            "erp",
            "ingest",
            "erp.token",
            "subjects = [\"raw.erp.*.*\"]\n"
        )
    );
    assert_eq!(
        parse(&ok).unwrap().admin.unwrap().tokens[1].subjects,
        ["raw.erp.*.*"]
    );
    let err = parse(&format!(
        "[admin]\n{}{}",
        token("ops", "admin", "a", ""),
        token("ops", "read", "b", "")
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("admin.tokens[1].name") && err.contains("own name"),
        "{err}"
    );
    // A token's name is checked as the file is read, with the line it is on.
    let err = parse(&format!("[admin]\n{}", token("ops team", "admin", "a", "")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`ops team` is not a token name") && err.contains("line"),
        "{err}"
    );
    let err = parse(&format!(
        "[admin]\n{}{}",
        token("ops", "admin", "a", ""),
        token("viewer", "read", "./a", "")
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("admin.tokens[1].secret_file") && err.contains("same secret"),
        "{err}"
    );
    let err = parse(&format!("[admin]\n{}", token("erp", "ingest", "a", "")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("admin.tokens[0].subjects"), "{err}");
    let err = parse(&format!(
        "[admin]\n{}",
        token("erp", "ingest", "a", "subjects = [\"canonical.>\"]\n")
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("raw subjects"), "{err}");
}

#[test]
fn nats_secrets_come_from_one_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nats.password"), "s3cret\n").unwrap();
    let path = dir.path().join("millrace.toml");
    let config = Config::parse(
        "[nats]\nuser = \"u\"\npassword_file = \"nats.password\"\n",
        &path,
    )
    .unwrap();
    assert_eq!(config.nats.password.as_deref(), Some("s3cret"));
    let err = Config::parse(
        "[nats]\nuser = \"u\"\npassword = \"x\"\npassword_env = \"P\"\n",
        &path,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`nats.password` is given more than once"),
        "{err}"
    );
    let err = Config::parse("[nats]\ntoken_file = \"missing\"\n", &path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nats.token_file"), "{err}");
}

#[test]
fn ownership_rules_are_checked() {
    let ok = "[[governance.ownership]]\nkind = \"inventory-balance\"\nsite = \"PLANT1\"\nowner = \"erp\"\n";
    assert_eq!(parse(ok).unwrap().governance.ownership[0].owner, "erp");
    let err = parse(&ok.replace("inventory-balance", "stock"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("governance.ownership[0].kind"), "{err}");
    assert!(err.contains("inventory-movement"), "{err}");
}

#[test]
fn a_section_given_in_part_keeps_the_defaults_of_the_rest() {
    let c = parse(
        "[routes.a]\nsubjects=[\"raw.a\"]\nplugin=\"p\"\nretry={attempts=5}\nlimits={memory_mib=128}\n\
         [host]\npartitions = 4\n[admin]\n[streams]\nduplicate_window = \"5m\"\n",
    )
    .unwrap();
    let route = &c.routes["a"];
    assert_eq!(route.calls.retry.attempts, 5);
    assert_eq!(route.calls.retry.backoff, Duration::from_millis(200));
    assert_eq!(route.calls.limits.memory_mib, 128);
    assert_eq!(route.calls.limits.deadline, Duration::from_secs(2));
    assert_eq!(route.calls.ack_wait, Duration::from_secs(30));
    assert!(route.idempotency);
    assert_eq!(c.host.partitions, 4);
    assert_eq!(c.host.drain_timeout, Duration::from_secs(10));
    assert_eq!(
        c.host.compile_limits(),
        crate::sandbox::CompileLimits {
            timeout: Duration::from_secs(300),
            memory_mib: 4096,
        }
    );
    let admin = c.admin.unwrap();
    assert_eq!(admin.listen.to_string(), "127.0.0.1:9470");
    assert_eq!(admin.header_timeout, Duration::from_secs(10));
    assert_eq!(c.streams.duplicate_window, Duration::from_secs(300));
    assert_eq!(c.streams.raw_subjects, ["raw.>"]);
}

#[test]
fn a_route_still_needs_its_subjects_and_plugin() {
    let err = parse("[routes.a]\nplugin=\"p\"\n").unwrap_err().to_string();
    assert!(
        err.contains("conf/millrace.toml") && err.contains("subjects"),
        "{err}"
    );
    let err = parse("[routes.a]\nsubjects=[\"raw.a\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("conf/millrace.toml") && err.contains("plugin"),
        "{err}"
    );
}

#[test]
fn trusted_keys_are_read_when_the_file_is() {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.encode(
        ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .verifying_key()
            .as_bytes(),
    );
    let c = parse(&format!(
        "[registry]\ntrusted_keys = [\"{key}\"]\nrequire_signatures = true\n"
    ))
    .unwrap();
    assert_eq!(c.registry.trusted_keys[0].to_string(), key);
    let err = parse("[registry]\ntrusted_keys = [\"not-a-key\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("conf/millrace.toml"), "{err}");
    assert!(err.contains("trusted_keys"), "{err}");
    assert!(
        err.contains("`not-a-key` is not a base64 ed25519 public key"),
        "{err}"
    );
}

#[test]
fn durations_outside_their_range_name_the_key_and_the_range() {
    let err = parse("[admin]\nheader_timeout = \"50ms\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`admin.header_timeout` must be between 100ms and 5m"),
        "{err}"
    );
    let err = parse("[host]\ncompile_timeout = \"500ms\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`host.compile_timeout` must be at least 1s"),
        "{err}"
    );
    let err = parse("[host]\ncompile_memory_mib = 16\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`host.compile_memory_mib` must be between 64 and 1048576"),
        "{err}"
    );
    let err = parse("[governance]\nhorizon = \"30s\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`governance.horizon` must be at least 1m"),
        "{err}"
    );
    let err = parse("[host]\ndrain_timeout = \"soon\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("drain_timeout") && err.contains("not a duration"),
        "{err}"
    );
}

#[test]
fn outbound_routes_and_targets_are_read_with_their_defaults_and_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("erp.token"), "t0ken\n").unwrap();
    let path = dir.path().join("millrace.toml");
    std::fs::write(
        &path,
        r#"
        [outbound.erp-postings]
        subjects = ["canonical.production-completion.>"]
        plugin = "erp-postings@1.0.0"
        targets = ["erp", "bus"]
        gate = "lot-not-on-hold"

        [targets.erp]
        url = "https://erp.example.com/api"
        auth = { bearer_file = "erp.token" }
        rate = { requests = 20, per = "1s" }

        [targets.bus]
        kind = "nats"
        "#,
    )
    .unwrap();
    let c = Config::load(&path).unwrap();
    let route = &c.outbound["erp-postings"];
    assert_eq!(
        route.plugin_source(),
        PluginSource::Registry("erp-postings@1.0.0".into())
    );
    assert_eq!(route.gate, Some(Gate::LotNotOnHold));
    assert_eq!(route.calls.ack_wait, HumanDuration::from_secs(30));
    let erp = &c.targets["erp"];
    assert_eq!(
        erp.auth.credentials,
        Some(Credentials::Bearer("t0ken".into()))
    );
    assert_eq!(erp.timeout, HumanDuration::from_secs(10));
    assert_eq!(erp.breaker, TargetBreaker::default());
    assert_eq!(
        erp.retry.give_up_after, None,
        "retried for as long as it takes"
    );
    assert_eq!(c.targets["bus"].kind, TargetKind::Nats);
    assert_eq!(c.plugin_of("erp-postings"), Some(route.plugin_source()));
}

#[test]
fn outbound_mistakes_name_the_key_and_what_is_accepted() {
    let outbound = |targets: &str, extra: &str| {
        parse(&format!(
            "[outbound.o]\nsubjects=[\"canonical.>\"]\nplugin=\"p\"\ntargets=[\"erp\"]\n{extra}\n{targets}"
        ))
        .unwrap_err()
        .to_string()
    };
    let erp = "[targets.erp]\nurl=\"http://erp\"\n";
    let err = outbound("", "");
    assert!(
        err.contains("outbound.o.targets") && err.contains("erp"),
        "{err}"
    );
    let err = outbound("[targets.erp]\n", "");
    assert!(err.contains("targets.erp.url"), "{err}");
    let err = outbound("[targets.erp]\nurl=\"ftp://erp\"\n", "");
    assert!(err.contains("http:// or https://"), "{err}");
    let err = outbound("[targets.erp]\nkind=\"nats\"\nurl=\"http://erp\"\n", "");
    assert!(err.contains("out.<target>.<site>"), "{err}");
    let err = outbound(erp, "gate=\"never\"");
    assert!(err.contains("lot-not-on-hold"), "{err}");
    let err = outbound(
        "[targets.erp]\nurl=\"http://erp\"\nretry={give_up_after=\"500ms\"}\n",
        "",
    );
    assert!(
        err.contains("targets.erp.retry.give_up_after") && err.contains("leave it out"),
        "{err}"
    );
    let err = parse(&format!(
        "[outbound.o]\nsubjects=[\"raw.mes.>\"]\nplugin=\"p\"\ntargets=[\"erp\"]\n{erp}"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("not a canonical subject"), "{err}");
    let err = outbound(
        "[targets.erp]\nurl=\"http://erp\"\nauth={bearer_env=\"A\", username=\"u\", password_env=\"B\"}\n",
        "",
    );
    assert!(err.contains("not both"), "{err}");
    // A secret that cannot be read fails what posts (the host's start builds its targets, and
    // says why), not the load: `status`, `dlq list` and `audit` run without it.
    let unset = parse(
        "[outbound.o]\nsubjects=[\"canonical.>\"]\nplugin=\"p\"\ntargets=[\"erp\"]\n\
         [targets.erp]\nurl=\"http://erp\"\nauth={bearer_env=\"MILLRACE_TEST_SURELY_UNSET\"}\n",
    )
    .unwrap();
    let auth = &unset.targets["erp"].auth;
    assert!(auth.credentials.is_none());
    let why = auth.unreadable.as_deref().unwrap_or_default();
    assert!(
        why.contains("targets.erp.auth.bearer_env") && why.contains("MILLRACE_TEST_SURELY_UNSET"),
        "{why}"
    );
    let err = parse(&format!(
        "[routes.o]\nsubjects=[\"raw.a\"]\nplugin=\"p\"\n[outbound.o]\nsubjects=[\"canonical.>\"]\nplugin=\"p\"\ntargets=[\"erp\"]\n{erp}"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("inbound route"), "{err}");
}

#[test]
fn approval_names_configured_routes_or_every_route() {
    let route = "[routes.line]\nsubjects = [\"raw.a.b.c\"]\nplugin = \"p\"\n";
    let c = parse(route).unwrap();
    assert!(!c.approval.required_for("line"), "off by default");
    assert_eq!(c.approval.expires_after, Duration::from_secs(24 * 3600));
    let c = parse(&format!("{route}[approval]\nroutes = [\"line\"]\n")).unwrap();
    assert!(c.approval.required_for("line"));
    let c = parse(&format!("{route}[approval]\nroutes = [\"*\"]\n")).unwrap();
    assert!(c.approval.required_for("any-route"));
    let err = parse(&format!("{route}[approval]\nroutes = [\"lien\"]\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`approval.routes`") && err.contains("accepted: line, *"),
        "{err}"
    );
    // An outbound route is a route too (the governance docs' example names erp-postings).
    let posting = "[outbound.erp-postings]\nsubjects=[\"canonical.>\"]\nplugin=\"p\"\n\
                   targets=[\"erp\"]\n[targets.erp]\nurl=\"http://erp\"\n";
    let c = parse(&format!(
        "{route}{posting}[approval]\nroutes = [\"line\", \"erp-postings\"]\n"
    ))
    .unwrap();
    assert!(c.approval.required_for("erp-postings"));
    let err = parse(&format!("{route}{posting}[approval]\nroutes = [\"erp\"]\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("accepted: line, erp-postings, *"), "{err}");
    let err = parse(&format!("{route}[approval]\nexpires_after = \"800h\"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`approval.expires_after`"), "{err}");
    let err = parse(&format!("{route}[approval]\nquorum = 2\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("quorum"), "{err}");
}

#[test]
fn inbound_and_outbound_routes_share_one_call_section() {
    let outbound = "[outbound.o]\nsubjects=[\"canonical.>\"]\nplugin=\"p\"\ntargets=[\"bus\"]\n\
        [targets.bus]\nkind=\"nats\"\n";
    let c = parse(&format!(
        "[routes.a]\nsubjects=[\"raw.a\"]\nplugin=\"p\"\n{outbound}"
    ))
    .unwrap();
    assert_eq!(c.routes["a"].calls, CallSettings::default());
    assert_eq!(c.outbound["o"].calls, CallSettings::default());
    assert_eq!(
        CallSettings::default().ack_wait,
        HumanDuration::from_secs(30)
    );

    // One check, naming each route's own key.
    let err = parse("[routes.a]\nsubjects=[\"raw.a\"]\nplugin=\"p\"\nretry={attempts=0}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("routes.a.retry.attempts"), "{err}");
    let err = parse(&outbound.replace("targets=", "ack_wait=\"0s\"\ntargets="))
        .unwrap_err()
        .to_string();
    assert!(err.contains("outbound.o.ack_wait"), "{err}");

    // Flattened, unknown keys are still refused, at the route's level and inside `limits`.
    for text in [
        outbound.replace("targets=", "ack_wiat=\"5s\"\ntargets="),
        outbound.replace("targets=", "limits={memory=1}\ntargets="),
    ] {
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");
    }
}

/// A route subject outside the RAW stream's capture never receives a message, and nats-server
/// accepts its consumer: the config says so instead of a route that reports ready and idles.
#[test]
fn a_route_subject_outside_the_raw_stream_is_refused() {
    let err = parse("[routes.plant2]\nsubjects = [\"mes.plant2.shift-report\"]\nplugin = \"p\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("routes.plant2.subjects")
            && err.contains("\"mes.plant2.shift-report\" is outside what the RAW stream captures"),
        "{err}"
    );
    let err = parse(
        "[streams]\nraw_subjects = [\"raw.mes.>\"]\n\n\
         [routes.erp]\nsubjects = [\"raw.mes.*.x\", \"raw.erp.*.x\"]\nplugin = \"p\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("\"raw.erp.*.x\" is outside"), "{err}");
    assert!(
        parse("[streams]\nraw_subjects = [\"raw.mes.>\"]\n\n[routes.all]\nsubjects = [\"raw.>\"]\nplugin = \"p\"\n")
            .is_ok(),
        "a route wider than the capture still receives what RAW holds"
    );
}

/// A route's consumer filters on all its subjects, and nats-server refuses filters one of which
/// covers another: the config says which two, instead of a start that fails pointing at
/// `streams.raw_subjects`.
#[test]
fn a_route_whose_subjects_cover_one_another_is_refused() {
    let err = parse(
        "[routes.mes]\nsubjects = [\"raw.mes.>\", \"raw.mes.plant1.shift-report\"]\nplugin = \"p\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("routes.mes.subjects")
            && err.contains(
                "\"raw.mes.>\" and \"raw.mes.plant1.shift-report\", one of which covers the other"
            ),
        "{err}"
    );
    let err =
        parse("[routes.mes]\nsubjects = [\"raw.mes.a.x\", \"raw.mes.a.x\"]\nplugin = \"p\"\n")
            .unwrap_err()
            .to_string();
    assert!(err.contains("lists \"raw.mes.a.x\" twice"), "{err}");
    // Patterns that only overlap are one consumer's filters all the same.
    for subjects in [
        "\"raw.mes.*.x\", \"raw.mes.*.y\"",
        "\"raw.a.*.cmd\", \"raw.*.x.cmd\"",
    ] {
        let text = format!("[routes.mes]\nsubjects = [{subjects}]\nplugin = \"p\"\n");
        assert!(parse(&text).is_ok(), "{subjects}");
    }
}

#[test]
fn the_ping_interval_defaults_to_ten_seconds_and_is_never_zero() {
    assert_eq!(parse("").unwrap().nats.ping_interval, None);
    assert_eq!(DEFAULT_PING_INTERVAL, Duration::from_secs(10));
    let c = parse("[nats]\nping_interval = \"5s\"\n").unwrap();
    assert_eq!(
        c.nats.ping_interval.map(|d| d.get()),
        Some(Duration::from_secs(5))
    );
    let err = parse("[nats]\nping_interval = \"0s\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("nats.ping_interval"), "{err}");
}
