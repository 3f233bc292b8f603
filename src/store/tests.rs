use super::*;
use crate::engine::lifecycle::{RequestState, Status, TileStatus, UserAction};
use serde_json::json;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("t.db")).unwrap();
    (dir, s)
}

pub(super) fn record(id: &str, client: &str) -> RequestRecord {
    RequestRecord {
        id: id.into(),
        client_id: client.into(),
        created: now_rfc3339(),
        body: json!({"description": "d"}).as_object().unwrap().clone(),
        status: Status::Created,
        user_action: UserAction::None,
        user_action_updated: None,
        start_when_analysed: false,
        cancel_when_analysed: false,
        tile_count: 3,
        tile_width_px: 1000,
        tile_height_px: 1000,
        value_estimate: None,
        error: None,
    }
}

fn tiles(n: i64) -> impl Iterator<Item = NewTile> {
    (0..n).map(|i| NewTile {
        id: 100 + i,
        name: format!("33TWM_{i}_0"),
        epsg: 32633,
        bounds: [0.0, 0.0, 1.0, 1.0],
        geometry: "[]".into(),
        cost_estimate: 2.0,
    })
}

#[test]
fn requests_are_private_to_their_client() {
    let (_d, s) = store();
    s.insert_request(&record("r1", "alice")).unwrap();
    assert!(s.get_request(Some("alice"), "r1").unwrap().is_some());
    assert!(s.get_request(Some("bob"), "r1").unwrap().is_none());
    assert_eq!(
        s.list_requests("bob", RequestSort::Created, 0, 10)
            .unwrap()
            .len(),
        0
    );
    let got = s.get_request(None, "r1").unwrap().unwrap();
    assert_eq!(got.body["description"], "d");
    assert_eq!(got.status, Status::Created);
}

#[test]
fn state_changes_are_persisted_and_reopen_sees_them() {
    let (d, s) = store();
    s.insert_request(&record("r1", "a")).unwrap();
    let st = RequestState {
        status: Status::Analysing,
        user_action: UserAction::Start,
        start_when_analysed: true,
        cancel_when_analysed: false,
    };
    s.set_state("r1", &st, true, None).unwrap();
    drop(s);
    let s = Store::open(&d.path().join("t.db")).unwrap();
    let r = s.get_request(None, "r1").unwrap().unwrap();
    assert_eq!(r.status, Status::Analysing);
    assert_eq!(r.user_action, UserAction::Start);
    assert!(r.start_when_analysed);
    assert!(r.user_action_updated.is_some());
    assert_eq!(s.unfinished_requests().unwrap(), vec!["r1".to_string()]);
}

#[test]
fn analysis_of_a_deleted_request_stores_nothing() {
    let (_d, s) = store();
    assert_eq!(s.store_analysis("gone", tiles(3), 1.0).unwrap(), 0);
    assert!(s.list_tiles("gone", None, 0, 10).unwrap().is_empty());
}

#[test]
fn tiles_page_by_position_and_filter_by_status() {
    let (_d, s) = store();
    s.insert_request(&record("r1", "a")).unwrap();
    assert_eq!(s.store_analysis("r1", tiles(5), 7.5).unwrap(), 5);
    let r = s.get_request(None, "r1").unwrap().unwrap();
    assert_eq!((r.tile_count, r.value_estimate), (5, Some(7.5)));
    let page = s.list_tiles("r1", None, 2, 2).unwrap();
    assert_eq!(
        page.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![102, 103]
    );
    let claimed = s.claim_pending("r1", 2).unwrap();
    assert_eq!(
        claimed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![100, 101]
    );
    let pending = s
        .list_tiles("r1", Some(TileStatus::Pending), 0, 10)
        .unwrap();
    assert_eq!(
        pending.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![102, 103, 104]
    );
    let c = s.tile_counts("r1").unwrap();
    assert_eq!(
        (c.pending, c.in_flight, c.processed, c.failed),
        (3, 2, 0, 0)
    );
    assert_eq!(s.recover_in_flight("r1").unwrap(), 2);
    assert_eq!(s.tile_counts("r1").unwrap().pending, 5);
}

