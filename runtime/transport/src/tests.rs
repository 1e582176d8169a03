//! Unit tests of the transport's pure parts: raw identities, server versions, replication.

use super::{Replication, ServerVersion, ServerVersionError};
use async_nats::jetstream::stream;

#[test]
fn a_raw_identity_is_its_message_id_or_a_digest_of_a_long_one() {
    let mut headers = async_nats::HeaderMap::new();
    assert_eq!(super::raw_identity(Some(&headers), "RAW", 7), "RAW:7");
    headers.insert("Nats-Msg-Id", "x".repeat(super::RAW_ID_MAX).as_str());
    assert_eq!(
        super::raw_identity(Some(&headers), "RAW", 7),
        "x".repeat(super::RAW_ID_MAX)
    );
    headers.insert("Nats-Msg-Id", "x".repeat(300_000).as_str());
    let long = super::raw_identity(Some(&headers), "RAW", 7);
    assert!(
        long.starts_with("sha256:") && long.len() == 7 + 64,
        "{long}"
    );
}

/// JetStream de-duplicates on `Nats-Msg-Id` by its exact name: a `nats-msg-id` header is
/// just a header, so two messages carrying the same one are two messages, and must not share
/// an identity (their events would share ids, and one's would be dropped as copies).
#[test]
fn a_raw_identity_follows_jetstreams_reading_of_the_message_id() {
    let mut headers = async_nats::HeaderMap::new();
    headers.append("nats-msg-id", "order-1");
    headers.append("NATS-MSG-ID", "order-1");
    assert_eq!(super::raw_identity(Some(&headers), "RAW", 7), "RAW:7");
    headers.append("Nats-Msg-Id", "first");
    headers.append("Nats-Msg-Id", "second");
    assert_eq!(super::raw_identity(Some(&headers), "RAW", 7), "first");
}

/// A publisher cannot take the identity of another's message that has no `Nats-Msg-Id`.
#[test]
fn a_message_id_written_like_a_stream_sequence_is_digested() {
    let identity = |id: &str| {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        super::raw_identity(Some(&headers), "RAW", 7)
    };
    for spoof in ["RAW:8", "RAW:0"] {
        let id = identity(spoof);
        assert!(
            id.starts_with("sha256:") && id != "RAW:8",
            "{spoof} -> {id}"
        );
    }
    for kept in ["RAW:", "RAW:8a", "RAWX:8", "OTHER:8", "raw:8"] {
        assert_eq!(identity(kept), kept);
    }
}

#[test]
fn a_message_is_measured_as_the_client_writes_it() {
    assert_eq!(super::message_size(None, 10), 10);
    let empty = async_nats::HeaderMap::new();
    assert_eq!(super::message_size(Some(&empty), 10), 10, "no header block");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "abc");
    headers.append("X-Lot", "1");
    headers.append("X-Lot", "22");
    let block = "NATS/1.0\r\nNats-Msg-Id: abc\r\nX-Lot: 1\r\nX-Lot: 22\r\n\r\n";
    assert_eq!(super::message_size(Some(&headers), 5), block.len() + 5);
    let max = block.len() + 5;
    assert!(super::fits(Some(&headers), 5, max).is_ok());
    let too_large = super::fits(Some(&headers), 6, max).unwrap_err();
    assert_eq!(too_large, super::TooLarge::Message { size: max + 1, max });
    assert!(too_large.to_string().contains("max_payload"), "{too_large}");
    headers.insert("X-Note", "n".repeat(super::JETSTREAM_HEADERS_MAX).as_str());
    let too_large = super::fits(Some(&headers), 0, 1024 * 1024).unwrap_err();
    assert!(
        matches!(too_large, super::TooLarge::Headers { max: 65_535, .. }),
        "{too_large}"
    );
}

#[test]
fn a_url_list_names_every_node() {
    let servers = super::server_addrs("nats://127.0.0.1:4222, nats://127.0.0.1:4223").unwrap();
    assert_eq!(servers.len(), 2);
    assert_eq!(
        super::server_addrs("nats://127.0.0.1:4222,").unwrap().len(),
        1
    );
    let err = super::server_addrs(" , ").unwrap_err().to_string();
    assert!(err.contains("no NATS server URL"), "{err}");
}

#[test]
fn replication_changes_an_existing_stream_only_where_the_config_says() {
    let r1 = stream::Config {
        name: "RAW".into(),
        num_replicas: 1,
        ..Default::default()
    };
    // Unset: an operator's own choice is left alone.
    assert_eq!(Replication::default().update(&r1), None);
    let r3 = Replication {
        replicas: Some(3),
        placement_tags: None,
    };
    let wanted = r3.update(&r1).unwrap();
    assert_eq!(wanted.num_replicas, 3);
    assert_eq!(wanted.placement, None);
    assert_eq!(r3.update(&wanted), None, "already there");
    let tagged = Replication {
        replicas: None,
        placement_tags: Some(vec!["az:1".into()]),
    };
    let moved = tagged.update(&wanted).unwrap();
    assert_eq!(moved.num_replicas, 3);
    assert_eq!(moved.placement.unwrap().tags, vec!["az:1".to_owned()]);
    // A new stream: one copy, anywhere, unless the config says otherwise.
    assert_eq!(Replication::default().num_replicas(), 1);
    assert_eq!(Replication::default().placement(), None);
}

#[test]
fn server_versions_are_read_from_what_the_server_announces() {
    assert_eq!(
        ServerVersion::parse("2.10.0"),
        Some(ServerVersion(2, 10, 0))
    );
    assert_eq!(
        ServerVersion::parse("v2.15.1"),
        Some(ServerVersion(2, 15, 1))
    );
    assert_eq!(
        ServerVersion::parse("2.11.0-RC.1"),
        Some(ServerVersion(2, 11, 0))
    );
    assert_eq!(ServerVersion::parse("2.12"), Some(ServerVersion(2, 12, 0)));
    assert_eq!(ServerVersion::parse(""), None);
    assert_eq!(ServerVersion::parse("nightly"), None);
}

#[test]
fn servers_older_than_2_10_are_refused_with_how_to_upgrade() {
    for old in ["2.9.10", "2.9.25", "1.4.1", "2.2.0"] {
        let e = ServerVersion::check(old).unwrap_err();
        assert_eq!(
            e,
            ServerVersionError::TooOld {
                found: old.to_owned()
            }
        );
        let text = e.to_string();
        assert!(text.contains(old), "{text}");
        assert!(text.contains("2.10 or later"), "{text}");
        assert!(text.contains("scripts/setup"), "{text}");
    }
    for current in [
        "2.10.0",
        "2.10.29",
        "2.11.0-RC.1",
        "2.12.1",
        "2.15.1",
        "3.0.0",
    ] {
        assert_eq!(ServerVersion::check(current), Ok(()), "{current}");
    }
    assert_eq!(ServerVersion::check("unknown"), Ok(()));
}