#[test]
fn a_tile_cut_short_on_its_last_attempt_fails_on_recovery() {
    let (_d, s) = store();
    s.insert_request(&record("r1", "a")).unwrap();
    s.store_analysis("r1", tiles(3), 6.0).unwrap();
    let claimed = s.claim_pending("r1", 3).unwrap();
    // Tile 0 was processing its 3rd attempt, tile 1 its 1st, tile 2 was only scheduled.
    s.set_tile_status("r1", claimed[0].id, TileStatus::Processing, 3, None)
        .unwrap();
    s.set_tile_status("r1", claimed[1].id, TileStatus::Processing, 1, None)
        .unwrap();
    assert_eq!(s.recover_in_flight("r1").unwrap(), 3);
    let all = s.list_tiles("r1", None, 0, 10).unwrap();
    let by_id = |id: i64| all.iter().find(|t| t.id == id).unwrap();
    assert_eq!(by_id(claimed[0].id).status, TileStatus::Failed);
    assert!(by_id(claimed[0].id)
        .error
        .as_deref()
        .is_some_and(|e| e.contains("daemon stopped")));
    assert_eq!(
        (by_id(claimed[1].id).status, by_id(claimed[1].id).attempts),
        (TileStatus::Pending, 1)
    );
    assert_eq!(by_id(claimed[2].id).status, TileStatus::Pending);
    // Nothing is left in flight, and a second recovery finds nothing to do.
    assert_eq!(s.recover_in_flight("r1").unwrap(), 0);
}

#[test]
fn a_tile_is_charged_once_whatever_happens() {
    let (_d, s) = store();
    s.insert_request(&record("r1", "a")).unwrap();
    s.store_analysis("r1", tiles(2), 4.0).unwrap();
    s.reserve("r1", "a", 100.0).unwrap();
    s.claim_pending("r1", 2).unwrap();
    // A cancel charges both in-flight tiles at their estimate...
    assert_eq!(s.charge_in_flight("r1", "a").unwrap(), 2);
    // ...and a late completion, or a repeated one, adds no second charge.
    s.complete_tile("r1", "a", 100, 2.0).unwrap();
    s.complete_tile("r1", "a", 100, 2.0).unwrap();
    let t = s.pu_totals("r1").unwrap();
    assert_eq!(t.reserved, 100.0);
    assert_eq!(t.charged, 4.0);
    s.set_settlement("r1", "a", 96.0, 0.0).unwrap();
    s.set_settlement("r1", "a", 96.0, 0.0).unwrap();
    assert_eq!(
        s.pu_totals("r1").unwrap().minimum,
        96.0,
        "settling twice is idempotent"
    );
}

#[test]
fn requeue_resets_attempts_of_failed_tiles_only() {
    let (_d, s) = store();
    s.insert_request(&record("r1", "a")).unwrap();
    s.store_analysis("r1", tiles(3), 1.0).unwrap();
    s.set_tile_status("r1", 100, TileStatus::Failed, 3, Some("boom"))
        .unwrap();
    s.set_tile_status("r1", 101, TileStatus::Failed, 3, Some("boom"))
        .unwrap();
    s.complete_tile("r1", "a", 102, 1.0).unwrap();
    assert_eq!(s.requeue_tile("r1", 101).unwrap(), 1);
    assert_eq!(
        s.requeue_tile("r1", 102).unwrap(),
        0,
        "a processed tile is not requeued"
    );
    assert_eq!(s.requeue_failed("r1").unwrap(), 1);
    let t = s.get_tile("r1", 100).unwrap().unwrap();
    assert_eq!(
        (t.status, t.attempts, t.error),
        (TileStatus::Pending, 0, None)
    );
}

#[test]
fn stale_requests_are_deleted_by_status_and_age() {
    let (_d, s) = store();
    for (id, status) in [
        ("created", Status::Created),
        ("failed", Status::Failed),
        ("done", Status::Done),
        ("processing", Status::Processing),
    ] {
        s.insert_request(&record(id, "a")).unwrap();
        let st = RequestState {
            status,
            user_action: UserAction::None,
            start_when_analysed: false,
            cancel_when_analysed: false,
        };
        s.set_state(id, &st, false, None).unwrap();
    }
    let long = std::time::Duration::from_secs(3600);
    let zero = std::time::Duration::ZERO;
    let none = s
        .delete_stale(&StaleAges {
            failed: long,
            unstarted: long,
            finished: long,
        })
        .unwrap();
    assert!(none.is_empty());
    let mut gone = s
        .delete_stale(&StaleAges {
            failed: zero,
            unstarted: zero,
            finished: long,
        })
        .unwrap();
    gone.sort();
    assert_eq!(gone, vec!["created".to_string(), "failed".to_string()]);
    let gone = s
        .delete_stale(&StaleAges {
            failed: zero,
            unstarted: zero,
            finished: zero,
        })
        .unwrap();
    assert_eq!(gone, vec!["done".to_string()]);
    assert!(
        s.get_request(None, "processing").unwrap().is_some(),
        "running requests stay"
    );
}
